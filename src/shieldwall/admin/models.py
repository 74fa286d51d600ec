"""The admin API's request and response bodies, as pydantic models: FastAPI checks requests against them
and the OpenAPI document (/openapi.json) describes them. Requests refuse unknown fields, as the
configuration does: a misspelt "duraton" must not silently become the default."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from shieldwall.core.durations import parse_duration
from shieldwall.detector.counters import Answered
from shieldwall.detector.events import Mode
from shieldwall.limiter.bans import Ban, ban_target
from shieldwall.state.manual_bans import MAX_REASON, check_reason

_DURATION_HELP = "90s, 10m, 1h, 2d, 1d12h, or permanent"
# Documented (json_schema_extra) rather than enforced by pydantic: parse_duration's message says more.
DURATION_PATTERN: JsonDict = {"pattern": r"^(permanent|([0-9]{1,9}[smhd])+)$"}
INCIDENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"  # report/store.py check_id


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ForAWhile(_Request):
    """A request with a `duration` ("90s", "2h", "permanent") and a `reason`, checked as the CLI checks
    them; subclasses declare both fields with their own defaults and descriptions."""

    duration: str
    reason: str

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return check_reason(value)

    @property
    def seconds(self) -> float | None:
        return parse_duration(self.duration)


class ErrorOut(BaseModel):
    error: str = Field(description="what is wrong; what to do")


Responses = dict[int | str, dict[str, Any]]


def errors(*statuses: int) -> Responses:
    """The OpenAPI `responses` of a route that can answer these error statuses."""
    return {status: {"model": ErrorOut} for status in statuses}


class BanIn(_ForAWhile):
    target: str = Field(
        description="one address (203.0.113.7, 2001:db8::7) or one client prefix: an IPv4 /24 or an IPv6 /64",
        examples=["203.0.113.7"],
    )
    duration: str = Field(
        default="1h",
        json_schema_extra=DURATION_PATTERN,
        description=_DURATION_HELP,
        examples=["1h", "permanent"],
    )
    reason: str = Field(
        default="banned by the operator", max_length=MAX_REASON, description="kept with the ban"
    )

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        return ban_target(value)


class BanOut(BaseModel):
    target: str
    until: float | None = Field(description="Unix time it ends; null: permanent")
    reason: str
    source: Literal["auto", "manual"]
    level: int = Field(description="for a ban a worker made: 0 for the first, 1 for the next...")
    since: float = Field(description="Unix time it began")

    @staticmethod
    def of(ban: Ban) -> BanOut:
        return BanOut(
            target=ban.target,
            until=ban.until,
            reason=ban.reason,
            source=ban.source,
            level=ban.level,
            since=ban.since,
        )


class BanAdded(BanOut):
    note: str | None = Field(default=None, description="something to know, e.g. allowlisted addresses inside")


class Lifted(BaseModel):
    lifted: int = Field(description="bans removed: its manual ban (0 or 1) and those workers made")
    note: str | None = Field(default=None, description="e.g. its prefix is banned too")


class PinIn(_ForAWhile):
    mode: Mode
    duration: str = Field(
        default="1h", json_schema_extra=DURATION_PATTERN, description=_DURATION_HELP, examples=["2h"]
    )
    reason: str = Field(default="", max_length=MAX_REASON, description="for the incident timeline")


class PinOut(BaseModel):
    mode: Mode | None = Field(description="the mode pinned; null after an unpin")
    until: float | None = Field(description="Unix time the pin ends; null: until unpinned")
    mode_now: Mode = Field(description="the mode in force now")


class SignatureDone(BaseModel):
    id: str
    status: Literal["pinned", "unpinned", "rejected"]


class Reloading(BaseModel):
    reloading: bool = True
    supervisor: int = Field(description="the pid that was sent SIGHUP")


class IncidentSummary(BaseModel):
    id: str
    opened: float
    closed: float | None
    peak_mode: Mode
    peak_rps: float


class LookupOut(BaseModel):
    ref: str
    wall: float = Field(description="Unix time of the answer")
    client: str
    method: str
    target: str
    status: int
    reason: str = Field(description='why: "rule no-wp", "signature sig-…", "mode-under_attack"...')

    @staticmethod
    def of(answer: Answered) -> LookupOut:
        return LookupOut(
            ref=answer.ref,
            wall=answer.wall,
            client=answer.client,
            method=answer.method,
            target=answer.target,
            status=answer.status,
            reason=answer.reason,
        )
