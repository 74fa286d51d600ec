"""From the data plane's parsed request to the policy engine's frozen view (built only when a policy
has rules, so a site without rules pays nothing for it)."""

from __future__ import annotations

from shieldwall.http1.request import RequestHead
from shieldwall.policy.decision import RequestView


def host_without_port(host: bytes) -> bytes:
    """b"Example.org:8080" → b"example.org"; b"[2001:db8::1]:80" → b"[2001:db8::1]"."""
    if host.startswith(b"["):
        end = host.find(b"]")
        return host[: end + 1].lower() if end > 0 else host.lower()
    return host.partition(b":")[0].lower()


def request_view(head: RequestHead, client_ip: str, prefix: str) -> RequestView:
    path, _, query = head.target.partition(b"?")
    return RequestView(
        client_ip=client_ip,
        prefix=prefix,
        method=head.method,
        host=host_without_port(head.host),
        path=path,
        query=query,
        headers=tuple((name.lower(), value) for name, value in head.headers),
    )
