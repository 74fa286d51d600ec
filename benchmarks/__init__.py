"""shieldwall's performance benchmark against nginx (`make bench`), and the hot-path profiler.

Never part of `make test`: timings depend on the machine and its load. Only the parsers of /proc and
wrk output (procstat, wrk) are unit-tested, because a wrong parse silently gives wrong figures.
docs/performance.md explains the method and holds the last measured table."""
