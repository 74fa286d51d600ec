"""A flood of distinct client keys against a full GCRA table: the cost per check must not grow with the
table (state exhaustion must not become CPU exhaustion). Prints µs per check for several table sizes.

    .venv/bin/python -m benchmarks.limiter_flood
"""

from __future__ import annotations

import time

from shieldwall.limiter.gcra import Gcra


def main() -> None:
    for max_keys in (10_000, 100_000, 1_000_000):
        limiter = Gcra(rate=1.0, burst=5, max_keys=max_keys)
        keys = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:{i}" for i in range(3 * max_keys)]
        start = time.perf_counter()
        for key in keys:
            limiter.check(key, 1000.0)
        per_check = (time.perf_counter() - start) / len(keys)
        print(f"table of {max_keys:>9,} keys, {len(keys):>9,} distinct keys: {per_check * 1e6:.2f} µs/check")


if __name__ == "__main__":
    main()
