"""How operators write a length of time (a ban's, a pin's) in every front end: '90s', '10m', '1h', '2d',
'1d12h', or 'permanent'; the CLI's --for and the admin API's "duration" read the same words."""

from __future__ import annotations

import re
from typing import Final

_DURATION: Final = re.compile(r"(?:[0-9]{1,9}[smhd])+")
_PART: Final = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float | None:
    """'90s', '10m', '1h', '2d', '1d12h' → seconds; 'permanent' → None. ValueError otherwise."""
    text = text.strip().lower()
    if text == "permanent":
        return None
    if not _DURATION.fullmatch(text):
        raise ValueError("not a duration; write e.g. 90s, 10m, 1h, 2d, 1d12h, or permanent")
    seconds = sum(int(count) * _UNIT_SECONDS[unit] for count, unit in _PART.findall(text))
    if seconds == 0:
        raise ValueError("a ban must last longer than 0 s")
    return float(seconds)
