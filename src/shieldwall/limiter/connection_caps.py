"""Caps on open connections: in total, per client address and per client prefix.

Checked once per accepted connection, before any byte is parsed, so a client over its cap costs
one dict lookup.
"""

from __future__ import annotations

from shieldwall.limiter.concurrency import OpenCounts


class ConnectionCaps:
    def __init__(self, total: int, per_ip: int, per_prefix: int) -> None:
        self.total_cap = total
        self.open = 0
        self._by_ip = OpenCounts(per_ip)
        self._by_prefix = OpenCounts(per_prefix)

    def admit(self, ip: str, prefix: str, *, per_client: bool = True) -> str | None:
        """Count the connection in and return None, or return why it is refused (nothing is counted).
        `per_client=False` (a trusted proxy carrying many visitors) applies only the total cap."""
        if self.open >= self.total_cap:
            return "max_connections"
        if per_client:
            if not self._by_ip.can_open(ip):
                return "max_connections_per_ip"
            if not self._by_prefix.can_open(prefix):
                return "max_connections_per_prefix"
            self._by_ip.open(ip)
            self._by_prefix.open(prefix)
        self.open += 1
        return None

    def release(self, ip: str, prefix: str, *, per_client: bool = True) -> None:
        self.open -= 1
        if per_client:
            self._by_ip.release(ip)
            self._by_prefix.release(prefix)
