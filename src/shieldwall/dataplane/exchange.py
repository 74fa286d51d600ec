"""One request/response pair travelling through the shield.

An Exchange is created when a request head has been validated. It carries the request body from the client
connection to an upstream connection (buffering a little while no upstream is attached yet) and the response
back. Both connection protocols call into it; it is the only place that knows both ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldwall.core.errors import HttpError
from shieldwall.core.refid import new_reference_id
from shieldwall.detector.counters import Outcome
from shieldwall.http1.forwarding import chunk, last_chunk
from shieldwall.http1.request import RequestHead
from shieldwall.policy.decision import ALLOW, Decision

if TYPE_CHECKING:
    from shieldwall.admission.controller import Ticket
    from shieldwall.dataplane.cache_shield import CacheState
    from shieldwall.dataplane.client import ClientConnection
    from shieldwall.dataplane.upstream import UpstreamConnection
    from shieldwall.limiter.concurrency import OpenCounts

# Request body buffered while no upstream connection is attached; beyond this, client reads pause.
PENDING_BODY_LIMIT = 64 * 1024


class Exchange:
    __slots__ = (
        "attempts",
        "awaiting_body",
        "body_received",
        "bytes_sent",
        "cache",
        "cancelled",
        "client",
        "client_ip",
        "decision",
        "error",
        "head",
        "held",
        "hold_until",
        "holds_inflight",
        "local",
        "origin_at",
        "outcome",
        "pending",
        "pending_bytes",
        "ref_id",
        "request_complete",
        "request_sent",
        "response_at",
        "response_keep_alive",
        "response_started",
        "started_at",
        "status",
        "ticket",
        "trailers",
        "upstream",
        "waiting_since",
    )

    def __init__(
        self, client: ClientConnection, head: RequestHead | None, now: float, error: HttpError | None = None
    ) -> None:
        self.client = client
        self.client_ip = client.client_ip  # the visitor: resolved from X-Forwarded-For behind a trusted proxy
        self.head = head
        self.error = error  # set for a request that is answered by the shield (parse error in a pipeline)
        self.started_at = now
        self.upstream: UpstreamConnection | None = None
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.body_received = 0
        self.request_complete = False
        self.request_sent = False  # head and whole body written to an upstream connection
        self.trailers: list[tuple[bytes, bytes]] = []
        self.response_started = False
        self.response_at = 0.0  # when the origin's response head arrived (monotonic; 0: not yet)
        self.response_keep_alive = False
        self.status = 0
        self.bytes_sent = 0
        self.attempts = 0
        self.cancelled = False
        self.waiting_since = 0.0
        self.ref_id: str | None = None
        self.holds_inflight = False  # counted in the server's per-client requests at the origin
        self.awaiting_body = False  # its body is being read before it asks admission for the origin
        self.ticket: Ticket | None = None  # admission control's: queued for, or admitted to, the origin
        self.decision: Decision = ALLOW  # the policy's answer, kept for the access log
        self.local: bytes | None = None  # a response the shield wrote itself (challenge page, verify answer)
        self.cache: CacheState | None = None  # what the cache did with it ([cache] on only)
        self.outcome = Outcome.ALLOW  # what the shield did with it, for the detector's counters
        self.held: tuple[tuple[OpenCounts, str], ...] = ()  # concurrency rules' slots (policy/limit.py)
        self.hold_until = 0.0  # a tarpitted refusal is answered at this time (monotonic; 0: not held)
        self.origin_at = 0.0  # when it first went to the origin (monotonic; 0: never)

    def reference(self) -> str:
        if self.ref_id is None:
            self.ref_id = new_reference_id()
        return self.ref_id

    # ---- request body: client → upstream

    def request_body(self, data: bytes) -> None:
        self.body_received += len(data)
        assert self.head is not None
        framed = chunk(data) if self.head.chunked else data
        upstream = self.upstream
        if upstream is not None and not self.pending:
            upstream.write(framed)
            return
        self.pending.append(framed)
        self.pending_bytes += len(framed)
        if self.pending_bytes > PENDING_BODY_LIMIT:
            self.client.pause_for_upstream()
            if self.awaiting_body:  # buffered enough before admission: the rest streams
                self.client.body_buffered(self)

    def request_done(self, trailers: list[tuple[bytes, bytes]]) -> None:
        self.request_complete = True
        assert self.head is not None
        if self.head.chunked:
            end = last_chunk(trailers)
            if self.upstream is not None and not self.pending:
                self.upstream.write(end)
            else:
                self.pending.append(end)
        if self.upstream is not None and not self.pending:
            self.request_sent = True
            self.upstream.request_finished()

    def attach(self, upstream: UpstreamConnection, head_bytes: bytes) -> None:
        """An upstream connection is ready: send the head and whatever body arrived meanwhile."""
        self.upstream = upstream
        assert self.head is not None
        if self.head.expect_continue and self.head.has_body and self.body_received == 0:
            self.client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.pending:
            upstream.write(head_bytes + b"".join(self.pending))
            self.pending.clear()
            had_pending = self.pending_bytes > PENDING_BODY_LIMIT
            self.pending_bytes = 0
            if had_pending:
                self.client.resume_for_upstream()
        else:
            upstream.write(head_bytes)
        if self.request_complete:
            self.request_sent = True
            upstream.request_finished()

    def detach_for_retry(self) -> None:
        self.upstream = None

    def retriable(self, retries: int, reached_origin: bool) -> bool:
        """Retry only what cannot have had an effect: nothing reached the origin, or an idempotent request
        without a body whose connection died before any response byte."""
        if self.cancelled or self.response_started or self.attempts > retries:
            return False
        if not reached_origin:
            return True  # the head was never written, the body so far is still pending here
        assert self.head is not None
        return self.head.idempotent and self.request_complete
