"""Replacing a file whole, atomically and durably: what every state file shieldwall writes needs (bans,
the challenge secret, the control state, incidents), so that a reader sees the old file or the new one,
never half of one, and a power cut cannot undo a write that returned."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` (mode 0600), fsync it, rename it over `path`, and
    fsync the directory. Raises OSError; then `path` is as it was and no temporary file is left."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # until the directory is synced, a power cut may undo the rename
    finally:
        os.close(directory)
