"""How hard a proof of work to ask for: leading zero bits, from the threat level and the client's record.

Each bit doubles the work: a visitor tries 2**bits nonces on average, and the search is random (one
visitor in 20 needs three times the average). Measured with the page's own script on the 2-core dev
machine: headless Chromium ~72,000 SHA-256 a second through WebCrypto (batched 256 at a time: in Node,
one call at a time was ~3 times slower) and ~210,000 with the pure-JS fallback; Node 20 ~95,000 and
~340,000. A mid-range phone runs JavaScript some 3-5 times slower: ~15,000-25,000 a second through
WebCrypto and ~40,000-70,000 in pure JS (estimates, not measured on a phone).

- level 0 (normal): `base` bits, 16: 65,536 tries, ~0.9 s in Chromium on the dev machine through
  WebCrypto, ~3-4 s on such a phone (1-2 s in pure JS);
- each threat level above 0 (1 elevated, 2 under attack) adds `per_level` bits (1: twice the work);
- each offence on the client's record (refusals, bans) adds `per_offence` bits (1), at most
  `max_offence_bits` (4: sixteen times the work), so a repeat offender pays more while an honest
  neighbour behind the same prefix is not locked out;
- the total is capped at `cap` bits (22: ~4.2 million tries, ~1 minute in Chromium on the dev machine
  through WebCrypto and several on a phone): only a client already under suspicion at the top threat
  level gets near it. More would only punish browsers: a bot with native SHA-256 (millions a second
  per core) solves even 22 bits in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from shieldwall.challenge.pow import MAX_DIFFICULTY


@dataclass(frozen=True, slots=True)
class DifficultyPolicy:
    base: int = 16
    per_level: int = 1
    per_offence: int = 1
    max_offence_bits: int = 4
    cap: int = 22

    def __post_init__(self) -> None:
        if not 0 <= self.base <= self.cap <= MAX_DIFFICULTY:
            raise ValueError(f"need 0 <= base <= cap <= {MAX_DIFFICULTY} bits")
        if min(self.per_level, self.per_offence, self.max_offence_bits) < 0:
            raise ValueError("difficulty increments cannot be negative")

    def bits(self, level: int, offences: int) -> int:
        """The difficulty for a client with `offences` on its record at threat `level` (0, 1, 2)."""
        if level < 0 or offences < 0:
            raise ValueError("the threat level and the offence count cannot be negative")
        extra = level * self.per_level + min(offences * self.per_offence, self.max_offence_bits)
        return min(self.base + extra, self.cap)
