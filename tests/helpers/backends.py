"""Misbehaving origins for failure-path tests (the demo origin always behaves)."""

from __future__ import annotations

import re
import socket
import threading
import time

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class DroppingBackend:
    """Reads each request completely (head + Content-Length body), counts it, then closes the
    connection without answering: the request reached the origin, so a proxy must not send it again."""

    def __init__(self, lifetime: float = 30.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + lifetime
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dropping-backend", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stopped.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                request = self._read_request(conn)
            if request is not None:
                with self._lock:
                    self.requests.append(request)

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes | None:
        conn.settimeout(2.0)
        data = b""
        try:
            while (end := data.find(b"\r\n\r\n")) < 0 or len(data) < end + 4 + _body_length(data[:end]):
                piece = conn.recv(65536)
                if not piece:
                    return None
                data += piece
        except OSError:
            return None
        return data

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self.sock.close()


def _body_length(head: bytes) -> int:
    match = _CONTENT_LENGTH.search(head)
    return int(match.group(1)) if match else 0
