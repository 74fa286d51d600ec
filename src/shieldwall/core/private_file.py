"""Reading a file that must be private to its owner (the challenge secret, the admin token), refusing it
as an SSH key would be when others may read it: whoever read it could forge cookies or use the API."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_private(
    path: Path, *, max_bytes: int, what: str, error: type[Exception], after_chmod: str = ""
) -> bytes:
    """The bytes of `path` (`what` names it in messages, e.g. "admin token file"). Raises
    FileNotFoundError when it is missing and `error` when it is not a regular file, others may read it,
    or it is over `max_bytes`; `after_chmod` says what else to do once it is private again."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"cannot open the {what} {path} ({exc.strerror})") from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file")
        if info.st_mode & 0o077:
            then = f", then {after_chmod}" if after_chmod else ""
            raise error(
                f"{what} {path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be readable by its "
                f"owner only: chmod 600 {path}{then}"
            )
        data = os.read(handle, max_bytes + 1)
    finally:
        os.close(handle)
    if len(data) > max_bytes:
        raise error(f"{what} {path} is over {max_bytes} bytes: not a file shieldwall wrote")
    return data
