"""The challenge secret file (created private and atomically, refused when unsafe, shared by processes
starting together, rotated without invalidating what it signed) and the per-period keys."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import pytest

from shieldwall.challenge import keys
from shieldwall.challenge.keys import Keyring, MasterSecrets, SecretFileError

NOW = 1_700_000_000.0
DAY = 86_400.0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_creates_a_private_file_in_a_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "challenge" / "secret.json"
    masters = keys.load_or_create(path)
    assert masters.generation == 1 and len(masters.current) == 32 and masters.previous is None
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    document = json.loads(path.read_text())
    assert document["current"] == masters.current.hex() and document["format"].startswith("shieldwall")
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret.json"]  # no temporary file left


def test_later_runs_load_the_same_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    first = keys.load_or_create(path)
    assert keys.load_or_create(path) == first == keys.load(path)
    assert keys.load_or_create(tmp_path / "other.json").current != first.current  # random each time


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "secret.json"
    children = []
    for _ in range(4):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write_end, keys.load_or_create(path).current.hex().encode())
            os._exit(0)
        os.close(write_end)
        children.append((pid, read_end))
    seen = set()
    for pid, read_end in children:
        os.waitpid(pid, 0)
        seen.add(os.read(read_end, 100).decode())
        os.close(read_end)
    assert seen == {keys.load(path).current.hex()}


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    keys.load_or_create(path)
    path.chmod(0o640)
    with pytest.raises(SecretFileError, match=r"mode 0640.*chmod 600"):
        keys.load_or_create(path)
    path.chmod(0o604)
    with pytest.raises(SecretFileError, match="chmod 600"):
        keys.load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"x" * 5000, "over 1024 bytes"),
        (b"{not json", "damaged"),
        (b'{"format": "something-else/1"}', "damaged"),
        (b'{"format": "shieldwall-challenge-secret/1", "generation": 1, "current": "abcd"}', "64 hex"),
        (
            b'{"format": "shieldwall-challenge-secret/1", "generation": 0, "current": "' + b"a" * 64 + b'"}',
            "generation",
        ),
        (
            b'{"format": "shieldwall-challenge-secret/1", "generation": 1, "current": "' + b"z" * 64 + b'"}',
            "damaged",
        ),
    ],
)
def test_a_file_of_the_wrong_size_or_shape_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "secret.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match=message) as caught:
        keys.load_or_create(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content  # never overwritten


def test_a_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.json").mkdir(mode=0o700)
    with pytest.raises(SecretFileError, match="regular file"):
        keys.load(tmp_path / "secret.json")


def test_rotation_keeps_the_previous_master_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    first = keys.load_or_create(path)
    second = keys.rotate(path, NOW)
    assert second.generation == 2 and second.previous == first.current and second.rotated_at == NOW
    assert second.current not in (first.current, None)
    assert keys.load(path) == second and mode(path) == 0o600
    third = keys.rotate(path, NOW + 10)
    assert third.generation == 3 and third.previous == second.current  # the oldest one is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.json"]


def test_rotating_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        keys.rotate(tmp_path / "secret.json", NOW)


def test_period_keys_are_an_hmac_of_the_period_number() -> None:
    master = bytes(range(32))
    expected = hmac.new(master, b"shieldwall-challenge|19675", hashlib.sha256).digest()
    assert keys.period_key(master, 19675) == expected
    assert keys.period_key(master, 19676) != expected
    assert keys.period_key(bytes(32), 19675) != expected


def test_the_keyring_signs_with_the_current_period_and_accepts_the_previous_one() -> None:
    master = bytes(range(32))
    ring = Keyring(MasterSecrets(1, master), rotation=DAY)
    period = int(NOW // DAY)
    assert ring.signing_key(NOW) == (1, period, keys.period_key(master, period))
    assert ring.verifying_key(1, period, NOW) == keys.period_key(master, period)
    assert ring.verifying_key(1, period - 1, NOW) == keys.period_key(master, period - 1)
    assert ring.verifying_key(1, period - 2, NOW) is None
    assert ring.verifying_key(1, period + 1, NOW) is None  # not issued yet: forged
    assert ring.verifying_key(2, period, NOW) is None  # a master this process does not have
    assert ring.verifying_key(0, period, NOW) is None


def test_a_previous_master_verifies_for_one_period_after_the_rotation() -> None:
    old, new = bytes(32), bytes(range(32))
    ring = Keyring(MasterSecrets(2, new, old, rotated_at=NOW), rotation=600.0)
    period = int(NOW // 600)
    assert ring.signing_key(NOW)[:2] == (2, period)
    assert ring.verifying_key(1, period, NOW + 1) == keys.period_key(old, period)
    assert ring.verifying_key(1, period, NOW + 599) == keys.period_key(old, period)
    assert ring.verifying_key(1, period, NOW + 600) is None
    assert ring.verifying_key(2, period + 1, NOW + 600) == keys.period_key(new, period + 1)


def test_the_rotation_period_must_be_positive() -> None:
    for rotation in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="rotation"):
            Keyring(MasterSecrets(1, bytes(32)), rotation)
