"""Errors that know which HTTP status the client should see."""

from __future__ import annotations


class HttpError(Exception):
    """A request the shield refuses. `status` is what the client gets; the connection is
    closed afterwards unless `keep_alive` is set (never for framing errors)."""

    def __init__(
        self, status: int, reason: str, *, keep_alive: bool = False, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.keep_alive = keep_alive
        self.retry_after = retry_after


class BadRequest(HttpError):
    def __init__(self, reason: str) -> None:
        super().__init__(400, reason)
