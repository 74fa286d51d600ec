"""Attack signatures mined automatically: the few feature-value combinations that cover a flood while
sparing the visitors seen in peacetime.

During an attack the detector holds two bounded samples of request features (`features.py`): one from
peacetime (the baseline) and one from the attack window. `mine()` looks for conjunctions of one to three
conditions ("path=/search and query_shape=q=alnum16") that match much of the attack sample and little of
the baseline, and chooses a small set of them by greedy set cover. Each becomes a `Signature` with an
action by confidence: block when it matched (almost) no baseline traffic and names the sender (user
agent, header order, language or network), challenge otherwise.
`SignatureSet` keeps the active ones alive while they match and lets operators pin or reject them.

Work is bounded so that mining can run in the supervisor's event loop:
- each sample is cut to `max_sample` vectors (evenly spaced, so the cut is deterministic);
- only values frequent in the attack sample are considered (apriori: a conjunction is never more frequent
  than its rarest condition), and only the `beam` most over-represented candidates of one level are
  extended to the next; a conjunction is kept only if it matches less baseline traffic than each of its
  parts (otherwise the more general part is the better rule);
- at most `max_evaluations` conjunctions are evaluated per mining run;
- `Miner.step(clock, seconds)` runs the search in slices and can be resumed on the next tick; `mine()` is
  one slice of `time_budget` seconds (or the whole search when no clock is given) and returns the best
  set found within it.
Matches are counted with Python ints as bitsets over the sample (one bit per sampled request), so the
coverage of a conjunction is an AND and a popcount, whatever the number of conditions.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import repeat
from math import ceil
from operator import attrgetter
from typing import Final, Literal

from shieldwall.core.clock import Clock
from shieldwall.detector.features import FEATURE_NAMES, Features

SignatureAction = Literal["block", "challenge"]

DEFAULT_TTL: Final = 120.0
"""Seconds a signature stays active after its last match: longer than the quiet half of a pulse-wave
attack (typically 30 s on, 30 s off), so the rule is still there when the next pulse comes."""

_YIELD_EVERY: Final = 64  # conjunctions evaluated between two chances to stop a slice
_MAX_VALUES: Final = 255  # frequent values per feature (one byte codes them; 0 is "not frequent")
_ORDER: Final = {name: index for index, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True, slots=True)
class MinerConfig:
    """How hard the miner looks and what it accepts. Shares are fractions (0.01 = 1 %)."""

    max_features: int = 3  # conditions per signature
    max_sample: int = 5000  # vectors used from each sample
    min_support: float = 0.02  # a value must match this share of the attack sample to be considered
    min_coverage: float = 0.9  # stop once signatures cover this share of the excess traffic
    max_collateral: float = 0.05  # never propose a signature matching more of the baseline than this
    # "block" only at or below this baseline share, else "challenge"; and only with a baseline sample of
    # at least 3 / block_collateral (3,000 at 0.1 %): no match among fewer does not show a share that small;
    # and only for a signature with a condition on the sender (see _names_sender).
    block_collateral: float = 0.001
    min_gain: float = 0.02  # each signature must add this share of the attack sample to the coverage
    collateral_weight: float = 10.0  # one point of collateral costs this many points of coverage
    max_signatures: int = 8
    beam: int = 32  # candidates of one level extended by another condition
    max_evaluations: int = 10_000  # conjunctions evaluated per mining run (~2-3 µs each)

    def __post_init__(self) -> None:
        if not 1 <= self.max_features <= len(FEATURE_NAMES):
            raise ValueError(f"max_features must be 1 to {len(FEATURE_NAMES)}")
        if min(self.max_sample, self.max_signatures, self.beam, self.max_evaluations) < 1:
            raise ValueError("max_sample, max_signatures, beam and max_evaluations must be positive")
        shares = (self.min_support, self.min_coverage, self.max_collateral, self.block_collateral)
        if not all(0.0 < share <= 1.0 for share in shares) or not 0.0 <= self.min_gain <= 1.0:
            raise ValueError("shares must be within 0 to 1")


DEFAULT_CONFIG: Final = MinerConfig()


@dataclass(frozen=True, slots=True)
class Signature:
    """A temporary rule: every condition (feature name, value) must hold.

    `coverage` is the share of the attack sample it matched, `collateral` the share of the baseline sample
    (the estimated share of legitimate traffic it would hit). `id` is a hash of the conditions alone, so
    the same signature mined again, in another process or after a restart, has the same id."""

    conditions: tuple[tuple[str, str], ...]
    coverage: float
    collateral: float
    action: SignatureAction
    created: float
    expires: float
    id: str = field(init=False)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.conditions]
        if not names or len(set(names)) != len(names) or not all(name in _ORDER for name in names):
            raise ValueError(f"conditions need distinct features from {FEATURE_NAMES}: {self.conditions}")
        conditions = tuple(sorted(self.conditions, key=lambda condition: _ORDER[condition[0]]))
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "id", signature_id(conditions))

    def matches(self, features: Features) -> bool:
        """Every condition holds. A loop, not all(): no generator object per request."""
        for name, value in self.conditions:  # noqa: SIM110
            if getattr(features, name) != value:
                return False
        return True

    def refresh(self, now: float, ttl: float) -> Signature:
        """This signature living at least `ttl` seconds from `now`."""
        return replace(self, expires=max(self.expires, now + ttl))

    def describe(self) -> str:
        """Plain words for an operator: "GET /search with a random 'q' parameter from user agent 'curl/8'"."""
        return describe_conditions(dict(self.conditions))


def signature_id(conditions: Iterable[tuple[str, str]]) -> str:
    """A stable id: "sig-" and 10 hex digits of a hash of the canonical conditions (length-prefixed, so
    no value can forge a separator)."""
    text = "".join(f"{len(name)}:{name}{len(value)}:{value}" for name, value in conditions)
    return "sig-" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()


def match_any(signatures: Iterable[Signature], features: Features) -> Signature | None:
    """The signature that decides a request: the first blocking one that matches, else the first match."""
    found = None
    for signature in signatures:
        if signature.matches(features):
            if signature.action == "block":
                return signature
            if found is None:
                found = signature
    return found


def mine(
    baseline: Sequence[Features],
    attack: Sequence[Features],
    *,
    now: float,
    ttl: float = DEFAULT_TTL,
    config: MinerConfig = DEFAULT_CONFIG,
    legit_share: float = 0.0,
    clock: Clock | None = None,
    time_budget: float = 0.05,
) -> list[Signature]:
    """The signatures that separate `attack` from `baseline`, most important first; [] when none does.

    `legit_share` is the share of the attack window expected to be legitimate (baseline rate / current
    rate, when the caller knows both): the coverage target is then `min_coverage` of the rest. With a
    `clock`, the search stops after `time_budget` seconds and the best set found so far is returned."""
    miner = Miner(baseline, attack, config=config, legit_share=legit_share)
    if clock is None:
        miner.run()
    else:
        miner.step(clock, time_budget)
    return miner.result(now, ttl)


@dataclass(slots=True)
class _Candidate:
    conditions: tuple[tuple[int, str], ...]  # (index in FEATURE_NAMES, value), sorted
    attack_bits: int  # one bit per attack sample, set where it matches
    baseline_bits: int
    attack_hits: int
    baseline_hits: int


class Miner:
    """One mining run, resumable: `step()` as often as the caller's ticks allow, then `result()`.

    The samples are read when the miner is made; later changes to the caller's lists are not seen."""

    def __init__(
        self,
        baseline: Sequence[Features],
        attack: Sequence[Features],
        *,
        config: MinerConfig = DEFAULT_CONFIG,
        legit_share: float = 0.0,
    ) -> None:
        if not 0.0 <= legit_share <= 1.0:
            raise ValueError("legit_share must be within 0 to 1")
        self._config = config
        self._legit_share = legit_share
        self._attack = _evenly_spaced(attack, config.max_sample)
        self._baseline = _evenly_spaced(baseline, config.max_sample)
        self._candidates: list[_Candidate] = []
        self._work = self._search()
        self.evaluations = 0  # conjunctions evaluated so far
        self.done = False

    def step(self, clock: Clock, seconds: float) -> bool:
        """Search for about `seconds` (checked every few dozen evaluations); True once the search is over."""
        deadline = clock.monotonic() + seconds
        for _ in self._work:
            if clock.monotonic() >= deadline:
                return False
        self.done = True
        return True

    def run(self) -> None:
        """Search to the end (still bounded by `max_evaluations`)."""
        for _ in self._work:
            pass
        self.done = True

    def result(self, now: float, ttl: float) -> list[Signature]:
        """The chosen signatures among the candidates evaluated so far, created at `now`."""
        n_attack, n_baseline = len(self._attack), len(self._baseline)
        can_block = n_baseline * self._config.block_collateral >= 3  # see MinerConfig.block_collateral
        signatures = []
        for candidate in self._cover():
            collateral = candidate.baseline_hits / n_baseline
            blocks = can_block and collateral <= self._config.block_collateral and _names_sender(candidate)
            signatures.append(
                Signature(
                    conditions=tuple((FEATURE_NAMES[index], value) for index, value in candidate.conditions),
                    coverage=candidate.attack_hits / n_attack,
                    collateral=collateral,
                    action="block" if blocks else "challenge",
                    created=now,
                    expires=now + ttl,
                )
            )
        return signatures

    def _search(self) -> Iterator[None]:
        """Evaluate candidates level by level, yielding now and then so that a slice can end."""
        config = self._config
        n_attack, n_baseline = len(self._attack), len(self._baseline)
        if n_attack == 0 or n_baseline == 0:
            return  # without a baseline the collateral is unknown: propose nothing
        min_hits = max(2, ceil(config.min_support * n_attack))
        items: list[_Candidate] = []
        for index, name in enumerate(FEATURE_NAMES):
            values = self._frequent_values(index, attrgetter(name), min_hits)
            items.extend(values)
            self._candidates.extend(values)
            self.evaluations += len(values)
            yield
        seen: set[tuple[tuple[int, str], ...]] = set()
        level = items
        for _ in range(config.max_features - 1):
            next_level: list[_Candidate] = []
            for seed in self._seeds(level):
                used = {index for index, _ in seed.conditions}
                for item in items:
                    if item.conditions[0][0] in used:
                        continue
                    conditions = tuple(sorted(seed.conditions + item.conditions))
                    if conditions in seen:
                        continue
                    if self.evaluations >= config.max_evaluations:
                        return
                    seen.add(conditions)
                    self.evaluations += 1
                    if self.evaluations % _YIELD_EVERY == 0:
                        yield
                    attack_bits = seed.attack_bits & item.attack_bits
                    attack_hits = attack_bits.bit_count()
                    if attack_hits < min_hits:
                        continue
                    baseline_bits = seed.baseline_bits & item.baseline_bits
                    baseline_hits = baseline_bits.bit_count()
                    # Useful only if it spares baseline traffic that each of its parts would hit.
                    if baseline_hits < min(seed.baseline_hits, item.baseline_hits):
                        candidate = _Candidate(
                            conditions, attack_bits, baseline_bits, attack_hits, baseline_hits
                        )
                        next_level.append(candidate)
                        self._candidates.append(candidate)
            level = next_level

    def _frequent_values(
        self, index: int, value_of: Callable[[Features], str], min_hits: int
    ) -> list[_Candidate]:
        """One candidate per value of one feature that is frequent in the attack sample (at most
        _MAX_VALUES of them, the most frequent; ties by value)."""
        attack_values = list(map(value_of, self._attack))
        counts = Counter(attack_values)
        frequent = sorted((-hits, value) for value, hits in counts.items() if hits >= min_hits)
        codes = {value: code for code, (_, value) in enumerate(frequent[:_MAX_VALUES], start=1)}
        if not codes:
            return []
        attack_codes = bytes(map(codes.get, attack_values, repeat(0)))
        baseline_codes = bytes(map(codes.get, map(value_of, self._baseline), repeat(0)))
        candidates = []
        for value, code in sorted(codes.items()):
            attack_bits, baseline_bits = _bits(attack_codes, code), _bits(baseline_codes, code)
            candidates.append(
                _Candidate(
                    ((index, value),),
                    attack_bits,
                    baseline_bits,
                    counts[value],
                    baseline_bits.bit_count(),
                )
            )
        return candidates

    def _seeds(self, level: list[_Candidate]) -> list[_Candidate]:
        """The candidates worth another condition: over-represented in the attack, yet matching some
        baseline traffic; the `beam` most over-represented of them."""
        n_attack, n_baseline = len(self._attack), len(self._baseline)
        dirty = [
            candidate
            for candidate in level
            if candidate.baseline_hits > 0
            and candidate.attack_hits * n_baseline > candidate.baseline_hits * n_attack
        ]
        dirty.sort(key=lambda c: (c.baseline_hits / n_baseline - c.attack_hits / n_attack, c.conditions))
        return dirty[: self._config.beam]

    def _cover(self) -> list[_Candidate]:
        """Greedy set cover (lazy: a candidate's gain only shrinks as others are chosen, so a stale score
        is an upper bound and only the top of the heap needs recomputing).

        Score of a candidate: the share of still-uncovered attack samples it matches (its excess
        coverage), minus its collateral weighted by `legit_share` (the legitimate share of the window it
        would match) plus `collateral_weight` (the price of hitting visitors). A candidate is taken only
        with a positive score, a gain of at least `min_gain` and a collateral of at most `max_collateral`.
        Ties go to a candidate that names the sender (it may block, see `_names_sender`), then to fewer
        conditions (the more general rule), then to the smaller conditions tuple, so the result is
        deterministic."""
        config = self._config
        n_attack, n_baseline = len(self._attack), len(self._baseline)
        if n_attack == 0 or n_baseline == 0:
            return []
        weight = self._legit_share + config.collateral_weight
        min_gain_hits = max(1, ceil(config.min_gain * n_attack))
        target = ceil(config.min_coverage * (1.0 - self._legit_share) * n_attack)

        def score(gain: int, candidate: _Candidate) -> float:
            return gain / n_attack - weight * candidate.baseline_hits / n_baseline

        max_hits = config.max_collateral * n_baseline
        eligible = [candidate for candidate in self._candidates if candidate.baseline_hits <= max_hits]
        heap = [
            (-score(c.attack_hits, c), not _names_sender(c), len(c.conditions), c.conditions, i)
            for i, c in enumerate(eligible)
        ]
        heapq.heapify(heap)
        uncovered = (1 << n_attack) - 1
        chosen: list[_Candidate] = []
        while heap and len(chosen) < config.max_signatures and n_attack - uncovered.bit_count() < target:
            _, anonymous, size, conditions, i = heapq.heappop(heap)
            candidate = eligible[i]
            gain = (candidate.attack_bits & uncovered).bit_count()
            fresh = (-score(gain, candidate), anonymous, size, conditions, i)
            if gain < min_gain_hits or fresh[0] >= 0:
                continue  # never useful again: gains only shrink
            if heap and heap[0] < fresh:
                heapq.heappush(heap, fresh)
                continue
            chosen.append(candidate)
            uncovered &= ~candidate.attack_bits
        return chosen


_SENDER_FEATURES: Final = frozenset(
    _ORDER[name] for name in ("user_agent", "header_order", "accept_language", "prefix")
)


def _names_sender(candidate: _Candidate) -> bool:
    """A condition on who sends (client software, its header order, its users' language, its network),
    not only on what is asked (method, host, path, query shape).

    Only such a signature may block. A flash crowd (viewers of a TV debate opening the page it showed,
    all with the same tracking parameter) asks for one new thing no baseline request asked for, so a
    signature on the request alone would have no collateral and would block real visitors; a challenge
    lets them through."""
    return any(index in _SENDER_FEATURES for index, _ in candidate.conditions)


def _evenly_spaced(sample: Sequence[Features], limit: int) -> Sequence[Features]:
    """A copy of at most `limit` vectors (the caller's reservoir may change while a run is sliced)."""
    if len(sample) <= limit:
        return tuple(sample)
    return [sample[i * len(sample) // limit] for i in range(limit)]


def _bits(codes: bytes, code: int) -> int:
    """One bit per sample, set where the sample's code is `code` (sample i is bit len - 1 - i: any fixed
    order does, as bitsets are only ANDed and counted). One byte per sample becomes the digit "0" or "1"
    and the digits are parsed as a binary number, all in C: ~10 µs for 5,000 samples, where setting bits
    one by one in Python costs ~1 ms per feature."""
    table = bytearray(b"0" * 256)
    table[code] = ord("1")
    return int(codes.translate(table), 2)


class SignatureSet:
    """The active signatures of one incident, in the supervisor.

    A signature lives `ttl` seconds after it was proposed or last matched (the caller reports match
    counts per tick); pinned ones live until unpinned, even past the incident; rejected ids are never
    proposed again during the incident. `end_incident()` drops everything not pinned."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, max_active: int = 32) -> None:
        self.ttl = ttl
        self.max_active = max_active
        self._active: dict[str, Signature] = {}
        self._pinned: set[str] = set()
        self._rejected: set[str] = set()

    @property
    def active(self) -> tuple[Signature, ...]:
        return tuple(self._active.values())

    def get(self, signature_id: str) -> Signature | None:
        return self._active.get(signature_id)

    def is_pinned(self, signature_id: str) -> bool:
        return signature_id in self._pinned

    def is_rejected(self, signature_id: str) -> bool:
        return signature_id in self._rejected

    def propose(self, signatures: Iterable[Signature], now: float) -> list[Signature]:
        """Add freshly mined signatures; returns those that are new. One already active keeps its
        `created` time and takes the new figures and action; a rejected one is ignored, as are new
        ones beyond `max_active`."""
        added = []
        for signature in signatures:
            if signature.id in self._rejected:
                continue
            old = self._active.get(signature.id)
            if old is not None:
                self._active[signature.id] = replace(
                    signature, created=old.created, expires=max(old.expires, now + self.ttl)
                )
            elif len(self._active) < self.max_active:
                self._active[signature.id] = replace(signature, created=now, expires=now + self.ttl)
                added.append(self._active[signature.id])
        return added

    def report_matches(self, counts: Mapping[str, int], now: float) -> None:
        """Requests matched per signature id since the last report: each one that matched lives on."""
        for signature_id, count in counts.items():
            signature = self._active.get(signature_id)
            if signature is not None and count > 0:
                self._active[signature_id] = signature.refresh(now, self.ttl)

    def expire(self, now: float) -> list[Signature]:
        """Remove and return the signatures whose time is up (never pinned ones)."""
        gone = [
            signature
            for signature_id, signature in self._active.items()
            if signature.expires <= now and signature_id not in self._pinned
        ]
        for signature in gone:
            del self._active[signature.id]
        return gone

    def pin(self, signature_id: str) -> bool:
        """Keep an active signature until unpinned; False when no such signature is active."""
        if signature_id not in self._active:
            return False
        self._pinned.add(signature_id)
        return True

    def unpin(self, signature_id: str, now: float) -> bool:
        """Back to living by its matches, starting with a full `ttl`; False when it was not pinned."""
        if signature_id not in self._pinned:
            return False
        self._pinned.discard(signature_id)
        self._active[signature_id] = self._active[signature_id].refresh(now, self.ttl)
        return True

    def reject(self, signature_id: str) -> Signature | None:
        """Drop a signature and never take it again during this incident (also an id not active now,
        e.g. one that already expired). Returns the signature it removed, if any."""
        self._rejected.add(signature_id)
        self._pinned.discard(signature_id)
        return self._active.pop(signature_id, None)

    def end_incident(self) -> list[Signature]:
        """The attack is over: remove and return every signature not pinned; forget the rejections."""
        gone = [
            signature for signature_id, signature in self._active.items() if signature_id not in self._pinned
        ]
        for signature in gone:
            del self._active[signature.id]
        self._rejected.clear()
        return gone


def describe_conditions(conditions: Mapping[str, str]) -> str:
    """Conditions in plain words, in a fixed order: what is asked, how, by what, from where."""
    method, host, path = conditions.get("method"), conditions.get("host"), conditions.get("path")
    target = (host or "") + (path or "")
    if method is not None and target:
        words = [f"{method} {target}"]
    elif method is not None:
        words = [f"{method} requests"]
    elif target:
        words = [f"requests to {target}" if path is not None else f"requests to host {host}"]
    else:
        words = ["requests"]
    shape = conditions.get("query_shape")
    if shape is not None:
        words.append(_describe_query(shape))
    agent = conditions.get("user_agent")
    if agent is not None:
        words.append(f"from user agent '{agent}'" if agent else "without a user agent")
    prefix = conditions.get("prefix")
    if prefix is not None:
        words.append(f"from network {prefix}")
    order = conditions.get("header_order")
    if order is not None:
        words.append(f"with header-order fingerprint {order}")
    language = conditions.get("accept_language")
    if language is not None:
        words.append(f"with Accept-Language '{language}'" if language else "without Accept-Language")
    return " ".join(words)


_KINDS: Final = {
    "num": "numeric",
    "hex": "hex",
    "alpha": "text",
    "alnum": "letters-and-digits",
    "other": "free-form",
}


def _describe_query(shape: str) -> str:
    """ "q=alnum16&page=num1" → "with a random 'q' parameter and a numeric 'page' parameter"."""
    if not shape:
        return "without a query string"
    parts = []
    for param in shape.split("&"):
        name, equals, kind = param.partition("=")
        if param == "+more":
            parts.append("more parameters")
        elif name.startswith("~"):
            parts.append("a random-looking parameter name")
        elif not equals:
            parts.append(f"a bare '{name}'")
        else:
            parts.append(f"{_describe_value(kind)} '{name}' parameter")
    return "with " + " and ".join(parts)


def _describe_value(kind: str) -> str:
    """ "alnum16" → "a random": long tokens of digits and letters are what cache busters send."""
    letters = kind.rstrip("0123456789")
    if letters == "empty":
        return "an empty"
    if letters in ("num", "hex", "alnum") and int(kind[len(letters) :]) >= 8:
        return "a random"
    return "a " + _KINDS.get(letters, letters)
