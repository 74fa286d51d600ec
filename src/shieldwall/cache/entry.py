"""A stored response (Entry) and the incremental buffer that becomes one (Builder).

Age (RFC 9111 4.2.3), simplified on purpose: current age = the response's own Age field + the time it has
been stored here, on the monotonic clock. The apparent age from Date is left out because Date is on the
origin's wall clock, which the monotonic `now` cannot be compared with; the request's queueing time
(response_delay) is left out because under attack it is the shield's own pool queue, not the response's
age, and counting it would make fresh copies look stale exactly when they are needed.
"""

from __future__ import annotations

from collections.abc import Sequence

from shieldwall.cache.request import SecondaryKey
from shieldwall.cache.response import Freshness

# Per-entry cost beyond bodies, fields and keys (the objects and table slots), so that many tiny entries
# are bounded too.
ENTRY_OVERHEAD = 256

EntryKey = tuple[bytes, SecondaryKey]


def field_block(fields: Sequence[tuple[bytes, bytes]]) -> bytes:
    return b"".join(b"%s: %s\r\n" % (name, value) for name, value in fields)


class Entry:
    """A response ready to replay. `fields` exclude Age (computed per replay) and framing."""

    __slots__ = (
        "body",
        "fields",
        "head_fields",
        "initial_age",
        "key",
        "lifetime",
        "size",
        "stale_if_error",
        "stale_while_revalidate",
        "status",
        "stored_at",
        "vary",
    )

    def __init__(
        self,
        key: EntryKey,
        status: int,
        *,
        fields: tuple[tuple[bytes, bytes], ...],
        head_fields: bytes,
        body: bytes,
        freshness: Freshness,
        stored_at: float,
    ) -> None:
        self.key = key
        self.status = status
        self.fields = fields
        self.head_fields = head_fields  # `fields` serialised once: "Name: value\r\n"...
        self.body = body
        self.stored_at = stored_at  # monotonic time the response head arrived
        self.initial_age = freshness.initial_age
        self.lifetime = freshness.lifetime
        self.stale_while_revalidate = freshness.stale_while_revalidate
        self.stale_if_error = freshness.stale_if_error
        self.vary = freshness.vary
        self.size = len(body) + len(head_fields) + len(key[0]) + ENTRY_OVERHEAD

    def age(self, now: float) -> float:
        return self.initial_age + max(0.0, now - self.stored_at)

    def staleness(self, now: float) -> float:
        """Seconds past freshness; negative while fresh. (age() inlined: this is on every hit.)"""
        return self.initial_age + max(0.0, now - self.stored_at) - self.lifetime

    def may_serve_if_error(self, now: float) -> bool:
        return self.staleness(now) < self.stale_if_error

    def age_value(self, now: float) -> int:
        """The Age field's value for a replay: whole seconds, rounded down."""
        return int(self.age(now))

    def head_lines(self, now: float) -> bytes:
        """The stored field lines plus `Age`, ready to go between the status line and the framing fields."""
        return self.head_fields + b"Age: %d\r\n" % self.age_value(now)


class Builder:
    """Collects a response body as the data plane tees it to the client. `feed` answers False once the
    entry would be bigger than the object limit: the data plane then stops teeing (the chunks are dropped
    at once) and hands the builder to Cache.finish, which releases the followers."""

    __slots__ = (
        "_chunks",
        "fields",
        "freshness",
        "head_fields",
        "limit",
        "received_at",
        "size",
        "status",
        "too_big",
    )

    def __init__(
        self,
        status: int,
        fields: tuple[tuple[bytes, bytes], ...],
        freshness: Freshness,
        *,
        received_at: float,
        base_size: int,
        limit: int,
    ) -> None:
        self.status = status
        self.fields = fields
        self.head_fields = field_block(fields)
        self.freshness = freshness
        self.received_at = received_at
        self.limit = limit
        self.size = base_size + len(self.head_fields)  # what the entry will count, body so far included
        self.too_big = self.size > limit
        self._chunks: list[bytes] = []

    def feed(self, data: bytes) -> bool:
        if self.too_big:
            return False
        self.size += len(data)
        if self.size > self.limit:
            self.too_big = True
            self._chunks.clear()
            return False
        self._chunks.append(data)
        return True

    def body(self) -> bytes:
        return b"".join(self._chunks)
