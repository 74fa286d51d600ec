"""One second of a worker's traffic, counted on the hot path and sent to the supervisor as one message.

The data plane bumps plain list slots and int attributes (indices are small ints, never strings), and once
a second calls `snapshot_and_reset(now)`, which freezes the counts into a `WorkerSecond` and starts a new
second. `WorkerSecond.to_bytes()` is one JSON document (stdlib, ~40 KB with a p=14 sketch), and the
supervisor's `merge()` adds the workers' seconds into one `Second` for the detector.

What the shield decided (`Outcome`) and what the origin answered (status class, latency) are counted
apart: a 503 the shield sends while shedding is an outcome, not an origin error, so shedding never looks
like the origin failing.
"""

from __future__ import annotations

import base64
import json
import random
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

from shieldwall.detector.sketches import HeavyHitters, HyperLogLog, Reservoir, Summary, merge_samples


class Outcome(IntEnum):
    """What the shield did with a request; the value indexes `SecondCounters.by_outcome`."""

    ALLOW = 0  # sent to the origin
    CACHE = 1  # answered from the cache shield
    LIMIT = 2  # 429
    BLOCK = 3  # 403
    CHALLENGE = 4  # a challenge page instead of the content
    SHED = 5  # 503 by admission control


LEGIT_OUTCOMES: Final = (Outcome.ALLOW, Outcome.CACHE)
"""Requests served (by the origin or the cache); every other outcome is mitigated."""

STATUS_CLASSES: Final = 5  # 1xx..5xx
# Upper bounds of the origin latency buckets: 1 ms * sqrt(2)**i, 1 ms to 185 s, plus one bucket above.
# Factor sqrt(2) keeps a quantile read from the histogram within ~20 % of the truth after interpolation.
LATENCY_BOUNDS: Final = tuple(0.001 * 2 ** (i / 2) for i in range(36))
LATENCY_BUCKETS: Final = len(LATENCY_BOUNDS) + 1
_COUNTED_CLIENTS: Final = 4096
# Past SKETCH_ALL requests in a second, a worker sketches one request in SKETCH_STRIDE on average, at
# random, weighted by the requests it stands for: under a flood, building the four keys and updating the
# four summaries was the largest share of the per-request telemetry. Measured with
# `benchmarks.python_path --scenario reject` (best of 5 x 30,000, three alternations on an idle machine):
# 15.0-15.7 µs per 429 sketching every request, 13.6-14.7 µs sampled. A heavy hitter is heavy in the
# sample too; the count of distinct clients stays exact.
SKETCH_ALL: Final = 1000
SKETCH_STRIDE: Final = 8
MAX_ANSWERED: Final = 256  # reference IDs a worker reports per second (a flood's refusals beyond are counted)
DEFAULT_DIMENSIONS: Final = ("client_ip", "prefix", "path", "user_agent")
FeatureTuple = tuple[str, ...]


def latency_bucket(seconds: float) -> int:
    return bisect_left(LATENCY_BOUNDS, seconds)


def latency_quantile(histogram: Sequence[int], q: float) -> float:
    """The q-quantile (0 < q <= 1) of the latencies in a histogram, interpolated linearly inside its
    bucket; 0.0 for an empty histogram, the last bound when it falls in the open top bucket."""
    total = sum(histogram)
    if not total:
        return 0.0
    rank = q * total
    below = 0
    for index, count in enumerate(histogram):
        if count and below + count >= rank:
            if index >= len(LATENCY_BOUNDS):
                return LATENCY_BOUNDS[-1]
            low = LATENCY_BOUNDS[index - 1] if index else 0.0
            return low + (LATENCY_BOUNDS[index] - low) * (rank - below) / count
        below += count
    return LATENCY_BOUNDS[-1]


class SecondCounters:
    """A worker's counts for the current second. Hot-path calls, with their cost measured on the 2-core
    dev machine (Python 3.11, loop overhead subtracted): request() 0.08 µs, origin_start() 0.04 µs,
    origin_done() 0.17 µs, sketch() with four dimensions 0.8 µs for a client already seen this second
    and 1.6 µs for a new one, sample.wants() 0.05 µs; snapshot_and_reset() 0.5 ms once a second.

    Per request the data plane calls:
      - `request(route_class, outcome)` once it has decided;
      - `sketch(client_ip, keys)` with one key per name in `dimensions` (heavy hitters per dimension and
        the distinct-client sketch);
      - `if counters.sample.wants(): counters.sample.put(feature_tuple)` for the signature miner's sample;
      - `origin_start()` when the request goes to the origin, `origin_done(status, latency)` when its
        response head arrives (a 502/504 the shield makes for a failed origin counts as that status;
        status 0: the exchange ended without a response, only the in-flight gauge moves).
    Per connection: `new_connections += 1`; per read/write: `bytes_in += n`, `bytes_out += n`."""

    __slots__ = (
        "_counted",
        "_heavy_hitters",
        "_reported",
        "_rng",
        "_route_classes",
        "_sample_size",
        "_sketch_due",
        "_skipped",
        "answered",
        "answered_dropped",
        "by_outcome",
        "by_route",
        "by_status",
        "bytes_in",
        "bytes_out",
        "clients",
        "dimensions",
        "inflight",
        "inflight_peak",
        "latency",
        "new_connections",
        "sample",
        "started",
        "top",
        "worker",
    )

    def __init__(
        self,
        worker: int,
        now: float,
        *,
        route_classes: int = 8,
        dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
        hll_precision: int = 14,
        heavy_hitters: int = 1024,
        reported: int = 64,
        sample_size: int = 256,
        rng: random.Random | None = None,
    ) -> None:
        self.worker = worker
        self.dimensions = tuple(dimensions)
        self._route_classes = route_classes
        self._heavy_hitters = heavy_hitters
        self._reported = reported
        self._sample_size = sample_size
        self._rng = rng if rng is not None else random.Random()
        self.inflight = 0  # a gauge: requests at the origin now; survives the reset
        self.clients = HyperLogLog(hll_precision)
        self._reset(now)

    def _reset(self, now: float) -> None:
        self.started = now
        self.by_route = [0] * self._route_classes
        self.by_outcome = [0] * len(Outcome)
        self.by_status = [0] * STATUS_CLASSES
        self.latency = [0] * LATENCY_BUCKETS
        self.inflight_peak = self.inflight
        self.new_connections = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.clients = HyperLogLog(self.clients.precision)
        self._counted: set[str] = set()
        self.top = tuple(HeavyHitters(self._heavy_hitters) for _ in self.dimensions)
        self.sample: Reservoir[FeatureTuple] = Reservoir(self._sample_size, self._rng)
        self.answered: list[Answered] = []  # at most MAX_ANSWERED a second (see `answer`)
        self.answered_dropped = 0
        self._sketch_due = SKETCH_ALL  # requests this second before sampling starts (see SKETCH_ALL)
        self._skipped = 0  # requests since the last one sketched, once sampling

    def wants_answer(self) -> bool:
        """Whether `answer` would keep a record now (else it only counts it as dropped)."""
        if len(self.answered) < MAX_ANSWERED:
            return True
        self.answered_dropped += 1
        return False

    def answer(self, record: Answered) -> None:
        """Keep a request the shield answered itself, for reference-ID lookups (bounded per second)."""
        if len(self.answered) < MAX_ANSWERED:
            self.answered.append(record)
        else:
            self.answered_dropped += 1

    def request(self, route: int, outcome: Outcome) -> None:
        self.by_route[route] += 1
        self.by_outcome[outcome] += 1

    def sketch_weight(self) -> int:
        """How many requests this one's keys stand for in the heavy hitters: 1 for the first SKETCH_ALL
        requests of a second, then 0 (skip it: call `count_client` alone) for most, and for one in
        SKETCH_STRIDE on average, at random, the requests since the last one sketched."""
        if self._sketch_due > 0:
            self._sketch_due -= 1
            return 1
        self._skipped += 1
        if self._rng.random() * SKETCH_STRIDE >= 1.0:
            return 0
        weight, self._skipped = self._skipped, 0
        return weight

    def count_client(self, client_ip: str) -> None:
        """Count a client into this second's distinct clients (every request, sampled or not)."""
        # Most requests come from a client already counted this second: a set lookup (0.04 µs) spares
        # the hash (0.5 µs). The set is emptied when full, which at worst hashes a client again.
        if client_ip not in self._counted:
            if len(self._counted) >= _COUNTED_CLIENTS:
                self._counted.clear()
            self._counted.add(client_ip)
            self.clients.add(client_ip)

    def sketch(self, client_ip: str, keys: Sequence[str], weight: int = 1) -> None:
        """`keys[i]` is this request's value for `dimensions[i]`; `weight`: see `sketch_weight`."""
        self.count_client(client_ip)
        for summary, key in zip(self.top, keys, strict=True):
            summary.add(key, weight)

    def origin_start(self) -> None:
        self.inflight += 1
        if self.inflight > self.inflight_peak:  # noqa: PLR1730 (hot path: max() is a call)
            self.inflight_peak = self.inflight

    def origin_done(self, status: int, latency: float) -> None:
        self.inflight -= 1
        if 100 <= status <= 599:
            self.by_status[status // 100 - 1] += 1
            self.latency[bisect_left(LATENCY_BOUNDS, latency)] += 1

    def snapshot_and_reset(self, now: float, stats: Mapping[str, int] | None = None) -> WorkerSecond:
        """Freeze the counts since the last call (or construction) and start counting afresh at `now`."""
        second = WorkerSecond(
            worker=self.worker,
            started=self.started,
            ended=now,
            by_route=tuple(self.by_route),
            by_outcome=tuple(self.by_outcome),
            by_status=tuple(self.by_status),
            latency=tuple(self.latency),
            inflight=self.inflight,
            inflight_peak=self.inflight_peak,
            new_connections=self.new_connections,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            hll_precision=self.clients.precision,
            clients=bytes(self.clients.registers),
            top={
                name: top.summary(self._reported) for name, top in zip(self.dimensions, self.top, strict=True)
            },
            sample_seen=self.sample.seen,
            sample=tuple(self.sample.items),
            stats=stats or {},
            answered=tuple(self.answered),
        )
        self._reset(now)
        return second


@dataclass(frozen=True, slots=True)
class Answered:
    """A request the shield answered itself (a refusal, a challenge, a shed), by its reference ID: what
    the visitor sees on the page, so that an operator can look up why."""

    ref: str
    wall: float
    client: str
    method: str
    target: str  # truncated
    status: int
    reason: str  # "rule no-wp", "signature sig-…", "mode-under_attack", "request rate", "origin saturated"…

    def to_wire(self) -> list[Any]:
        return [self.ref, self.wall, self.client, self.method, self.target, self.status, self.reason]

    @staticmethod
    def from_wire(item: Any) -> Answered:
        ref, wall, client, method, target, status, reason = _list(item)
        return Answered(
            str(ref), float(wall), str(client), str(method), str(target), int(status), str(reason)
        )


@dataclass(frozen=True, slots=True)
class WorkerSecond:
    """One worker's counts over [started, ended) on the monotonic clock (shared by all processes of one
    host). Plain values only, so it can be pickled, or sent as `to_bytes()` over a pipe."""

    worker: int
    started: float
    ended: float
    by_route: tuple[int, ...]
    by_outcome: tuple[int, ...]  # indexed by Outcome
    by_status: tuple[int, ...]  # origin responses: [0] 1xx .. [4] 5xx
    latency: tuple[int, ...]  # origin latency histogram over LATENCY_BOUNDS
    inflight: int  # at `ended`
    inflight_peak: int
    new_connections: int
    bytes_in: int
    bytes_out: int
    hll_precision: int
    clients: bytes  # HyperLogLog registers of the client addresses seen
    top: Mapping[str, Summary] = field(default_factory=dict)  # heavy hitters per dimension
    sample_seen: int = 0  # requests the sample was drawn from
    sample: tuple[FeatureTuple, ...] = ()
    # For the operator, not the detector: the worker's own counters and gauges (admission, cache, bans,
    # refusals by reason), and the requests it answered itself with a reference ID (see Answered).
    stats: Mapping[str, int] = field(default_factory=dict)
    answered: tuple[Answered, ...] = ()

    def to_bytes(self) -> bytes:
        document = {
            "worker": self.worker,
            "started": self.started,
            "ended": self.ended,
            "by_route": self.by_route,
            "by_outcome": self.by_outcome,
            "by_status": self.by_status,
            "latency": self.latency,
            "inflight": self.inflight,
            "inflight_peak": self.inflight_peak,
            "new_connections": self.new_connections,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "hll_precision": self.hll_precision,
            "clients": base64.b64encode(self.clients).decode("ascii"),
            "top": {name: summary.to_wire() for name, summary in self.top.items()},
            "sample_seen": self.sample_seen,
            "sample": self.sample,
            "stats": dict(self.stats),
            "answered": [answer.to_wire() for answer in self.answered],
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @staticmethod
    def from_bytes(data: bytes) -> WorkerSecond:
        """Raises ValueError (json.JSONDecodeError is one) or KeyError on a malformed message."""
        d = json.loads(data)
        if not isinstance(d, dict):
            raise ValueError("a WorkerSecond is a JSON object")
        top = d["top"]
        if not isinstance(top, dict):
            raise ValueError("top must be an object")
        return WorkerSecond(
            worker=int(d["worker"]),
            started=float(d["started"]),
            ended=float(d["ended"]),
            by_route=_ints(d["by_route"]),
            by_outcome=_ints(d["by_outcome"]),
            by_status=_ints(d["by_status"]),
            latency=_ints(d["latency"]),
            inflight=int(d["inflight"]),
            inflight_peak=int(d["inflight_peak"]),
            new_connections=int(d["new_connections"]),
            bytes_in=int(d["bytes_in"]),
            bytes_out=int(d["bytes_out"]),
            hll_precision=int(d["hll_precision"]),
            clients=base64.b64decode(str(d["clients"]), validate=True),
            top={str(name): Summary.from_wire(wire) for name, wire in top.items()},
            sample_seen=int(d["sample_seen"]),
            sample=tuple(tuple(str(value) for value in _list(item)) for item in _list(d["sample"])),
            stats={str(key): int(value) for key, value in dict(d.get("stats", {})).items()},
            answered=tuple(Answered.from_wire(item) for item in _list(d.get("answered", []))),
        )


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(int(item) for item in _list(value))


@dataclass(frozen=True, slots=True)
class Second:
    """The whole shield's traffic for one second: the sum of the workers' seconds. `at` (the latest
    worker's end, monotonic) is the time the detector judges it at."""

    at: float
    duration: float  # mean length of the workers' seconds, to turn counts into rates
    workers: int
    by_route: tuple[int, ...]
    by_outcome: tuple[int, ...]
    by_status: tuple[int, ...]
    latency: tuple[int, ...]
    inflight: int
    inflight_peak: int  # sum of the workers' peaks (an upper bound of the true peak)
    new_connections: int
    bytes_in: int
    bytes_out: int
    clients: HyperLogLog  # not to be mutated: the detector folds it into its own sketches
    top: Mapping[str, Summary]
    sample_seen: int
    sample: tuple[FeatureTuple, ...]
    stats: Mapping[str, int] = field(default_factory=dict)  # summed over the workers
    answered: tuple[Answered, ...] = ()

    @property
    def requests(self) -> int:
        return sum(self.by_outcome)

    @property
    def rps(self) -> float:
        return self.requests / self.duration

    @property
    def legit(self) -> int:
        return sum(self.by_outcome[outcome] for outcome in LEGIT_OUTCOMES)

    @property
    def mitigated(self) -> int:
        return self.requests - self.legit

    @property
    def origin_responses(self) -> int:
        return sum(self.by_status)

    @property
    def error_share(self) -> float:
        """Share of origin responses that were 5xx (0.0 without responses)."""
        responses = self.origin_responses
        return self.by_status[4] / responses if responses else 0.0

    def latency_quantile(self, q: float) -> float:
        return latency_quantile(self.latency, q)


def merge(
    parts: Sequence[WorkerSecond],
    *,
    top_size: int = 64,
    sample_size: int = 256,
    rng: random.Random | None = None,
) -> Second:
    """Add up the workers' seconds. Heavy hitters merge with the error bound of `Summary.merge` (at most
    the sum of the workers' floors); the samples merge into one uniform sample of all their requests.
    Workers running different configs (during a reload) may send different numbers of route classes
    (the shorter lists count as zero-padded) or sketch precisions (clients of workers whose precision
    differs from the first part's are left out of the distinct count for that second)."""
    if not parts:
        raise ValueError("merge needs at least one worker's second")
    clients = HyperLogLog(parts[0].hll_precision, parts[0].clients)
    for part in parts[1:]:
        if part.hll_precision == clients.precision:  # else a draining worker of an older config
            clients.merge(HyperLogLog(part.hll_precision, part.clients))
    names = dict.fromkeys(name for part in parts for name in part.top)
    top = {
        name: Summary.merge([part.top[name] for part in parts if name in part.top], top_size)
        for name in names
    }
    # A worker that saw more requests than it sampled was at its reservoir's capacity: the merged sample
    # can be no larger than that, or that worker's share could not be drawn from its sample.
    full = [len(part.sample) for part in parts if part.sample_seen > len(part.sample)]
    sample_seen, sample = merge_samples(
        [(part.sample_seen, part.sample) for part in parts],
        min([sample_size, *full]),
        rng if rng is not None else random.Random(),
    )
    return Second(
        at=max(part.ended for part in parts),
        duration=max(sum(part.ended - part.started for part in parts) / len(parts), 1e-3),
        workers=len(parts),
        by_route=_sum_columns(part.by_route for part in parts),
        by_outcome=_sum_columns(part.by_outcome for part in parts),
        by_status=_sum_columns(part.by_status for part in parts),
        latency=_sum_columns(part.latency for part in parts),
        inflight=sum(part.inflight for part in parts),
        inflight_peak=sum(part.inflight_peak for part in parts),
        new_connections=sum(part.new_connections for part in parts),
        bytes_in=sum(part.bytes_in for part in parts),
        bytes_out=sum(part.bytes_out for part in parts),
        clients=clients,
        top=top,
        sample_seen=sample_seen,
        sample=tuple(sample),
        stats=_sum_stats(part.stats for part in parts),
        answered=tuple(answer for part in parts for answer in part.answered),
    )


def _sum_stats(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for stats in parts:
        for key, value in stats.items():
            total[key] = total.get(key, 0) + value
    return total


def _sum_columns(rows: Iterable[Sequence[int]]) -> tuple[int, ...]:
    totals: list[int] = []
    for row in rows:
        if len(row) > len(totals):
            totals.extend([0] * (len(row) - len(totals)))
        for index, value in enumerate(row):
            totals[index] += value
    return tuple(totals)
