"""The admin API's bearer token: one random secret in a private file, made on the first start.

The file (`[admin] token_file`, by default `server.state_dir`/admin/token) holds the token on one line,
mode 0600 in a 0700 directory, written atomically. The control process makes it when it is missing;
`shieldwall admin token --rotate` replaces it, and the running API takes the new one at the next request
(`TokenFile.matches` looks at the file's stamp each time: one stat), so a rotation needs no restart.
A file that others may read is refused, as an SSH key would be: anyone who read it could ban and unban.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Final

from shieldwall.core.atomic_file import write_atomic
from shieldwall.core.private_file import read_private

log = logging.getLogger("shieldwall.admin")

TOKEN_BYTES: Final = 32  # 43 URL-safe characters
_MAX_FILE_BYTES: Final = 4096


class TokenFileError(Exception):
    """The token file cannot be made or used; the message names the file and says what to do."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def read_token(path: Path) -> str:
    """The token in `path`. Raises FileNotFoundError when there is none, TokenFileError when the file
    is not a private regular file holding one token."""
    data = read_private(
        path,
        max_bytes=_MAX_FILE_BYTES,
        what="admin token file",
        error=TokenFileError,
        after_chmod="`shieldwall admin token --rotate` (others may have read it)",
    )
    token = data.decode("ascii", errors="replace").strip()
    if len(token) < 16 or not token.isprintable() or " " in token:
        raise TokenFileError(
            f"admin token file {path} holds no token; remove it and a new one is made at the next start, "
            "or run `shieldwall admin token --rotate`"
        )
    return token


def write_token(path: Path, token: str) -> None:
    """Replace the token file (0600; missing directories are made 0700). Raises TokenFileError."""
    directory = path.parent
    try:
        for missing in reversed([directory, *directory.parents]):
            if not missing.is_dir():
                missing.mkdir(mode=0o700, exist_ok=True)
                missing.chmod(0o700)  # mkdir's mode is masked by the umask
        write_atomic(path, token.encode("ascii") + b"\n")  # 0600
    except OSError as exc:
        raise TokenFileError(f"cannot write the admin token file {path} ({exc.strerror or exc})") from None


def load_or_create(path: Path) -> str:
    """The token in `path`, made first when there is none. Raises TokenFileError."""
    with contextlib.suppress(FileNotFoundError):
        return read_token(path)
    write_token(path, new_token())
    return read_token(path)


def rotate(path: Path) -> str:
    """Replace the token with a new one and return it. Run as root (`sudo shieldwall admin token
    --rotate`), it gives the new file the owner of the old one, so the shield's user can still read it.
    Raises TokenFileError."""
    try:
        before: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise TokenFileError(f"cannot read the admin token file {path} ({exc.strerror})") from None
    token = new_token()
    write_token(path, token)
    if before is not None and os.geteuid() == 0 and (before.st_uid, before.st_gid) != (0, 0):
        try:
            os.chown(path, before.st_uid, before.st_gid)
        except OSError as exc:
            raise TokenFileError(
                f"wrote {path} but cannot give it back to uid {before.st_uid} ({exc.strerror}); chown it"
            ) from None
    return token


class TokenFile:
    """Checks presented tokens against the file, read again only when its stamp changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._failed: tuple[int, int, int] | None = None  # the stamp last logged as unusable
        self._token = load_or_create(path)
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def current(self) -> str:
        """The token in force. While the file is missing or cannot be used, the last good token stays
        (a file that is bad from the start was refused by the constructor), and the file is tried again
        at the next request."""
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            try:
                self._token = read_token(self.path)
                self._stamp = stamp
            except (OSError, TokenFileError) as exc:
                if stamp != self._failed:
                    self._failed = stamp
                    log.error("admin token file changed but cannot be used, keeping the old token: %s", exc)
        return self._token

    def matches(self, presented: str | None) -> bool:
        """Whether `presented` is the token, compared in constant time."""
        if not presented:
            return False
        return hmac.compare_digest(presented.encode("utf-8"), self.current().encode("ascii"))
