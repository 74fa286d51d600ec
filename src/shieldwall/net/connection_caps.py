"""Caps on open connections: in total, per client address and per client prefix.

Checked once per accepted connection, before any byte is parsed, so a client over its cap costs
one dict lookup.
"""

from __future__ import annotations


class ConnectionCaps:
    def __init__(self, total: int, per_ip: int, per_prefix: int) -> None:
        self.total_cap = total
        self.per_ip_cap = per_ip
        self.per_prefix_cap = per_prefix
        self.open = 0
        self._by_ip: dict[str, int] = {}
        self._by_prefix: dict[str, int] = {}

    def admit(self, ip: str, prefix: str, *, per_client: bool = True) -> str | None:
        """Count the connection in and return None, or return why it is refused (nothing is counted).
        `per_client=False` (a trusted proxy carrying many visitors) applies only the total cap."""
        if self.open >= self.total_cap:
            return "max_connections"
        if not per_client:
            self.open += 1
            return None
        ip_count = self._by_ip.get(ip, 0)
        if ip_count >= self.per_ip_cap:
            return "max_connections_per_ip"
        prefix_count = self._by_prefix.get(prefix, 0)
        if prefix_count >= self.per_prefix_cap:
            return "max_connections_per_prefix"
        self.open += 1
        self._by_ip[ip] = ip_count + 1
        self._by_prefix[prefix] = prefix_count + 1
        return None

    def release(self, ip: str, prefix: str, *, per_client: bool = True) -> None:
        self.open -= 1
        if not per_client:
            return
        for table, key in ((self._by_ip, ip), (self._by_prefix, prefix)):
            left = table[key] - 1
            if left:
                table[key] = left
            else:
                del table[key]  # tables only hold clients with open connections: bounded by `open`
