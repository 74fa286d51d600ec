"""`[admission]`: the door in front of the origin (shieldwall.admission). Off by default: an operator
turns it on with the origin's latency target, because that is the one figure only they know."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from shieldwall.config.validators import NonNegativeInt, PositiveFloat, PositiveInt, Section, StrictBool

_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _cookie_name(value: str) -> str:
    if not _COOKIE_NAME.fullmatch(value):
        raise ValueError("not a cookie name; write it as the origin sets it, e.g. sessionid")
    return value


def _path_prefix(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("a path prefix starts with '/'; write e.g. /donate")
    return value


CookieName = Annotated[str, AfterValidator(_cookie_name)]
PathPrefix = Annotated[str, AfterValidator(_path_prefix)]
Share = Annotated[float, Field(gt=0, le=1, strict=True)]


class QueueTimeouts(Section):
    """Seconds a request of each class may wait for the origin before it is answered 503."""

    critical: PositiveFloat = 10.0
    cleared: PositiveFloat = 5.0
    normal: PositiveFloat = 3.0
    suspicious: PositiveFloat = 1.0


class Admission(Section):
    """An adaptive limit on requests at the origin at once (AIMD on the origin's response time) with a
    priority queue: critical routes and logged-in users first, then visitors holding a clearance, then
    everyone else, then clients the shield already refused. Over the limit, requests wait; when the
    queue is full or a wait is too long, the lowest class is answered 503 + Retry-After first."""

    enabled: StrictBool = False
    fixed_limit: NonNegativeInt = Field(
        default=0,
        description="requests at the origin at once per worker, when you know the origin's capacity "
        "(e.g. PHP-FPM max_children / workers); 0 = adaptive",
    )
    latency_target: PositiveFloat = Field(
        default=0.5,
        description="seconds to the origin's response head it should stay under; above it the "
        "adaptive limit backs off",
    )
    initial_limit: PositiveInt = 20
    min_limit: PositiveInt = 4
    max_limit: PositiveInt = Field(default=128, description="at most upstream.pool_size")
    queue_size: NonNegativeInt = Field(default=1000, description="requests waiting per worker")
    queue_timeout: QueueTimeouts = QueueTimeouts()
    normal_queue_share: Share = Field(default=0.5, description="share of the queue everyone else may fill")
    suspicious_queue_share: Share = 0.1
    normal_slot_share: Share = Field(
        default=0.8, description="share of the limit everyone else (with suspicious clients) may hold"
    )
    suspicious_slot_share: Share = 0.25
    critical_paths: tuple[PathPrefix, ...] = Field(
        default=(), description="path prefixes served first, e.g. ['/donate', '/login']"
    )
    session_cookies: tuple[CookieName, ...] = Field(
        default=(),
        description="cookies that mark a logged-in user, served first; only values the origin itself "
        "set through this shield count",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Admission:
        if not self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("needs min_limit <= initial_limit <= max_limit")
        if self.suspicious_queue_share > self.normal_queue_share:
            raise ValueError("suspicious_queue_share may not be larger than normal_queue_share")
        if self.suspicious_slot_share > self.normal_slot_share:
            raise ValueError("suspicious_slot_share may not be larger than normal_slot_share")
        return self
