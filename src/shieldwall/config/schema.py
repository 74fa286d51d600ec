"""The configuration schema. Every field has a safe default for a small site, so shieldwall runs
with no config file at all. Unknown keys are errors (a typo must never silently disable a guard), and
numbers and booleans are strict: TOML is typed, so `max_body_bytes = true` or `workers = "4"` is a
mistake to report, not a value to coerce.

Validator messages follow one convention that config/load.py relies on: "what is wrong; what to do".
They leave out the offending value, which the loader inserts before the "; " as "(got ...)"."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from shieldwall.config.admin_schema import Admin
from shieldwall.config.admission_schema import Admission
from shieldwall.config.alerts_schema import Alerts
from shieldwall.config.cache_schema import Cache
from shieldwall.config.challenge_schema import Challenge, Crawlers
from shieldwall.config.client_data_schema import ClientData, rules_have_their_data
from shieldwall.config.cluster_schema import Cluster
from shieldwall.config.detector_schema import Detector
from shieldwall.config.firewall_schema import Firewall
from shieldwall.config.policy_schema import Bans, Rule, unique_rule_names
from shieldwall.config.validators import (
    TOKEN,
    Cidr,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Section,
    StrictBool,
)

# An ASCII DNS name, optionally with one leading wildcard label, as SNI carries it.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SNI_NAME = re.compile(rf"(\*\.)?({_LABEL}\.)*{_LABEL}")
_WILDCARD_HOSTS = ("0.0.0.0", "::")


def parse_host_port(value: str) -> tuple[str, int]:
    """'127.0.0.1:8080', '[::1]:8080', ':8080' (all IPv4 addresses) → (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError("not a HOST:PORT address; write it like 0.0.0.0:80, 127.0.0.1:8080 or [::1]:8080")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range; use 1-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host or "0.0.0.0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(
                "the host is not an IP address; listen on an IP literal (0.0.0.0 for all) or localhost"
            ) from None
    return host, port


def parse_origin_url(value: str) -> tuple[str, int]:
    """'http://HOST:PORT' (optionally with a trailing '/') → (host, port); anything else is refused
    because shieldwall talks plain HTTP/1.1 to one origin and forwards the client's path itself."""
    parts = urlsplit(value)
    if parts.scheme != "http":
        raise ValueError("only http:// origins are supported; terminate TLS at shieldwall")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number in 1-65535; write http://HOST:PORT") from None
    if not parts.hostname or port is None:
        raise ValueError("needs a host and a port; write it like http://127.0.0.1:8000")
    if not 0 < port < 65536:
        raise ValueError("the port is not a number in 1-65535; write http://HOST:PORT")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the origin URL takes no user:password; shieldwall does not authenticate to it")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the origin URL takes no path or query; clients' paths are forwarded as they are")
    return parts.hostname, port


def _is_sni_name(value: str) -> str:
    if not _SNI_NAME.fullmatch(value) or len(value) > 253:
        raise ValueError(
            "not a DNS name; write it like www.example.org or *.example.org, IDNs in their xn-- form"
        )
    return value


def _needs_the_control_process(enabled: bool, info: ValidationInfo, what: str) -> None:
    detector = info.data.get("detector")
    if enabled and detector is not None and not detector.enabled:
        raise ValueError(
            f"{what} needs detector.enabled = true: it runs in the control process, which runs only "
            "with the detector"
        )


def _same_socket(listen: tuple[str, int], origin: tuple[str, int]) -> bool:
    """Whether connecting to `origin` would reach the listener at `listen` (for IP literals and
    localhost only: names other than localhost are not resolved while loading a config)."""
    (listen_host, listen_port), (origin_host, origin_port) = listen, origin
    if listen_port != origin_port:
        return False
    loopback = {"localhost", "127.0.0.1", "::1"}
    return (
        listen_host == origin_host
        or (listen_host in loopback and origin_host in loopback)
        or (listen_host in _WILDCARD_HOSTS and origin_host in loopback)
    )


class Certificate(Section):
    cert: Path
    key: Path
    server_names: tuple[Annotated[str, AfterValidator(_is_sni_name)], ...] = Field(
        default=(), description="SNI names served with this certificate; read from the certificate if empty"
    )


class Listener(Section):
    address: str = "127.0.0.1:8080"
    proxy_protocol: StrictBool = Field(
        default=False, description="expect a PROXY v1/v2 header first (only behind an L4 balancer)"
    )
    certificates: tuple[Certificate, ...] = Field(
        default=(), description="TLS certificates; the first is the default when SNI matches none"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_host_port(value)
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_host_port(self.address)

    @property
    def tls(self) -> bool:
        return bool(self.certificates)


class Upstream(Section):
    url: str = "http://127.0.0.1:8000"
    connect_timeout: PositiveFloat = 5.0
    read_timeout: PositiveFloat = Field(default=60.0, description="max wait for the origin's response head")
    pool_size: PositiveInt = Field(default=128, description="max connections to the origin per worker")
    idle_timeout: PositiveFloat = Field(default=30.0, description="close pooled connections idle this long")
    retries: Annotated[int, Field(ge=0, le=5, strict=True)] = Field(
        default=1, description="retries for idempotent requests that never reached the origin"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_origin_url(value)
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_origin_url(self.url)


class Limits(Section):
    """Connection guards: the first defence, applied before any policy."""

    max_request_line: PositiveInt = Field(default=8192, description="bytes; longer → 414")
    max_header_bytes: PositiveInt = Field(default=32768, description="bytes of the whole head; more → 431")
    max_header_count: PositiveInt = Field(default=100, description="header fields; more → 431")
    max_body_bytes: NonNegativeInt = Field(
        default=100 * 1024 * 1024, description="request body bytes; more → 413 (0 = unlimited)"
    )
    header_timeout: PositiveFloat = Field(
        default=10.0, description="seconds from a request's first byte to its complete head (slowloris)"
    )
    min_body_rate: NonNegativeInt = Field(
        default=1024, description="bytes/s a request body must average after body_grace (slow POST)"
    )
    body_grace: PositiveFloat = Field(default=5.0, description="seconds before min_body_rate is enforced")
    keepalive_timeout: PositiveFloat = Field(default=15.0, description="idle seconds between requests")
    send_timeout: PositiveFloat = Field(
        default=30.0, description="seconds a client may leave our response unread before it is dropped"
    )
    tls_handshake_timeout: PositiveFloat = 10.0
    max_connections: PositiveInt = Field(default=10000, description="open client connections per worker")
    max_connections_per_ip: PositiveInt = 64
    max_connections_per_prefix: PositiveInt = Field(
        default=512, description="per IPv4 /24 or IPv6 /64 (NATs and campus networks share prefixes)"
    )
    max_requests_per_connection: PositiveInt = 10000
    max_inflight_per_ip: NonNegativeInt = Field(
        default=0,
        description="requests one client address may have at the origin at once; more → 429 (0 = off: "
        "a NAT can carry many users, so set it from your own traffic)",
    )
    requests_per_second_per_ip: Annotated[float, Field(ge=0, strict=True)] = Field(
        default=0.0,
        description="sustained requests/s one client address may send; over it → 429 (0 = off; the policy "
        "engine's per-route limits are the finer tool)",
    )
    requests_burst_per_ip: PositiveInt = Field(
        default=200,
        description="requests one client may send at once before requests_per_second_per_ip applies",
    )
    tracked_clients: PositiveInt = Field(
        default=100_000, description="client addresses the rate guard remembers per worker (bounded memory)"
    )


class ClientIdentity(Section):
    trusted_proxies: tuple[Cidr, ...] = Field(
        default=(), description="CIDRs whose X-Forwarded-For is believed; empty = trust no header"
    )


class AccessLog(Section):
    path: str = Field(default="-", description='"-" for stderr, a file path, or "off"')
    format: Literal["combined", "json"] = "combined"
    max_lines_per_second: NonNegativeInt = Field(
        default=2000, description="beyond this, lines are skipped and counted (0 = no cap)"
    )


class Server(Section):
    workers: NonNegativeInt = Field(default=0, description="0 = one per CPU core")
    via_name: str = Field(default="shieldwall", description="pseudonym in the Via header")
    shutdown_grace: PositiveFloat = Field(
        default=20.0, description="seconds SIGTERM waits for in-flight requests"
    )
    state_dir: Path = Field(
        default=Path("/var/lib/shieldwall"),
        description="where shieldwall keeps state that must survive a restart (bans); "
        "e.g. /var/lib/shieldwall",
    )
    steer_by_prefix: StrictBool = Field(
        default=True, description="pin each client /24 or /64 to one worker (SO_REUSEPORT + BPF)"
    )

    @field_validator("via_name")
    @classmethod
    def _token(cls, value: str) -> str:
        if not TOKEN.fullmatch(value):
            raise ValueError("not an HTTP token; use letters, digits and -._~ only, no spaces")
        return value


class Settings(Section):
    server: Server = Server()
    listeners: tuple[Listener, ...] = (Listener(),)
    upstream: Upstream = Upstream()
    limits: Limits = Limits()
    client_identity: ClientIdentity = ClientIdentity()
    client_data: ClientData = ClientData()
    access_log: AccessLog = AccessLog()
    rules: Annotated[tuple[Rule, ...], AfterValidator(unique_rule_names)] = ()
    bans: Bans = Bans()
    cache: Cache = Cache()
    admission: Admission = Admission()
    challenge: Challenge = Challenge()
    crawlers: Crawlers = Crawlers()
    detector: Detector = Detector()
    admin: Admin = Admin()
    alerts: Alerts = Alerts()
    cluster: Cluster = Field(default=Cluster(), validate_default=True)  # its checks look at the rules
    firewall: Firewall = Firewall()

    # Field validators, not a model validator: they run even when other sections have errors, so one
    # check-config run reports everything.
    @field_validator("listeners")
    @classmethod
    def _distinct_listeners(cls, listeners: tuple[Listener, ...]) -> tuple[Listener, ...]:
        if not listeners:
            raise ValueError("no listener; declare at least one [[listeners]] table with an address")
        seen: dict[tuple[str, int], int] = {}
        for index, listener in enumerate(listeners):
            first = seen.setdefault(listener.host_port, index)
            if first != index:
                raise ValueError(
                    f"listeners[{first}] and listeners[{index}] both listen on {listener.address}; "
                    "give each listener its own address"
                )
        return listeners

    @field_validator("upstream")
    @classmethod
    def _not_a_loop(cls, upstream: Upstream, info: ValidationInfo) -> Upstream:
        for index, listener in enumerate(info.data.get("listeners", ())):
            if _same_socket(listener.host_port, upstream.host_port):
                raise ValueError(
                    f"url {upstream.url} is shieldwall's own listeners[{index}] ({listener.address}); "
                    "point it at the origin server, or shieldwall proxies to itself"
                )
        return upstream

    @field_validator("rules")
    @classmethod
    def _rules_have_their_data(cls, rules: tuple[Rule, ...], info: ValidationInfo) -> tuple[Rule, ...]:
        client_data = info.data.get("client_data")
        if client_data is not None:
            rules_have_their_data(rules, client_data)
        return rules

    @field_validator("admission")
    @classmethod
    def _limit_fits_the_pool(cls, admission: Admission, info: ValidationInfo) -> Admission:
        upstream = info.data.get("upstream")
        if admission.enabled and upstream is not None:
            limit = admission.fixed_limit or admission.max_limit
            if limit > upstream.pool_size:
                raise ValueError(
                    f"the limit ({limit}) is larger than upstream.pool_size ({upstream.pool_size}): requests "
                    "it admits would wait for a connection outside the priority queue; lower it or raise "
                    "the pool size"
                )
        return admission

    @field_validator("firewall")
    @classmethod
    def _firewall_has_a_control_process(cls, firewall: Firewall, info: ValidationInfo) -> Firewall:
        _needs_the_control_process(firewall.nftables, info, "the nftables mirror")
        return firewall

    @field_validator("cluster")
    @classmethod
    def _cluster_has_a_control_process(cls, cluster: Cluster, info: ValidationInfo) -> Cluster:
        _needs_the_control_process(cluster.enabled, info, "a cluster (the node's link to the others)")
        return cluster

    @field_validator("cluster")
    @classmethod
    def _cluster_limits_have_redis(cls, cluster: Cluster, info: ValidationInfo) -> Cluster:
        for rule in info.data.get("rules", ()):
            if rule.limit is not None and rule.limit.scope == "cluster" and not cluster.enabled:
                raise ValueError(
                    f'rule {rule.name!r} has scope = "cluster" but [cluster] has no redis; set redis to '
                    'the URL of the Redis the nodes share, or give the rule scope = "node"'
                )
        return cluster
