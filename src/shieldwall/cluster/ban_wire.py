"""A worker's new ban, sent at once to its node's control process (over the telemetry socket) so the
cluster hears of it within a second, rather than when the worker next saves its ban file (every 2 s).

A message is BAN_TAG then the ban store's JSON entry of one ban; the tag is not valid JSON, so the
control process tells it from a worker's per-second summary by its first byte."""

from __future__ import annotations

import json
from typing import Final

from shieldwall.limiter.bans import Ban
from shieldwall.state.ban_store import ban_entry, parse_ban

BAN_TAG: Final = b"B"
MAX_PER_SECOND: Final = 500  # beyond this, the worker's ban file (saved every 2 s) carries the rest


def encode(ban: Ban) -> bytes:
    return BAN_TAG + json.dumps(ban_entry(ban), separators=(",", ":")).encode()


def decode(payload: bytes) -> Ban:
    """Raises ValueError when `payload` is not a ban message."""
    if payload[:1] != BAN_TAG:
        raise ValueError("not a ban message")
    return parse_ban(json.loads(payload[1:]))
