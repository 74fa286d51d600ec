"""CPU time and peak memory of a server's processes, read from /proc.

The benchmark's main figure is server CPU time per request: on a small machine the load generator
saturates before a fast proxy does, so requests per second mostly measure wrk. The kernel's per-process
utime+stime counters (in clock ticks) are read before and after a load run; their difference, summed
over every process of the server (nginx master + worker, shieldwall supervisor + worker), is the CPU the
server spent on that run, whoever it was scheduled by.

The proxy CPU's busy time (/proc/stat) is read too. What it did beyond the proxy's processes (other
programs on a shared machine, kernel work charged to no process) is reported as a warning beside the
figure, never added to it: it is tick-sampled, so a few percent either way mean nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shieldwall.drill.processes import parse_status_kib

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class ProcessSetChanged(RuntimeError):
    """A server process appeared or vanished during a measured run: its CPU time cannot be attributed."""


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of /proc/PID/stat the benchmark uses (proc(5) numbers them from 1)."""

    pid: int
    state: str  # field 3: R, S, D, Z ...
    session: int  # field 6
    utime: int  # field 14, clock ticks in user mode
    stime: int  # field 15, clock ticks in kernel mode

    @property
    def cpu_ticks(self) -> int:
        return self.utime + self.stime


def parse_stat(text: str) -> ProcStat:
    """Parse one /proc/PID/stat line. The command name (field 2) is in parentheses and may itself
    contain spaces and ')', so fields are counted from after its *last* ')'."""
    head, sep, tail = text.rpartition(")")
    if not sep or " (" not in head:
        raise ValueError(f"not a /proc/PID/stat line: {text[:80]!r}")
    fields = tail.split()  # fields[0] is field 3
    if len(fields) < 13:
        raise ValueError(f"/proc/PID/stat line has {len(fields) + 2} fields, expected at least 15")
    return ProcStat(
        pid=int(head.split(" (", 1)[0]),
        state=fields[0],
        session=int(fields[3]),
        utime=int(fields[11]),
        stime=int(fields[12]),
    )


def parse_cpu_busy_ticks(text: str, cpu: int) -> int:
    """Ticks one CPU has spent busy (user, nice, system, irq, softirq) since boot, from /proc/stat.
    Idle, iowait and steal (time the hypervisor gave to another guest) are not busy."""
    prefix = f"cpu{cpu} "
    for line in text.splitlines():
        if line.startswith(prefix):
            user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in line.split()[1:8])
            return user + nice + system + irq + softirq
    raise KeyError(f"cpu{cpu} not in /proc/stat")


def cpu_busy_ticks(cpu: int) -> int:
    return parse_cpu_busy_ticks(Path("/proc/stat").read_text(encoding="ascii"), cpu)


def read_stat(pid: int) -> ProcStat:
    return parse_stat(Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace"))


@dataclass(frozen=True, slots=True)
class CpuTime:
    user: float  # seconds
    system: float  # seconds in the kernel: syscalls, and the loopback TCP work done in them

    @property
    def total(self) -> float:
        return self.user + self.system


def cpu_ticks(pids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(utime, stime) of each process now, in clock ticks."""
    return {pid: (stat.utime, stat.stime) for pid in pids for stat in (read_stat(pid),)}


def cpu_time_between(before: Mapping[int, tuple[int, int]], after: Mapping[int, tuple[int, int]]) -> CpuTime:
    """CPU time the processes spent between two cpu_ticks() snapshots of the same processes."""
    if before.keys() != after.keys():
        raise ProcessSetChanged(f"processes before {sorted(before)} and after {sorted(after)} differ")
    user = sum(after[pid][0] - before[pid][0] for pid in before)
    system = sum(after[pid][1] - before[pid][1] for pid in before)
    return CpuTime(user / CLOCK_TICKS_PER_SECOND, system / CLOCK_TICKS_PER_SECOND)


def peak_rss_kib(pids: Iterable[int]) -> int:
    """VmHWM summed over the processes. Pages a forked worker shares with its parent count twice, for
    nginx and shieldwall alike: an upper bound, the same way for both."""
    return sum(
        parse_status_kib(Path(f"/proc/{pid}/status").read_text(encoding="ascii"), "VmHWM") for pid in pids
    )
