"""Rule conditions (policy.compile + Policy.decide): hosts, methods, the four path forms on the normalised
path, client CIDRs of both families, headers. Each condition is tried alone through a block rule, so a
request is refused exactly when the condition holds."""

from __future__ import annotations

from typing import Any

import pytest

from shieldwall.config import parse_config
from shieldwall.net.client_identity import client_prefix
from shieldwall.policy.compile import compile_policy
from shieldwall.policy.decision import Action, RequestView
from shieldwall.policy.engine import Policy
from shieldwall.policy.paths import normalise_path

CLIENT = "198.51.100.7"


def policy(*rules: dict[str, Any], tracked_keys: int = 100_000) -> Policy:
    """Rules as TOML would give them, through the real schema and compiler."""
    return compile_policy(parse_config({"rules": list(rules)}).rules, tracked_keys=tracked_keys)


def view(
    path: bytes = b"/",
    *,
    method: bytes = b"GET",
    host: bytes = b"www.example.org",
    ip: str = CLIENT,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> RequestView:
    return RequestView(ip, client_prefix(ip), method, host, path, b"", headers)


def blocks(match: dict[str, Any], request: RequestView) -> bool:
    decision = policy({"name": "r", "action": "block", "match": match}).decide(request, 0.0)
    return decision.action is Action.BLOCK


@pytest.mark.parametrize(
    ("hosts", "host", "matches"),
    [
        (["www.example.org"], b"www.example.org", True),
        (["www.example.org"], b"example.org", False),
        (["www.example.org"], b"www.example.org.evil.net", False),
        (["WWW.Example.ORG"], b"www.example.org", True),  # the view's Host is lower-case already
        (["www.example.org"], b"www.example.org.", True),  # a fully qualified Host names the same site
        (["www.example.org."], b"www.example.org", True),
        (["*.example.org"], b"donate.example.org", True),
        (["*.example.org"], b"a.b.example.org", True),
        (["*.example.org"], b"example.org", False),  # the wildcard is for subdomains only
        (["*.example.org"], b"badexample.org", False),
        (["example.org", "*.example.org"], b"example.org", True),
        (["example.net", "*.example.org"], b"shop.example.com", False),
    ],
)
def test_hosts(hosts: list[str], host: bytes, matches: bool) -> None:
    assert blocks({"hosts": hosts}, view(host=host)) is matches


@pytest.mark.parametrize(
    ("methods", "method", "matches"),
    [
        (["POST"], b"POST", True),
        (["post"], b"POST", True),  # written in any case; on the wire methods are upper-case
        (["POST"], b"GET", False),
        (["PUT", "DELETE"], b"DELETE", True),
        (["PUT", "DELETE"], b"PATCH", False),
    ],
)
def test_methods(methods: list[str], method: bytes, matches: bool) -> None:
    assert blocks({"methods": methods}, view(method=method)) is matches


@pytest.mark.parametrize(
    ("match", "path", "matches"),
    [
        ({"path": "/login"}, b"/login", True),
        ({"path": "/login"}, b"/login/", False),
        ({"path": "/login"}, b"/login2", False),
        ({"path": "/login"}, b"/Login", False),  # paths are case-sensitive
        ({"path": "/wp-login.php"}, b"/wp%2Dlogin.php", True),  # escaped unreserved characters
        ({"path": "/wp-login.php"}, b"//wp-login.php", True),  # doubled slashes
        ({"path": "/wp-login.php"}, b"/blog/../wp-login.php", True),  # dot segments
        ({"path": "/wp-login.php"}, b"/./wp-login%2ephp", True),
        ({"path_prefix": "/api/"}, b"/api/v1/keys", True),
        ({"path_prefix": "/api/"}, b"/api/", True),
        ({"path_prefix": "/api/"}, b"/apiv1", False),
        ({"path_prefix": "/api/"}, b"/%61pi/v1", True),
        ({"path": "/caf%c3%a9"}, b"/caf%C3%A9", True),  # the rule's path is normalised like the request's
        ({"path_prefix": "/%7Euser/"}, b"/~user/x", True),
        ({"path_glob": "/static/*.js"}, b"/static/app.js", True),
        ({"path_glob": "/static/*.js"}, b"/static/vendor/lib.js", True),  # `*` crosses '/'
        ({"path_glob": "/static/*.js"}, b"/static/app.jsx", False),  # the glob matches the whole path
        ({"path_glob": "/static/*.js"}, b"/x/static/app.js", False),
        ({"path_glob": "/page-?"}, b"/page-2", True),
        ({"path_glob": "/page-?"}, b"/page-22", False),
        ({"path_glob": "/v[12]/*"}, b"/v2/x", True),
        ({"path_glob": "/v[12]/*"}, b"/v3/x", False),
        ({"path_regex": r"\.(env|git)\b"}, b"/.env", True),  # searched anywhere in the path
        ({"path_regex": r"\.(env|git)\b"}, b"/app/.git/config", True),
        ({"path_regex": r"\.(env|git)\b"}, b"/environment", False),
        ({"path_regex": "^/admin"}, b"/admin/users", True),
        ({"path_regex": "^/admin"}, b"/x/admin", False),
        ({"path_prefix": "/api/", "path_glob": "*.json"}, b"/api/list.json", True),  # forms combine (AND)
        ({"path_prefix": "/api/", "path_glob": "*.json"}, b"/api/list.xml", False),
    ],
)
def test_paths(match: dict[str, str], path: bytes, matches: bool) -> None:
    assert blocks(match, view(path)) is matches


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        (b"/", b"/"),
        (b"/news/2024/debate", b"/news/2024/debate"),
        (b"/a/", b"/a/"),
        (b"/a//b", b"/a/b"),
        (b"//", b"/"),
        (b"/a/./b", b"/a/b"),
        (b"/a/../b", b"/b"),
        (b"/../../etc/passwd", b"/etc/passwd"),  # never above the root
        (b"/a/b/..", b"/a/"),  # the directory keeps its slash
        (b"/a/b/.", b"/a/b/"),
        (b"/.well-known/acme", b"/.well-known/acme"),
        (b"/a/%2e%2E/b", b"/b"),  # escaped dots are dots
        (b"/%7Euser/%41", b"/~user/A"),
        (b"/a%2fb%3f", b"/a%2Fb%3F"),  # reserved escapes stay escaped, in upper case
        (b"/%252e%252e/", b"/%252e%252e/"),  # decoded once, never twice
        (b"/100%", b"/100%"),  # a stray '%' is left alone
        (b"*", b"*"),
    ],
)
def test_normalise_path(path: bytes, normal: bytes) -> None:
    assert normalise_path(path) == normal
    assert normalise_path(normal) == normal


def test_a_normal_path_is_returned_as_it_is() -> None:
    path = b"/news/2024/debate.html"
    assert normalise_path(path) is path


@pytest.mark.parametrize(
    ("clients", "ip", "matches"),
    [
        (["192.0.2.0/24"], "192.0.2.9", True),
        (["192.0.2.0/24"], "192.0.3.9", False),
        (["203.0.113.5"], "203.0.113.5", True),  # a single address
        (["203.0.113.5"], "203.0.113.6", False),
        (["2001:db8::/32"], "2001:db8:1::5", True),
        (["2001:db8::/32"], "2001:db9::5", False),
        (["192.0.2.0/24"], "::ffff:192.0.2.9", True),  # IPv4-mapped IPv6 is the IPv4 client
        (["::ffff:192.0.2.0/120"], "192.0.2.9", True),  # and a mapped CIDR is the IPv4 network
        (["192.0.2.0/24"], "2001:db8::c000:209", False),  # families never mix otherwise
        (["10.0.0.0/8", "2001:db8::/32"], "2001:db8::1", True),
        (["10.0.0.0/8", "2001:db8::/32"], "11.0.0.1", False),
    ],
)
def test_clients(clients: list[str], ip: str, matches: bool) -> None:
    assert blocks({"clients": clients}, view(ip=ip)) is matches


def test_client_answers_are_cached_and_the_cache_is_bounded() -> None:
    office = policy({"name": "office", "action": "block", "match": {"clients": ["192.0.2.0/24"]}})
    cidrs = office.rules[0].clients
    assert cidrs is not None
    for i in range(10_000):
        office.decide(view(ip=f"10.{i // 256 % 256}.{i % 256}.1"), 0.0)
    assert cidrs.contains.cache_info().currsize <= 4096  # type: ignore[attr-defined]
    assert office.decide(view(ip="192.0.2.200"), 0.0).action is Action.BLOCK


UA = b"user-agent"


@pytest.mark.parametrize(
    ("headers", "sent", "matches"),
    [
        ({"user-agent": "sqlmap"}, ((UA, b"sqlmap/1.7"),), True),
        ({"user-agent": "sqlmap"}, ((UA, b"Mozilla/5.0"),), False),
        ({"user-agent": "sqlmap"}, (), False),  # an absent header never matches
        ({"User-Agent": "sqlmap"}, ((UA, b"sqlmap/1.7"),), True),  # names are case-insensitive
        ({"user-agent": "^$"}, ((UA, b""),), True),  # present and empty
        ({"x-api-key": ""}, ((b"x-api-key", b"k1"),), True),  # "" only asks that it is present
        ({"x-api-key": ""}, ((UA, b"k1"),), False),
        ({"user-agent": "sqlmap"}, ((UA, b"Mozilla/5.0"), (UA, b"sqlmap/1.7")), True),  # any value
        ({"user-agent": "(?i)^curl/"}, ((UA, b"CURL/8.1"),), True),
        ({"user-agent": "curl", "accept": "^\\*/\\*$"}, ((UA, b"curl/8"), (b"accept", b"*/*")), True),
        ({"user-agent": "curl", "accept": "^\\*/\\*$"}, ((UA, b"curl/8"),), False),  # all must hold
    ],
)
def test_headers(headers: dict[str, str], sent: tuple[tuple[bytes, bytes], ...], matches: bool) -> None:
    assert blocks({"headers": headers}, view(headers=sent)) is matches


def test_every_condition_must_hold() -> None:
    match = {"methods": ["POST"], "path": "/donate", "hosts": ["www.example.org"]}
    assert blocks(match, view(b"/donate", method=b"POST"))
    assert not blocks(match, view(b"/donate", method=b"GET"))
    assert not blocks(match, view(b"/", method=b"POST"))
    assert not blocks(match, view(b"/donate", method=b"POST", host=b"shop.example.org"))


def test_a_rule_without_conditions_matches_every_request() -> None:
    assert blocks({}, view())
    assert blocks({}, view(b"/x", method=b"DELETE", ip="2001:db8::1"))
