"""Cost of Policy.decide() with 100 rules and 1 M tracked keys, and the memory per tracked key.

The policy: 96 rules that do not match the request (exact paths, prefixes, globs, regexes, hosts,
methods, headers, client CIDRs), then four limit rules that count every request: per ip, per /24, per
route and per API-key header. Before timing, 1,000,000 distinct client addresses are counted through the
per-ip rule (tracked_keys = 1 M), so its GCRA table is full, as in a large distributed flood. Requests
then come from random addresses among those 1 M (each decide() looks up and updates a full table).

    .venv/bin/python -m benchmarks.policy_decide [--keys 1000000] [--requests 200000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc

from shieldwall.config.policy_schema import Rule
from shieldwall.net.client_identity import client_prefix
from shieldwall.policy.compile import compile_policy
from shieldwall.policy.decision import RequestView
from shieldwall.policy.engine import Policy


def rules() -> list[Rule]:
    data: list[dict[str, object]] = []
    for i in range(24):
        data.append({"name": f"path-{i}", "action": "block", "match": {"path": f"/never/{i}"}})
        data.append({"name": f"prefix-{i}", "action": "block", "match": {"path_prefix": f"/nope{i}/"}})
        data.append({"name": f"glob-{i}", "action": "block", "match": {"path_glob": f"/x{i}/*.php"}})
        data.append({"name": f"misc-{i}", "action": "block", "match": _misc(i)})
    limits = [
        ("per-ip", "ip"),
        ("per-prefix", "prefix"),
        ("per-route", "route"),
        ("per-key", "header:x-api-key"),
    ]
    for name, per in limits:
        data.append({"name": name, "action": "limit", "limit": {"rate": 1e9, "burst": 1000, "per": per}})
    return [Rule.model_validate(rule) for rule in data]


def _misc(i: int) -> dict[str, object]:
    kinds: list[dict[str, object]] = [
        {"path_regex": f"^/search/{i}[0-9]+$"},
        {"hosts": [f"host{i}.example.org", f"*.h{i}.example.net"]},
        {"methods": ["DELETE"], "path_prefix": "/api/"},
        {"headers": {"user-agent": f"evilbot{i}"}},
        {"clients": [f"192.0.{i}.0/24", f"2001:db8:{i}::/48"]},
    ]
    return kinds[i % len(kinds)]


def view(ip: str) -> RequestView:
    return RequestView(
        client_ip=ip,
        prefix=client_prefix(ip),
        method=b"GET",
        host=b"www.example.org",
        path=b"/news/today",
        query=b"",
        headers=((b"user-agent", b"Mozilla/5.0"), (b"x-api-key", b"k-12345")),
    )


def address(n: int) -> str:
    return f"{10 + (n >> 24)}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()

    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    policy: Policy = compile_policy(rules(), tracked_keys=args.keys)
    views = [view(address(n)) for n in range(1000)]  # building views is the data plane's cost, not decide()'s
    filled = time.perf_counter()
    now = 1000.0
    for n in range(args.keys):
        policy.decide(view(address(n)), now)
    filled = time.perf_counter() - filled
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_key = (after - before) / args.keys
    print(
        f"filled {args.keys:,} keys in {filled:.1f} s; memory traced: {(after - before) / 2**20:.0f} MiB, "
        f"{per_key:.0f} bytes per tracked key (the per-ip, per-/24 and per-key tables together)"
    )

    rng = random.Random(1)
    sample = [view(address(rng.randrange(args.keys))) for _ in range(10_000)]
    timings = []
    decide = policy.decide
    for i in range(args.requests):
        v = sample[i % len(sample)]
        t = time.perf_counter_ns()
        decide(v, now)
        timings.append(time.perf_counter_ns() - t)
        now += 1e-6
    timings.sort()
    p50 = statistics.median(timings) / 1000
    p99 = timings[int(len(timings) * 0.99)] / 1000
    print(
        f"decide() with {len(policy.rules)} rules, {args.keys:,} tracked keys: "
        f"median {p50:.2f} µs, p99 {p99:.2f} µs over {args.requests:,} calls"
    )
    del views


if __name__ == "__main__":
    main()
