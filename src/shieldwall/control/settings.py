"""The `[detector]` section as the sans-io detector's own config."""

from __future__ import annotations

from dataclasses import replace

from shieldwall.config.detector_schema import Detector
from shieldwall.detector.config import DetectorConfig


def detector_config(section: Detector) -> DetectorConfig:
    return replace(
        DetectorConfig(),
        min_rps=section.min_rps,
        attack_rps=section.attack_rps,
        elevated_ratio=section.elevated_ratio,
        attack_ratio=section.attack_ratio,
        latency_slo=section.latency_slo,
        warmup=section.warmup,
        hold=section.hold,
        sample_size=section.sample_size,
    )
