"""`[cluster]`: several shieldwall nodes acting as one shield through a Redis server they share.

Off unless `redis` is set. With it, each node's control process shares bans, the challenge secret, the
per-second summaries behind the mode, signatures and incidents through Redis, and each worker reconciles
the `scope = "cluster"` limits with it in the background (docs/scaling.md). A node that loses Redis keeps
protecting on its own state and catches up when Redis returns.
"""

from __future__ import annotations

import re
import socket
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from shieldwall.config.validators import Section

_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


def default_node() -> str:
    """This machine's host name, cut to what a node name may hold."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:63].lstrip("._-")
    return name or "node"


class Cluster(Section):
    """Redis-backed state shared by every node of one shield."""

    redis: str | None = Field(
        default=None,
        description="the shared Redis: redis://[:password@]HOST:PORT/DB, rediss:// (TLS), unix:///PATH, "
        "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB] or redis+cluster://HOST:PORT; "
        "unset: this node stands alone",
    )
    node: str | None = Field(
        default=None, description="this node's name, unique in the cluster; not set: the host name"
    )
    namespace: str = Field(
        default="shieldwall",
        description="prefix of every Redis key, so several shields can share one Redis",
    )
    sync_interval: Annotated[float, Field(ge=0.05, le=1.0, strict=True)] = Field(
        default=0.2, description="seconds between a worker's reconciliations of the cluster-wide limits"
    )
    timeout: Annotated[float, Field(gt=0, le=10, strict=True)] = Field(
        default=1.0, description="seconds a Redis command may take before the node counts Redis as lost"
    )

    @field_validator("redis")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme
        if scheme not in SCHEMES:
            raise ValueError(
                "not a Redis URL; write it like redis://127.0.0.1:6379/0 (schemes: "
                + ", ".join(SCHEMES)
                + ")"
            )
        return value

    @field_validator("node")
    @classmethod
    def _node(cls, value: str | None) -> str | None:
        if value is not None and not _NODE.fullmatch(value):
            raise ValueError("not a node name; use letters, digits, '.', '_' and '-' (at most 63)")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _NAMESPACE.fullmatch(value):
            raise ValueError("use lower-case letters, digits, '_' and '-' (at most 32)")
        return value

    @property
    def enabled(self) -> bool:
        return self.redis is not None

    @property
    def node_name(self) -> str:
        return self.node or default_node()
