"""The detector's knobs as one frozen dataclass, so the sans-io detector does not depend on the config
schema; `[detector]` in the TOML maps onto it field by field.

Defaults and why (rates are requests per second at the whole shield):
- A second's rate is an attack (level 2) when it is at least `attack_ratio` x its baseline and
  `attack_z` deviations above it; elevated (level 1) at `elevated_ratio` x and `elevated_z`. A flash
  crowd of real visitors that triples over minutes stays below 5x (the baseline also follows it while it
  is merely elevated), so only ELEVATED and admission control meet it; a flood of 5x or more in seconds
  is UNDER_ATTACK.
- Nothing below `min_rps` is ever judged on its rate (a small site's 3 -> 30 requests/s is not a flood);
  `attack_rps` (0 = off) makes any rate at or above it an attack whatever the baseline, which also
  covers a shield started in the middle of a flood, before the baseline is warm.
- Origin trouble (p95 latency over `latency_slo`, a 5xx share over `max_error_share`), a surge of new
  clients or one key taking over a dimension (`diversity_rise`) elevate, but never alone make an
  attack: each also happens to a healthy site that is merely popular or whose database is slow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    # Baselines
    half_life: float = 300.0  # seconds for a baseline to move halfway to a new steady level
    warmup: int = 60  # calm seconds learned before rate signals count
    elevated_learning: float = 0.1  # learning speed while ELEVATED, relative to NORMAL
    clip_z: float = 3.0  # a learned value is clipped to mean + clip_z deviations
    # Rate signals
    min_rps: float = 20.0
    attack_rps: float = 0.0
    elevated_ratio: float = 2.0
    elevated_z: float = 4.0
    attack_ratio: float = 5.0
    attack_z: float = 8.0
    # Origin saturation signals (elevate only)
    latency_slo: float = 0.0  # seconds of origin p95; 0 = not judged
    max_error_share: float = 0.2
    min_responses: int = 20  # fewer origin responses in a second say nothing about the origin
    # New clients and diversity (elevate only)
    surge_ratio: float = 4.0
    surge_z: float = 6.0
    min_new_clients: float = 20.0  # fewer new (or distinct) clients per second are never a surge
    new_client_window: float = 600.0  # a client unseen for 1-2 windows counts as new again
    diversity_rise: float = 0.3  # top-1 share of a dimension rising this much above its baseline
    diversity_dimensions: tuple[str, ...] = ("path", "user_agent")
    # Mode ladder
    window: int = 5  # escalation looks at the last `window` seconds
    elevate_after: int = 2  # seconds of level >= 1 among them to become ELEVATED
    attack_after: int = 3  # seconds of level 2 among them to become UNDER_ATTACK
    hold: float = 30.0  # calm seconds before each step down, and in NORMAL before an incident closes
    # Telemetry (workers) and incidents
    hll_precision: int = 14
    heavy_hitters: int = 1024  # per dimension per worker second
    top_reported: int = 64  # heavy hitters per dimension sent to the supervisor each second
    sample_size: int = 256  # feature vectors per worker second, and per merged second
    incident_fine_seconds: int = 3600  # per-second series for the first hour of an incident
    incident_coarse_points: int = 1440  # then at most this many coarser points (doubling their width)
    incident_coarse_width: int = 60  # seconds per point after the first hour, before any doubling
    incident_preroll: int = 30  # seconds before the escalation kept in the incident's series
    incident_max_timeline: int = 10_000  # events kept per incident

    def __post_init__(self) -> None:
        problems = []
        for name in ("half_life", "elevated_ratio", "attack_ratio", "clip_z", "elevated_z", "attack_z"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0")
        for name in ("min_rps", "attack_rps", "latency_slo", "hold", "min_new_clients", "surge_z"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be >= 0")
        if not 0 <= self.elevated_learning <= 1:
            problems.append("elevated_learning must be within 0..1")
        if not 0 < self.max_error_share <= 1 or not 0 < self.diversity_rise <= 1:
            problems.append("max_error_share and diversity_rise must be within (0, 1]")
        if self.attack_ratio < self.elevated_ratio or self.attack_z < self.elevated_z:
            problems.append("attack_ratio/attack_z must be at least elevated_ratio/elevated_z")
        if not 1 <= self.elevate_after <= self.window or not 1 <= self.attack_after <= self.window:
            problems.append("elevate_after and attack_after must be within 1..window")
        if self.new_client_window <= 0:
            problems.append("new_client_window must be > 0")
        for name in (
            "warmup",
            "min_responses",
            "incident_fine_seconds",
            "incident_preroll",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        for name in (
            "heavy_hitters",
            "top_reported",
            "sample_size",
            "incident_coarse_points",
            "incident_coarse_width",
            "incident_max_timeline",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if not 4 <= self.hll_precision <= 18:
            problems.append("hll_precision must be within 4..18")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def alpha(self) -> float:
        """The EWMA weight of one second for the configured half-life."""
        return 1 - math.pow(0.5, 1 / self.half_life)
