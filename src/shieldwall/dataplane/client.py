"""The client side of a connection: strict parsing, connection guards, pipelining, and handing requests on.

httptools' callbacks only collect fields; validation happens once the head is complete
(shieldwall.http1.request). Deadlines are not timers: each connection keeps a few timestamps and the
server's sweeper checks them twice a second (see `on_tick`), so a request costs no timer operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import deque
from math import ceil
from typing import TYPE_CHECKING, cast

import httptools

from shieldwall.admission.controller import Ticket, TicketState
from shieldwall.challenge.outcomes import Refused
from shieldwall.core.errors import BadRequest, HttpError
from shieldwall.dataplane.accesslog import LogRecord
from shieldwall.dataplane.challenges import is_verify_request
from shieldwall.dataplane.exchange import Exchange
from shieldwall.dataplane.telemetry import OUTCOME_OF_STATUS
from shieldwall.dataplane.views import request_view
from shieldwall.detector.counters import Outcome
from shieldwall.http1.error_page import error_response, wants_json
from shieldwall.http1.forwarding import ForwardingContext
from shieldwall.http1.request import RequestHead, forwardable_trailers, validate_request_head
from shieldwall.net.client_identity import client_prefix, normalise_ip, resolve_client_ip
from shieldwall.policy.decision import Action

if TYPE_CHECKING:
    from shieldwall.dataplane.mode_effects import ModeEffects
    from shieldwall.dataplane.server import ListenerRuntime, ShieldServer

log = logging.getLogger("shieldwall.dataplane")

# Parser phases
_IDLE, _HEAD, _BODY = 0, 1, 2
# Reasons to pause reading from the client (a bit each; reading resumes when none is left)
PAUSE_PIPELINE, PAUSE_UPSTREAM, PAUSE_CLOSING = 1, 2, 4
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST and drops unsent data


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "_advancing",
        "_corked",
        "_forwarding",
        "_header_size",
        "_headers",
        "_last_parsed",
        "_reading",
        "_trailers",
        "_url",
        "_url_size",
        "body_counted",
        "body_started",
        "client_ip",
        "closing",
        "counted",
        "current",
        "head_bytes",
        "head_started",
        "idle_since",
        "limits",
        "listener",
        "no_more_requests",
        "parser",
        "paused",
        "peer_ip",
        "peer_trusted",
        "phase",
        "pipeline",
        "prefix",
        "reported_ip",
        "requests",
        "server",
        "transport",
        "tunnel",
        "write_paused_since",
    )

    def __init__(
        self, server: ShieldServer, listener: ListenerRuntime, reported_ip: str | None = None
    ) -> None:
        """`reported_ip`: the client address a PROXY protocol header gave (behind an L4 balancer)."""
        self.server = server
        self.listener = listener
        self.limits = server.settings.limits
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer_ip = ""
        self.client_ip = ""
        self.prefix = ""
        self.counted = False
        self.peer_trusted = False
        self.reported_ip = reported_ip
        # parsing state of the message being read
        self.phase = _HEAD  # until the first request head is complete
        self.head_started = 0.0
        self.head_bytes = 0
        self._url: list[bytes] = []
        self._url_size = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_size = 0
        self._trailers: list[tuple[bytes, bytes]] = []
        self._reading: Exchange | None = None  # exchange whose request is being parsed
        self._last_parsed: Exchange | None = None
        self.body_started = 0.0
        self.body_counted = 0
        # exchanges: the one being answered, then pipelined ones in order
        self.current: Exchange | None = None
        self.pipeline: deque[Exchange] = deque()
        self.requests = 0
        self.no_more_requests = False  # after Connection: close, an upgrade, or a parse error
        self.idle_since = 0.0
        self.paused = 0
        self.write_paused_since = 0.0
        self.tunnel: asyncio.Transport | None = None
        self.closing = False
        self._corked: list[bytes] | None = None
        self._advancing = False  # _advance_pipeline is running
        self._forwarding: ForwardingContext | None = None

    # ---------------------------------------------------------------- connection lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports don't subclass it
        peer = transport.get_extra_info("peername")
        self.peer_ip = normalise_ip(peer[0]) if peer else "0.0.0.0"
        now = self.server.clock.monotonic()
        self.idle_since = now
        self.head_started = now  # a connection that never sends a byte is held to the header deadline
        self.server.telemetry.counters.new_connections += 1
        self._identify(self.reported_ip or self.peer_ip)

    def _identify(self, ip: str) -> None:
        """Know who sent the connection: count it against the connection caps or refuse it at once.

        `ip` is the socket peer, or the source a PROXY header reported. A configured trusted proxy carries
        many visitors on its connections, so only the total cap applies to it; its requests are attributed
        to the address its X-Forwarded-For resolves to."""
        self.client_ip = ip
        self.prefix = client_prefix(ip)
        self.peer_trusted = self.server.trusted.contains(ip)
        if not self.peer_trusted and self.server.bans.check(ip, self.prefix, self.server.clock.wall()):
            self.server.stats_refused["banned"] += 1
            assert self.transport is not None
            self.transport.abort()  # a banned client costs a lookup, before any byte is read
            return
        refused = self.server.caps.admit(ip, self.prefix, per_client=not self.peer_trusted)
        if refused is not None:
            self.server.stats_refused[refused] += 1
            assert self.transport is not None
            self.transport.abort()
            return
        self.counted = True
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        if self.counted:
            self.counted = False
            self.server.caps.release(self.client_ip, self.prefix, per_client=not self.peer_trusted)
        for ex in (self.current, *self.pipeline):
            if ex is not None:
                self._release(ex)
                ex.cancelled = True
                if ex.upstream is not None:
                    ex.upstream.client_gone(ex)
        self.current = None
        self.pipeline.clear()
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        # The parser calls back into bound methods of this connection, and the last exchange points back
        # at it: cut both cycles, so that reference counting frees the connection now. Left to the cyclic
        # GC, each closed connection was ~29 objects of garbage: `benchmarks.python_path --scenario
        # close`, 120,000 connections, 2,966 collections taking 631 ms; with the cycles cut, 10 and 3 ms.
        self._reading = self._last_parsed = None
        del self.parser  # nothing parses after connection_lost; a stray call fails loudly

    def pause_writing(self) -> None:
        self.write_paused_since = self.server.clock.monotonic()
        ex = self.current
        if ex is not None and ex.upstream is not None:
            if ex.cache is None or ex.cache.builder is None:  # a cache fill reads on (cache_shield.py)
                ex.upstream.pause_reading()
        elif self.tunnel is not None:
            self.tunnel.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused_since = 0.0
        ex = self.current
        if ex is not None and ex.upstream is not None:
            ex.upstream.resume_reading()
        elif self.tunnel is not None:
            self.tunnel.resume_reading()

    def _pause(self, reason: int) -> None:
        if not self.paused and self.transport is not None:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        if not self.paused & reason:
            return
        self.paused &= ~reason
        if not self.paused and self.transport is not None and not self.closing:
            self.transport.resume_reading()
            # slowness while we held reads back is ours, not the client's
            self.body_started = self.server.clock.monotonic()
            self.body_counted = 0

    def pause_for_upstream(self) -> None:
        self._pause(PAUSE_UPSTREAM)

    def resume_for_upstream(self) -> None:
        self._resume(PAUSE_UPSTREAM)

    def write(self, data: bytes) -> None:
        if self.transport is None or self.closing:
            return
        if self._corked is not None:
            self._corked.append(data)
        else:
            self.transport.write(data)

    def cork(self) -> None:
        """Collect writes until uncork(): a response head and a small body leave in one send() call.
        One syscall less per proxied request; with two smaller changes made at the same time, CPU per
        proxied keep-alive request went from 49 to 39 µs (docs/performance.md)."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> None:
        corked = self._corked
        self._corked = None
        if corked and self.transport is not None and not self.closing:
            self.transport.write(corked[0] if len(corked) == 1 else b"".join(corked))

    # ---------------------------------------------------------------- bytes in

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.no_more_requests:
            return  # bytes after the last request we will answer are ignored, never parsed
        if self.phase == _IDLE:
            self.phase = _HEAD
            self.head_started = self.server.clock.monotonic()
            self.head_bytes = 0
        if self.phase == _HEAD:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded(data[exc.args[0] :])
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            err = cause if isinstance(cause, HttpError) else HttpError(500, "internal error")
            if not isinstance(cause, HttpError):
                log.exception("unexpected error while parsing a request", exc_info=cause)
            self._fail_request(err)
            return
        except httptools.HttpParserInvalidMethodError:
            self._fail_request(BadRequest("invalid method"))
            return
        except httptools.HttpParserError as exc:
            if self.no_more_requests:
                return  # e.g. garbage after a `Connection: close` request: ignored, never forwarded
            status = 505 if "version" in str(exc).lower() else 400
            self._fail_request(HttpError(status, str(exc)))
            return
        if (
            self.phase == _HEAD
            and self.head_bytes > self.limits.max_header_bytes + self.limits.max_request_line
        ):
            self._fail_request(HttpError(431, "request head too large"))

    # ---------------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        self.phase = _HEAD
        self._url = []
        self._url_size = 0
        self._headers = []
        self._header_size = 0
        self._trailers = []

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_size += len(url)
        if self._url_size > self.limits.max_request_line:
            raise HttpError(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_size += len(name) + len(value) + 4
        if self._header_size > self.limits.max_header_bytes:
            raise HttpError(431, "request header fields too large")
        if self.phase == _BODY:
            self._trailers.append((name, value))
            if len(self._trailers) > self.limits.max_header_count:
                raise HttpError(431, "too many trailer fields")
            return
        self._headers.append((name, value))
        if len(self._headers) > self.limits.max_header_count:
            raise HttpError(431, "too many header fields")

    def on_headers_complete(self) -> None:
        now = self.server.clock.monotonic()
        target = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        head = validate_request_head(
            self.parser.get_method(), target, self.parser.get_http_version().encode(), self._headers
        )
        limit = self.limits.max_body_bytes
        if limit and head.content_length is not None and head.content_length > limit:
            raise HttpError(413, "request body too large")
        self.requests += 1
        if self.requests >= self.limits.max_requests_per_connection or self.server.draining:
            head.keep_alive = False
        if head.upgrade is None and self.parser.should_upgrade():
            head.keep_alive = False  # llhttp stops after an Upgrade we don't tunnel (h2c...): answer, close
        self.phase = _BODY
        self.body_started = now
        self.body_counted = 0
        ex = Exchange(self, head, now)
        if self.peer_trusted and head.forwarded_for:
            ex.client_ip = ip = resolve_client_ip(self.client_ip, head.forwarded_for, self.server.trusted)
            if self.server.bans.check(ip, client_prefix(ip), self.server.clock.wall()):
                ex.error = HttpError(403, "banned", keep_alive=True)  # behind a proxy: refused per request
                self.server.stats_refused["banned"] += 1
        # Refusals below are answered by the shield; the parser goes on, so pipelined requests behind
        # a refused one are kept (unless the refusal earns a ban: then the connection closes).
        limiter = self.server.request_limiter
        if limiter is not None and ex.error is None:
            verdict = limiter.check(ex.client_ip, now)
            if not verdict.allowed:
                self._refuse(ex, 429, "request rate", ceil(verdict.retry_after), "rate_limited")
        policy = self.server.policy
        if ex.error is None and is_verify_request(head):
            self._verify_challenge(ex, head)  # the shield's own URL: never the rules' business
        elif ex.error is None and not policy.empty:
            ip = ex.client_ip
            view = request_view(head, ip, self.prefix if ip == self.client_ip else client_prefix(ip))
            decision = ex.decision = policy.decide(view, now)
            ex.held = decision.held  # concurrency rules' slots, given back in _release
            if decision.action is Action.CHALLENGE:
                self._challenge(ex, head)
            elif decision.action is Action.TARPIT:
                self._refuse(ex, decision.status, f"rule {decision.rule}", None, "tarpit")
                ex.hold_until = now + decision.delay
            elif decision.action is not Action.ALLOW:
                self._refuse(ex, decision.status, f"rule {decision.rule}", decision.retry_after, "rule")
        effects = self.server.mode_effects
        if effects.active and ex.error is None and ex.local is None and ex.decision.action is Action.ALLOW:
            self._apply_mode(ex, head, effects)
        self._reading = ex
        if self.current is None:
            self._begin(ex)
        else:
            self.pipeline.append(ex)
            self._pause(PAUSE_PIPELINE)

    def _apply_mode(self, ex: Exchange, head: RequestHead, effects: ModeEffects) -> None:
        """The mode in force (elevated, under attack) and the attack signatures, after the rules."""
        server = self.server
        ip = ex.client_ip
        prefix = self._prefix_of(ip)
        wall = server.clock.wall()
        suspicious = effects.challenge_suspicious and server.bans.table.suspect(ip, wall)
        view = request_view(head, ip, prefix)
        decision = effects.decide(view, server.challenges, suspicious=suspicious, now_wall=wall)
        if decision is None:
            return
        ex.decision = decision
        if decision.action is Action.CHALLENGE:
            self._challenge(ex, head)
        else:
            self._refuse(ex, decision.status, f"signature {decision.rule}", None, "signature")

    def _challenge(self, ex: Exchange, head: RequestHead) -> None:
        """A challenge rule stopped this request: the proof-of-work page (not an offence: most people
        who see it are real visitors)."""
        server = self.server
        server.stats_refused["challenged"] += 1
        ex.outcome = Outcome.CHALLENGE
        ip, prefix = ex.client_ip, self._prefix_of(ex.client_ip)
        offences = server.bans.table.recent_offences(ip, server.clock.wall())
        ex.local = server.challenges.page(head, prefix, offences, ex.reference(), self._keeps_alive(head))

    def _verify_challenge(self, ex: Exchange, head: RequestHead) -> None:
        """/.shieldwall/verify: a solved challenge earns the clearance cookie and a 303 back to where
        the visitor was going; a forged answer is an offence."""
        server = self.server
        ip, prefix = ex.client_ip, self._prefix_of(ex.client_ip)
        offences = server.bans.table.recent_offences(ip, server.clock.wall())
        secure = self.listener.scheme == b"https"
        ex.local, outcome = server.challenges.verify(
            head, prefix, offences, ex.reference(), keep_alive=self._keeps_alive(head), secure=secure
        )
        if isinstance(outcome, Refused):
            log.info("challenge answer from %s refused: %s (ref %s)", ip, outcome.reason, ex.ref_id)
        if server.challenges.is_forgery(outcome):
            server.stats_refused["challenge_forged"] += 1
            if server.offence(ip, prefix):
                self.no_more_requests = True

    def _prefix_of(self, ip: str) -> str:
        return self.prefix if ip == self.client_ip else client_prefix(ip)

    @staticmethod
    def _keeps_alive(head: RequestHead) -> bool:
        """Whether the shield's own answer may keep the connection: not while a body may follow."""
        return head.keep_alive and not head.has_body

    def _refuse(self, ex: Exchange, status: int, reason: str, retry_after: int | None, counter: str) -> None:
        """The shield answers this request itself (429, 403). A refusal is an offence: enough of them
        in a short time earn the client a ban, and then its connection closes after the answer."""
        self.server.stats_refused[counter] += 1
        ex.outcome = OUTCOME_OF_STATUS.get(status, Outcome.BLOCK)
        ip = ex.client_ip
        banned = self.server.offence(ip, self.prefix if ip == self.client_ip else client_prefix(ip))
        ex.error = HttpError(status, reason, keep_alive=not banned, retry_after=retry_after)

    def on_body(self, body: bytes) -> None:
        ex = self._reading
        assert ex is not None
        self.body_counted += len(body)
        limit = self.limits.max_body_bytes
        if limit and ex.body_received + len(body) > limit:
            raise HttpError(413, "request body too large")
        if not ex.cancelled and ex.error is None:
            ex.request_body(body)

    def on_message_complete(self) -> None:
        ex = self._reading
        assert ex is not None and ex.head is not None
        self.phase = _IDLE
        self._reading = None
        self._last_parsed = ex
        if not ex.head.keep_alive:
            self.no_more_requests = True
        if not ex.cancelled and ex.error is None:
            ex.request_done(forwardable_trailers(self._trailers) if self._trailers else [])
            if ex.awaiting_body:
                self.body_buffered(ex)

    # ---------------------------------------------------------------- exchanges

    def _begin(self, ex: Exchange) -> None:
        self.current = ex
        cache = self.server.cache
        if cache is not None and ex.error is None and ex.local is None and cache.intercept(ex):
            return  # answered from the cache, or waiting on another request's origin fetch
        inflight = self.server.inflight
        if ex.error is None and inflight is not None:
            if inflight.acquire(ex.client_ip):
                ex.holds_inflight = True
            else:
                self._refuse(ex, 429, "too many requests at once", 1, "inflight")
        if ex.error is not None:
            if ex.hold_until and self.server.tarpit(ex):
                return  # answered by the sweeper once its time is up
            self._answer_error(ex, ex.error)
            return
        if ex.local is not None:
            self._answer_local(ex, ex.local)
            return
        if self.server.door is not None:
            head = ex.head
            assert head is not None
            if head.has_body and not ex.request_complete:
                # With admission control, a request body is read before the request may take one of the
                # origin's scarce slots: slow senders (a slow-POST flood) then hold only their own
                # connection, which the body-rate guard cuts. Up to PENDING_BODY_LIMIT; a bigger body
                # goes on streaming once that much has arrived (Exchange.request_body).
                ex.awaiting_body = True
                if head.expect_continue:
                    self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            if not self._admit(ex):
                return
        self.server.pool.acquire(ex)

    def judge_again(self, ex: Exchange) -> None:
        """A request waiting for the origin meets the mode that is in force now (see server's
        _apply_control_state): if it would be challenged or blocked today, it leaves the queue."""
        head = ex.head
        if ex is not self.current or ex.cancelled or head is None or ex.decision.action is not Action.ALLOW:
            return
        self._apply_mode(ex, head, self.server.mode_effects)
        if ex.error is None and ex.local is None:
            return
        ticket = ex.ticket
        if ticket is not None and self.server.door is not None:
            self.server.door.controller.cancel(ticket)
            ex.ticket = None
        if ex.local is not None:
            self._answer_local(ex, ex.local)
        elif ex.error is not None:
            self._answer_error(ex, ex.error)

    def body_buffered(self, ex: Exchange) -> None:
        """The request's body has arrived (or enough of it): now it may ask admission for the origin."""
        ex.awaiting_body = False
        if ex is self.current and not ex.cancelled and self._admit(ex):
            self.server.pool.acquire(ex)

    def _admit(self, ex: Exchange) -> bool:
        """Admission control: True when the exchange may go to the origin now; otherwise it waits in the
        queue (the server resumes it) or has been answered 503."""
        server = self.server
        door = server.door
        assert door is not None
        now = server.clock.monotonic()
        suspicious = server.bans.table.suspect(ex.client_ip, server.clock.wall())
        priority = door.priority(ex, suspicious=suspicious, cleared=server.challenges.cleared(ex))
        ticket, evicted = door.controller.try_admit(priority, now, ex)
        if evicted is not None:
            server.admission_ended(evicted)
        if ticket.state is TicketState.SHED:
            self.shed(ex, ticket)
            return False
        ex.ticket = ticket
        return ticket.state is TicketState.ADMITTED

    def end_tarpit(self, ex: Exchange) -> None:
        """A tarpitted request's time is up: now it gets its refusal."""
        ex.hold_until = 0.0
        if ex is self.current and ex.error is not None and not ex.cancelled:
            self._answer_error(ex, ex.error)

    def shed(self, ex: Exchange, ticket: Ticket) -> None:
        """The origin is saturated and this request's class is the one to go: 503 + Retry-After (not an
        offence: the visitor did nothing wrong)."""
        ex.ticket = None
        ex.outcome = Outcome.SHED
        self.server.stats_refused["shed"] += 1
        if ex is self.current and not self.stale_instead(ex, 503, shed=True):
            err = HttpError(503, "origin saturated", keep_alive=True, retry_after=ticket.retry_after)
            self._answer_error(ex, err)

    def _release(self, ex: Exchange) -> None:
        """The exchange no longer occupies the origin on its client's behalf."""
        if ex.cache is not None and ex.cache.shield is not None:
            ex.cache.shield.exchange_ended(ex)  # a fetch it leads is abandoned; a follower stops waiting
        if ex.holds_inflight:
            ex.holds_inflight = False
            assert self.server.inflight is not None
            self.server.inflight.release(ex.client_ip)
        ticket = ex.ticket
        if ticket is not None:
            ex.ticket = None
            self.server.give_back(ticket, ex)
        if ex.held:
            for counts, key in ex.held:
                counts.release(key)
            ex.held = ()
        if ex.origin_at:
            latency = ex.response_at - ex.origin_at if ex.response_at else 0.0
            ex.origin_at = 0.0
            status = ex.status if ex.response_at or ex.status in (502, 504) else 0  # 502/504: ours, for it
            self.server.telemetry.counters.origin_done(status, latency)

    def forwarding_context(self, client_ip: str) -> ForwardingContext:
        """What the origin is told about the client; built once per connection in the usual case."""
        ctx = self._forwarding
        if ctx is None or ctx.client_ip != client_ip:
            ctx = ForwardingContext(
                client_ip=client_ip,
                peer_ip=self.client_ip,
                peer_trusted=self.peer_trusted,
                scheme=self.listener.scheme,
                via=self.server.via,
            )
            if client_ip == self.client_ip:
                self._forwarding = ctx
        return ctx

    def _fail_request(self, err: HttpError) -> None:
        """The bytes being parsed are bad: answer (after the requests before it) and close."""
        self.no_more_requests = True
        self._pause(PAUSE_CLOSING)
        ex = self._reading or Exchange(self, None, self.server.clock.monotonic())
        ex.error = err
        self._reading = None
        self.phase = _IDLE
        if ex is self.current:
            if ex.upstream is not None:
                ex.upstream.client_gone(ex)  # a partial message was sent: that connection is not reused
            if ex.response_started:
                self.abort()
            else:
                self._answer_error(ex, err)
        elif self.current is None:
            self._begin(ex)
        elif ex not in self.pipeline:
            self.pipeline.append(ex)

    def _answer_error(self, ex: Exchange, err: HttpError) -> None:
        accept = None
        if ex.head is not None:
            for name, value in ex.head.headers:
                if name.lower() == b"accept":
                    accept = value
        ref = ex.reference()
        if ex.outcome is Outcome.ALLOW and err.status < 500:  # the shield refused it (not the origin)
            ex.outcome = OUTCOME_OF_STATUS.get(err.status, Outcome.BLOCK)
        # Keep the connection only for a clean refusal of a bodiless request (a 429): after anything
        # else, or when a body might still be on its way, the connection's framing is not trusted.
        keep_alive = err.keep_alive and ex.head is not None and ex.head.keep_alive and not ex.head.has_body
        payload = error_response(
            err.status, ref, json_body=wants_json(accept), keep_alive=keep_alive, retry_after=err.retry_after
        )
        if err.status >= 500:
            log.warning("answered %d to %s: %s (ref %s)", err.status, ex.client_ip, err.reason, ref)
        if not keep_alive:
            self.no_more_requests = True
        ex.status = err.status
        ex.bytes_sent = len(payload)
        self.write(payload)
        self.finish_exchange(ex, keep_alive=keep_alive)

    def _answer_local(self, ex: Exchange, payload: bytes) -> None:
        """A complete response the shield wrote itself (the challenge page, the verify answer)."""
        ex.local = None
        ex.status = int(payload[9:12])  # b"HTTP/1.1 303 ..."
        ex.bytes_sent = len(payload)
        assert ex.head is not None
        keep_alive = self._keeps_alive(ex.head)  # what the response's Connection field was written for
        if not keep_alive:
            self.no_more_requests = True
        self.write(payload)
        self.finish_exchange(ex, keep_alive=keep_alive)

    def answer_upstream_failure(self, ex: Exchange, status: int, reason: str) -> None:
        """The origin could not give an answer (502/503/504): the branded page, then close."""
        if ex.response_started:
            self.abort()
            return
        if ex is self.current and not self.stale_instead(ex, status):
            self._answer_error(ex, HttpError(status, reason))

    def stale_instead(self, ex: Exchange, status: int, *, shed: bool = False) -> bool:
        """The origin failed a request that leads a cache fill (`status`: what would be answered), or
        admission control shed it. A stale copy within its stale-if-error window answers it (and the
        requests waiting on it) instead; the origin's slot is given back first, so admission control
        learns of the failure, not of a 200."""
        cache = self.server.cache
        if cache is None or ex.cache is None or not ex.cache.leads:
            return False
        entry = cache.origin_failed(ex, status, shed=shed)
        if entry is None:
            return False
        ex.status = status
        self._release(ex)
        cache.replay(ex, entry, stale=True)
        return True

    def resume(self, ex: Exchange) -> None:
        """The cache let go of a request that waited on another request's origin fetch: decide again."""
        if ex is self.current and not ex.cancelled:
            self._begin(ex)

    def response_head(self, ex: Exchange, head: bytes, status: int, keep_alive: bool) -> None:
        ex.response_at = self.server.clock.monotonic()
        ex.response_started = True
        ex.status = status
        ex.response_keep_alive = keep_alive
        ex.bytes_sent += len(head)
        self.write(head)

    def response_body(self, ex: Exchange, data: bytes) -> None:
        ex.bytes_sent += len(data)
        self.write(data)

    def finish_exchange(self, ex: Exchange, keep_alive: bool) -> None:
        """The response is complete on the wire (as far as we are concerned)."""
        self._release(ex)
        now = self.server.clock.monotonic()
        self.server.telemetry.finished(ex, self._prefix_of(ex.client_ip))
        self._log(ex, now)
        if ex is not self.current:
            return
        self.current = None
        if not keep_alive or self.closing:
            self.no_more_requests = True
            self.pipeline.clear()
            self.close()
            return
        if self.pipeline:
            if not self._advancing:
                self._advance_pipeline()
            return
        self.idle_since = now
        self._resume(PAUSE_PIPELINE)

    def _advance_pipeline(self) -> None:
        """Begin pipelined requests in turn, for as long as each is answered at once (cache hits, the
        shield's own answers). A loop, not recursion: begin → answer → finish → begin nests a few frames
        per request, and a few hundred requests pipelined in one read passed Python's recursion limit."""
        self._advancing = True
        try:
            while self.pipeline and self.current is None:
                nxt = self.pipeline.popleft()
                if not self.pipeline:
                    self._resume(PAUSE_PIPELINE)
                self._begin(nxt)
        finally:
            self._advancing = False

    def _log(self, ex: Exchange, now: float) -> None:
        if not self.server.access_log.enabled:
            return
        head = ex.head
        referer = user_agent = b""
        if head is not None:
            for name, value in head.headers:
                lname = name.lower()
                if lname == b"referer":
                    referer = value
                elif lname == b"user-agent":
                    user_agent = value
        self.server.access_log.record(
            LogRecord(
                client_ip=ex.client_ip,
                method=head.method if head else b"-",
                target=head.target if head else b"-",
                version=head.version if head else b"1.1",
                status=ex.status,
                bytes_sent=ex.bytes_sent,
                referer=referer,
                user_agent=user_agent,
                duration=now - ex.started_at,
                ref_id=ex.ref_id,
                worker=self.server.worker_id,
                rule=ex.decision.rule if ex.decision.action is not Action.ALLOW else None,
                logged=ex.decision.logged,
                cache=ex.cache.label if ex.cache is not None else None,
            ),
            self.server.clock.wall(),
        )

    # ---------------------------------------------------------------- upgrades (WebSocket tunnels)

    def _upgraded(self, leftover: bytes) -> None:
        """llhttp stops at the end of an upgrade request; what follows belongs to the tunnel."""
        self.no_more_requests = True
        ex = self._last_parsed
        if ex is None or ex.head is None or ex.head.upgrade is None:
            return  # an Upgrade we do not tunnel (h2c, ...): answered as plain HTTP, then closed
        if leftover:
            ex.pending.append(leftover)
            ex.pending_bytes += len(leftover)

    def start_tunnel(self, ex: Exchange, upstream_transport: asyncio.Transport, leftover: bytes) -> None:
        self.tunnel = upstream_transport
        self._release(ex)  # a long-lived tunnel does not count as a request at the origin
        self.current = None
        self._log(ex, self.server.clock.monotonic())
        if leftover:
            self.write(leftover)
        if ex.pending:
            upstream_transport.write(b"".join(ex.pending))
            ex.pending.clear()
        self.no_more_requests = False
        self.paused = 0
        if self.transport is not None:
            self.transport.resume_reading()

    # ---------------------------------------------------------------- deadlines and closing

    def on_tick(self, now: float) -> None:
        """Called by the server's sweeper about twice a second."""
        limits = self.limits
        if self.write_paused_since and now - self.write_paused_since > limits.send_timeout:
            self.server.stats_refused["send_timeout"] += 1
            self.abort()  # slow read: the client is not taking our response
            return
        if self.tunnel is not None or self.paused:
            return
        if self.phase == _HEAD:
            if now - self.head_started > limits.header_timeout:
                self._deadline_missed("header_timeout")
        elif self.phase == _BODY:
            elapsed = now - self.body_started
            if (
                limits.min_body_rate
                and elapsed > limits.body_grace
                and self.body_counted < limits.min_body_rate * elapsed
            ):
                self._deadline_missed("min_body_rate")
        elif self.current is None and (self.server.draining or self._idle_too_long(now)):
            self.close()

    def _idle_too_long(self, now: float) -> bool:
        return now - self.idle_since > self.limits.keepalive_timeout

    def _deadline_missed(self, which: str) -> None:
        self.server.stats_refused[which] += 1
        if self.current is None and self._reading is None and self.head_bytes == 0 and self.requests == 0:
            self.abort()  # never sent a byte: nothing to answer
            return
        self._fail_request(HttpError(408, which.replace("_", " ")))

    def close(self) -> None:
        if self.transport is not None and not self.closing:
            self.uncork()
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection with a reset. A plain close would leave what we had queued for a slow
        reader in the kernel (seen: FIN-WAIT-1 with 2.8 MB unsent per connection), still trickling out at
        the attacker's pace; SO_LINGER 0 frees it at once, as nginx's reset_timedout_connection does."""
        if self.transport is not None:
            self.closing = True
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self.transport.abort()
