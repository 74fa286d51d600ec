"""A transport that records what a protocol does, for driving protocols without sockets."""

from __future__ import annotations

from typing import Any


class FakeSocket:
    def __init__(self) -> None:
        self.options: dict[tuple[int, int], bytes | int] = {}

    def setsockopt(self, level: int, name: int, value: bytes | int) -> None:
        self.options[(level, name)] = value


class FakeTransport:
    def __init__(self, peer: tuple[str, int] = ("203.0.113.7", 40000)) -> None:
        self.peer = peer
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.protocol: Any = None
        self.sock = FakeSocket()

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def take(self) -> bytes:
        data = bytes(self.written)
        self.written.clear()
        return data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "socket": self.sock}.get(name, default)
