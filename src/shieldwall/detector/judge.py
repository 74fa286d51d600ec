"""One second's verdict: the metrics read off a `Second`, compared with their baselines, give a level.

Level 2 (attack) comes only from the request rate: at least `attack_ratio` x and `attack_z` deviations
over its baseline, or over the operator's absolute `attack_rps`. Level 1 (suspicious) comes from the
rate at `elevated_ratio`/`elevated_z`, origin saturation (p95 latency over its SLO, 5xx share), a surge
of new or distinct clients, or one key's share of a dimension (a path, a user agent) rising by
`diversity_rise`. No level-1 signal alone makes an attack: popularity and a slow database look like
them too (see config.py). Rate signals wait for the baseline's warm-up; the absolute ones do not.
"""

from __future__ import annotations

from dataclasses import dataclass

from shieldwall.detector.baseline import Baseline, MetricSpec
from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.counters import Second

RPS = "rps"
NEW_CLIENTS = "new_clients"
DISTINCT_CLIENTS = "distinct_clients"
ERROR_SHARE = "error_share"
LATENCY_P95 = "latency_p95"
TOP_SHARE = "top_share:"  # + dimension name


def metric_specs(config: DetectorConfig) -> list[MetricSpec]:
    return [
        MetricSpec(RPS, min_std=1.0, rel_std=0.1, poisson=True),
        MetricSpec(NEW_CLIENTS, min_std=1.0, rel_std=0.1, poisson=True),
        MetricSpec(DISTINCT_CLIENTS, min_std=1.0, rel_std=0.1, poisson=True),
        MetricSpec(ERROR_SHARE, min_std=0.02),
        MetricSpec(LATENCY_P95, min_std=0.005, rel_std=0.2),
        *(MetricSpec(TOP_SHARE + name, min_std=0.05) for name in config.diversity_dimensions),
    ]


def read(second: Second, new_clients: float, config: DetectorConfig) -> dict[str, float]:
    """The metrics of one second. The origin's metrics are left out of a second with too few origin
    responses to say anything, and a dimension's top share out of one without requests."""
    values = {
        RPS: second.rps,
        NEW_CLIENTS: new_clients / second.duration,
        DISTINCT_CLIENTS: second.clients.estimate(),
    }
    if second.origin_responses >= config.min_responses:
        values[ERROR_SHARE] = second.error_share
        values[LATENCY_P95] = second.latency_quantile(0.95)
    for name in config.diversity_dimensions:
        summary = second.top.get(name)
        if summary is not None and summary.n:
            values[TOP_SHARE + name] = summary.top_share()
    return values


@dataclass(frozen=True, slots=True)
class Verdict:
    level: int  # 0 calm, 1 suspicious, 2 attack
    reasons: tuple[str, ...]  # why, in words, for the event log; empty when calm
    values: dict[str, float]  # the metrics and the scores behind the level

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def judge(values: dict[str, float], baseline: Baseline, config: DetectorConfig) -> Verdict:
    level, reasons = 0, []
    shown = dict(values)
    rps = values[RPS]
    if config.attack_rps and rps >= max(config.attack_rps, config.min_rps):
        level = 2
        reasons.append(f"{rps:.0f} requests/s is over attack_rps {config.attack_rps:.0f}")
    if baseline.ready and rps >= config.min_rps:
        score = baseline.score(RPS, rps)
        shown.update(rps_baseline=score.mean, rps_ratio=score.ratio, rps_z=score.z)
        said = f"{rps:.0f} requests/s is {score.ratio:.1f}x the baseline {score.mean:.0f} (z {score.z:.1f})"
        if score.ratio >= config.attack_ratio and score.z >= config.attack_z:
            level = 2
            reasons.append(said)
        elif score.ratio >= config.elevated_ratio and score.z >= config.elevated_z:
            level = max(level, 1)
            reasons.append(said)
    for reason in _suspicions(values, baseline, config, shown):
        level = max(level, 1)
        reasons.append(reason)
    return Verdict(level, tuple(reasons), shown)


def _suspicions(
    values: dict[str, float], baseline: Baseline, config: DetectorConfig, shown: dict[str, float]
) -> list[str]:
    found = []
    latency = values.get(LATENCY_P95)
    if config.latency_slo and latency is not None and latency >= config.latency_slo:
        found.append(f"origin p95 {latency * 1000:.0f} ms is over the SLO {config.latency_slo * 1000:.0f} ms")
    errors = values.get(ERROR_SHARE)
    if errors is not None and errors >= config.max_error_share:
        found.append(f"{errors:.0%} of origin responses are 5xx")
    if not baseline.ready:
        return found
    for metric, words in ((NEW_CLIENTS, "new clients/s"), (DISTINCT_CLIENTS, "distinct clients/s")):
        count = values[metric]
        if count >= config.min_new_clients:
            score = baseline.score(metric, count)
            shown.update({metric + "_ratio": score.ratio, metric + "_z": score.z})
            if score.ratio >= config.surge_ratio and score.z >= config.surge_z:
                found.append(f"{count:.0f} {words} is {score.ratio:.1f}x the baseline {score.mean:.0f}")
    if values[RPS] >= config.min_rps:
        for name in config.diversity_dimensions:
            share = values.get(TOP_SHARE + name)
            if share is None:
                continue
            score = baseline.score(TOP_SHARE + name, share)
            if share - score.mean >= config.diversity_rise and score.z >= config.elevated_z:
                found.append(f"one {name} has {share:.0%} of requests against {score.mean:.0%} usually")
    return found
