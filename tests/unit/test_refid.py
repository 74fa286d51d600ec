"""Reference IDs: fixed shape, effectively unique, and different in every forked worker."""

from __future__ import annotations

import os
import re

from shieldwall.core.refid import REFERENCE_ID_LENGTH, new_reference_id


def test_shape_and_uniqueness() -> None:
    ids = {new_reference_id() for _ in range(50_000)}
    assert len(ids) == 50_000
    assert all(re.fullmatch(r"SW-[0-9A-F]{12}", i) and len(i) == REFERENCE_ID_LENGTH for i in ids)


def test_forked_workers_do_not_repeat_each_other() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, " ".join(new_reference_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child = set(os.read(read_end, 1 << 16).decode().split())
    os.close(read_end)
    parent = {new_reference_id() for _ in range(100)}
    assert len(child) == 100 and not child & parent
