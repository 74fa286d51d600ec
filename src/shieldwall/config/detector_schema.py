"""`[detector]`: when the shield decides it is under attack, how fast it steps back, what each mode
does, and how long incidents are kept. The thresholds map onto detector/config.DetectorConfig (its
docstring explains each default); the retention goes to the incident store (state/incident_store.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from shieldwall.config.validators import NonNegativeInt, PositiveFloat, PositiveInt, Section, StrictBool

NonNegativeFloat = Annotated[float, Field(ge=0, strict=True)]


def _path_prefix(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("a path prefix starts with '/'; write e.g. /search")
    return value


class ElevatedActions(Section):
    """What the data plane does in elevated mode, beyond the rules."""

    challenge_all: StrictBool = Field(
        default=False,
        description="challenge every request without a clearance (exempt paths and verified crawlers pass)",
    )
    challenge_suspicious: StrictBool = Field(
        default=True, description="challenge clients the shield refused recently"
    )


class UnderAttackActions(Section):
    """What the data plane does under attack, beyond the rules."""

    challenge_all: StrictBool = Field(
        default=True,
        description="challenge every request without a clearance (exempt paths and verified crawlers pass)",
    )
    challenge_suspicious: StrictBool = Field(
        default=True, description="challenge clients the shield refused recently"
    )


ModeActions = ElevatedActions | UnderAttackActions


class Detector(Section):
    """Detection of floods, the mode ladder (normal → elevated → under_attack) and attack signatures."""

    enabled: StrictBool = Field(default=True, description="run the detector (the control process)")
    min_rps: NonNegativeFloat = Field(
        default=20.0, description="requests/s below which traffic is never judged a flood"
    )
    attack_rps: NonNegativeFloat = Field(
        default=0.0, description="requests/s that are an attack whatever the baseline (0 = off)"
    )
    elevated_ratio: PositiveFloat = Field(default=2.0, description="times the learnt rate that elevates")
    attack_ratio: PositiveFloat = Field(default=5.0, description="times the learnt rate that is an attack")
    latency_slo: NonNegativeFloat = Field(
        default=0.0, description="seconds of origin p95 latency above which the mode elevates (0 = off)"
    )
    warmup: NonNegativeInt = Field(default=60, description="calm seconds learnt before rates are judged")
    hold: PositiveFloat = Field(default=30.0, description="calm seconds before each step down")
    signatures: StrictBool = Field(default=True, description="mine and apply attack signatures")
    signature_ttl: PositiveFloat = Field(
        default=120.0, description="seconds a signature lives unless mined again"
    )
    elevated: ElevatedActions = ElevatedActions()
    under_attack: UnderAttackActions = UnderAttackActions()
    sample_size: PositiveInt = Field(default=256, description="requests sampled per worker per second")
    route_classes: tuple[Annotated[str, AfterValidator(_path_prefix)], ...] = Field(
        default=(),
        max_length=15,
        description="path prefixes counted apart (a request's class is the first that matches; the rest are "
        "'other'), e.g. ['/search', '/api/', '/donate']",
    )
    incident_retention_days: PositiveInt = Field(
        default=365, description="days an incident is kept after it ended (then deleted, daily)"
    )
    incidents_kept: PositiveInt = Field(
        default=1000, description="the most incidents kept; the oldest go first"
    )
