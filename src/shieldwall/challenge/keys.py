"""The challenge secrets: one master secret in a private file, and per-period signing keys derived from it.

Every worker process (and, later, every node given the same file) derives the same key for the same
period, so tokens signed by one verify in another with no coordination: the period's key is
HMAC-SHA256(master, b"shieldwall-challenge|" + the period number in decimal), where the period number
is floor(now / rotation). Each token names the key that signed it (master generation and period) and
`Keyring.verifying_key` accepts the current and the previous period, so a key stays valid for one
period after the next one starts: a token or cookie that lives at most one period never outlives it.

The file holds the current master, and after `rotate` also the previous one, which keeps verifying
tokens for one more period (a rotation invalidates nothing that was issued before it). Times are
wall-clock epoch seconds, passed in as `now`, because tokens cross processes and restarts.

File format (JSON, mode 0600, directory 0700, written atomically: temporary file, fsync, os.replace,
fsync of the directory; creation and rotation hold an flock on the directory so that workers starting
together all end up with the one secret that was written):
    {"format": "shieldwall-challenge-secret/1", "generation": 2, "current": "<64 hex>",
     "previous": "<64 hex>" or null, "rotated_at": <epoch seconds> or null}
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shieldwall.core.atomic_file import write_atomic
from shieldwall.core.private_file import read_private

DEFAULT_ROTATION: Final = 86_400.0  # one day
SECRET_BYTES: Final = 32
_FORMAT: Final = "shieldwall-challenge-secret/1"
_MAX_FILE_BYTES: Final = 1024  # a valid file is ~250 bytes; anything much larger is not ours
_KEY_LABEL: Final = b"shieldwall-challenge|"
_CACHED_KEYS: Final = 8  # at most 4 key ids are ever accepted at once (2 masters x 2 periods)


class SecretFileError(Exception):
    """The secret file cannot be used; the message names the file and says what to do."""


@dataclass(frozen=True, slots=True)
class MasterSecrets:
    """The contents of the secret file. `previous` (generation - 1) verifies, but no longer signs,
    until one rotation period after `rotated_at`."""

    generation: int
    current: bytes
    previous: bytes | None = None
    rotated_at: float | None = None


def load_or_create(path: Path) -> MasterSecrets:
    """The secrets in `path`; on first run a new master (32 bytes from `secrets`) is written there first,
    and the missing parent directories are created with mode 0700. Raises SecretFileError."""
    with contextlib.suppress(FileNotFoundError):
        return load(path)
    with _locked_directory(path):
        with contextlib.suppress(FileNotFoundError):
            return load(path)  # another process created it while we waited for the lock
        masters = MasterSecrets(generation=1, current=secrets.token_bytes(SECRET_BYTES))
        _write(path, masters)
        return masters


def rotate(path: Path, now: float) -> MasterSecrets:
    """Replace the master with a new random one; the old one becomes `previous` and keeps verifying for
    one more rotation period. A second rotation within that period drops the older previous master,
    and with it whatever it signed. Raises SecretFileError (the file then stays as it was)."""
    with _locked_directory(path):
        old = load(path)
        masters = MasterSecrets(
            generation=old.generation + 1,
            current=secrets.token_bytes(SECRET_BYTES),
            previous=old.current,
            rotated_at=now,
        )
        _write(path, masters)
        return masters


def load(path: Path) -> MasterSecrets:
    """Read and check the secret file. Raises FileNotFoundError when it is missing and SecretFileError
    when it is not a private regular file of the right size and shape."""
    data = read_private(path, max_bytes=_MAX_FILE_BYTES, what="challenge secret file", error=SecretFileError)
    if not data:
        raise SecretFileError(
            f"challenge secret file {path} is empty; move it away and a new secret is made at the next start"
        )
    try:
        return _parse(json.loads(data))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SecretFileError(
            f"challenge secret file {path} is damaged ({exc}); restore it from a backup, or move it away "
            "and a new secret is made at the next start (outstanding challenges and cookies then fail)"
        ) from None


def _parse(document: Any) -> MasterSecrets:
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise ValueError(f'no "format": {_FORMAT!r}')
    generation = document.get("generation")
    if type(generation) is not int or generation < 1:
        raise ValueError("generation must be a whole number >= 1")
    current = _secret(document.get("current"), "current")
    previous = rotated_at = None
    if document.get("previous") is not None:
        previous = _secret(document["previous"], "previous")
        rotated_at = document.get("rotated_at")
        if not isinstance(rotated_at, int | float) or isinstance(rotated_at, bool):
            raise ValueError("rotated_at must be a number of seconds since the epoch")
        if not math.isfinite(rotated_at):
            raise ValueError("rotated_at must be finite")
        rotated_at = float(rotated_at)
    return MasterSecrets(generation, current, previous, rotated_at)


def _secret(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * SECRET_BYTES:
        raise ValueError(f"{name} must be {2 * SECRET_BYTES} hex digits")
    return bytes.fromhex(value)


@contextlib.contextmanager
def _locked_directory(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on the file's directory meanwhile; missing directories are created 0700."""
    directory = path.parent
    try:
        for missing in reversed([directory, *directory.parents]):
            if not missing.is_dir():
                missing.mkdir(mode=0o700, exist_ok=True)
                missing.chmod(0o700)  # mkdir's mode is masked by the umask
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise SecretFileError(
            f"cannot create the directory {directory} for the challenge secret ({exc.strerror})"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def encode(masters: MasterSecrets) -> bytes:
    """The secret file's contents (also how a cluster shares them: cluster/secret.py)."""
    document = {
        "format": _FORMAT,
        "generation": masters.generation,
        "current": masters.current.hex(),
        "previous": masters.previous.hex() if masters.previous is not None else None,
        "rotated_at": masters.rotated_at,
    }
    return json.dumps(document).encode()


def decode(data: bytes) -> MasterSecrets:
    """Raises ValueError when `data` is not a secret file's contents."""
    return _parse(json.loads(data))


def replace(path: Path, masters: MasterSecrets) -> None:
    """Write `masters` over the file, under the directory's lock. Raises SecretFileError."""
    with _locked_directory(path):
        _write(path, masters)


def _write(path: Path, masters: MasterSecrets) -> None:
    try:
        write_atomic(path, encode(masters))  # 0600
    except OSError as exc:
        raise SecretFileError(
            f"cannot write the challenge secret file {path} ({exc.strerror or exc})"
        ) from None


def period_key(master: bytes, period: int) -> bytes:
    """The signing key of one period: HMAC-SHA256(master, b"shieldwall-challenge|<period>")."""
    return hmac.digest(master, _KEY_LABEL + str(period).encode(), hashlib.sha256)


class Keyring:
    """Which key signs now, and which keys a token may name. Derived keys are cached (a handful)."""

    __slots__ = ("_keys", "masters", "rotation")

    def __init__(self, masters: MasterSecrets, rotation: float = DEFAULT_ROTATION) -> None:
        if not rotation > 0 or not math.isfinite(rotation):
            raise ValueError("the key rotation period must be a positive number of seconds")
        self.masters = masters
        self.rotation = rotation
        self._keys: dict[tuple[int, int], bytes] = {}

    def period(self, now: float) -> int:
        return math.floor(now / self.rotation)

    def signing_key(self, now: float) -> tuple[int, int, bytes]:
        """(generation, period, key) to sign with at `now`: always the current master's."""
        generation, period = self.masters.generation, self.period(now)
        return generation, period, self._key(generation, period)

    def verifying_key(self, generation: int, period: int, now: float) -> bytes | None:
        """The key a token names, if it is still accepted at `now`: the current or the previous period,
        of the current master, or of the previous master within one period of the rotation."""
        if not 0 <= self.period(now) - period <= 1:
            return None
        masters = self.masters
        if generation != masters.generation and not (
            generation == masters.generation - 1
            and masters.previous is not None
            and masters.rotated_at is not None
            and now < masters.rotated_at + self.rotation
        ):
            return None
        return self._key(generation, period)

    def _key(self, generation: int, period: int) -> bytes:
        key = self._keys.get((generation, period))
        if key is None:
            masters = self.masters
            master = masters.current if generation == masters.generation else masters.previous
            assert master is not None  # verifying_key checked that this generation has a master
            if len(self._keys) >= _CACHED_KEYS:
                self._keys.clear()
            key = self._keys[(generation, period)] = period_key(master, period)
        return key
