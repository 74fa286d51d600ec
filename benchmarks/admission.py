"""Cost of admission control per request: the paths a request can take through AdmissionController.

- open door: try_admit admits at once, release gives the slot back (the peacetime path);
- saturated: each arrival queues and each release admits the oldest waiter (a flood the queue absorbs);
- shed: the queue is past the arrival's share, try_admit sheds it (the bulk of a flood);
- expire: the sweeper's call when nothing has expired, with a full queue.

Memory: bytes traced per queued ticket. Prints the best of 5 loops, in µs per operation.

    .venv/bin/python -m benchmarks.admission [--loops 200000]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections import deque
from collections.abc import Callable

from shieldwall.admission.controller import AdmissionController, AdmissionSettings, Ticket
from shieldwall.admission.limits import AimdLimit, FixedLimit
from shieldwall.admission.priority import Priority


def best_of_five(step: Callable[[], None], loops: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            step()
        best = min(best, time.perf_counter() - start)
    return best / loops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=200_000)
    args = parser.parse_args()
    clock = [1000.0]

    door = AdmissionController(AimdLimit(latency_target=0.1, initial=100, max_limit=100))

    def open_door() -> None:
        clock[0] += 1e-4
        ticket, _ = door.try_admit(Priority.NORMAL, clock[0])
        door.release(ticket, 0.05, True, clock[0])

    busy = AdmissionController(FixedLimit(100), AdmissionSettings(queue_capacity=1000))
    held: deque[Ticket] = deque(busy.try_admit(Priority.CRITICAL, clock[0])[0] for _ in range(100))
    for _ in range(400):
        busy.try_admit(Priority.CLEARED, clock[0])

    def saturated() -> None:
        clock[0] += 1e-4
        busy.try_admit(Priority.CLEARED, clock[0])
        held.extend(busy.release(held.popleft(), 0.05, True, clock[0]))

    for _ in range(100):
        busy.try_admit(Priority.NORMAL, clock[0])  # the queue is now past NORMAL's half

    def shed() -> None:
        busy.try_admit(Priority.NORMAL, clock[0])

    def expire() -> None:
        busy.expire(clock[0])

    for name, step in (
        ("open door", open_door),
        ("saturated", saturated),
        ("shed", shed),
        ("expire", expire),
    ):
        print(f"{name:>10}: {best_of_five(step, args.loops):.2f} µs per request")

    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    full = AdmissionController(FixedLimit(1), AdmissionSettings(queue_capacity=100_000))
    for _ in range(100_001):
        full.try_admit(Priority.CRITICAL, clock[0])
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{(after - before) / 100_000:.0f} bytes per queued ticket ({full.queued:,} queued)")


if __name__ == "__main__":
    main()
