"""`[admin]`: the operator's listener, served by the control process: the JSON API, Prometheus metrics
and the live dashboard. On loopback by default, because it can ban, unban and pin modes: reaching it
from elsewhere is a decision the operator states (`allow_remote`), not an accident of `listen`."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from shieldwall.config.validators import Section, StrictBool

TOKEN_FILE = Path("admin") / "token"  # under server.state_dir, unless token_file says otherwise


def _parse_host_port(value: str) -> tuple[str, int]:
    # schema.py imports this module to build Settings: its address parser is imported when used.
    from shieldwall.config.schema import parse_host_port  # noqa: PLC0415

    return parse_host_port(value)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    if host == "localhost":
        return True
    return ipaddress.ip_address(host).is_loopback


class Admin(Section):
    """The admin API, /metrics and the dashboard, on a listener of their own."""

    enabled: StrictBool = Field(default=True, description="serve the admin listener (in the control process)")
    allow_remote: StrictBool = Field(
        default=False, description="let `listen` be an address other machines can reach"
    )
    listen: str = Field(default="127.0.0.1:9180", description="HOST:PORT of the admin listener")
    token_file: Path | None = Field(
        default=None, description="the bearer token's file; default: server.state_dir/admin/token"
    )
    metrics_need_token: StrictBool = Field(default=False, description="ask the token on /metrics too")

    @field_validator("listen")
    @classmethod
    def _loopback_unless_allowed(cls, value: str, info: ValidationInfo) -> str:
        host, _ = _parse_host_port(value)
        if not is_loopback(host) and not info.data.get("allow_remote", False):
            raise ValueError(
                "not a loopback address: other machines could reach the admin API, which can ban and "
                "pin modes; listen on 127.0.0.1 and reach it through an SSH tunnel or a reverse proxy "
                "with TLS, or set allow_remote = true if you mean it"
            )
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        return _parse_host_port(self.listen)

    def token_path(self, state_dir: Path) -> Path:
        return self.token_file if self.token_file is not None else state_dir / TOKEN_FILE
