"""The reuseport steering program, checked against the real kernel on loopback: connections from one
client prefix must all reach the same socket of the group, and distinct prefixes must spread out."""

from __future__ import annotations

import errno
import select
import socket
from collections import defaultdict
from collections.abc import Iterator

import pytest

from shieldwall.config import parse_config
from shieldwall.dataplane.listen import (
    STEERING_BPF,
    STEERING_KERNEL,
    ListenError,
    attach_prefix_steering,
    bind_group,
    bind_listeners,
    prefix_steering_program,
)

GROUP_SIZE = 4


@pytest.fixture
def group_v4() -> Iterator[list[socket.socket]]:
    sockets = bind_group("127.0.0.1", 0, GROUP_SIZE)
    yield sockets
    for sock in sockets:
        sock.close()


def _landing_index(listeners: list[socket.socket], client_host: str) -> int:
    """Connect from `client_host` and return the index of the listening socket that got the connection."""
    family = listeners[0].family
    port = listeners[0].getsockname()[1]
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.bind((client_host, 0))
        client.connect((listeners[0].getsockname()[0], port))
        readable, _, _ = select.select(listeners, [], [], 2.0)
        assert len(readable) == 1, f"connection from {client_host} was queued on {len(readable)} sockets"
        index = listeners.index(readable[0])
        accepted, peer = listeners[index].accept()
        accepted.close()
        assert peer[0] == client_host
        return index


def test_ipv4_prefix_lands_on_one_socket_and_prefixes_spread(group_v4: list[socket.socket]) -> None:
    attach_prefix_steering(group_v4)
    landed: dict[int, set[int]] = defaultdict(set)
    for third in range(1, 25):  # 24 prefixes x 6 hosts = 144 connections
        for fourth in (1, 2, 50, 99, 200, 254):
            landed[third].add(_landing_index(group_v4, f"127.0.{third}.{fourth}"))
    assert all(len(indexes) == 1 for indexes in landed.values()), dict(landed)
    used = set().union(*landed.values())
    assert len(used) > 1, f"24 prefixes all landed on socket {used}"


def test_without_the_program_one_prefix_is_scattered(group_v4: list[socket.socket]) -> None:
    # Guards the test above: the kernel's own 4-tuple hash must *not* already give prefix affinity,
    # otherwise that test would pass without the program doing anything.
    indexes = {_landing_index(group_v4, f"127.0.7.{fourth}") for fourth in range(1, 41)}
    assert len(indexes) > 1


def test_ipv6_loopback_prefix_lands_on_one_socket() -> None:
    # Only ::1 is local, i.e. a single /64: all we can check is that it always lands on one socket.
    sockets = bind_group("::1", 0, GROUP_SIZE)
    try:
        attach_prefix_steering(sockets)
        indexes = {_landing_index(sockets, "::1") for _ in range(40)}
    finally:
        for sock in sockets:
            sock.close()
    assert len(indexes) == 1


def test_programs_end_with_the_socket_count_modulus() -> None:
    for family in (socket.AF_INET, socket.AF_INET6):
        program = prefix_steering_program(family, 7)
        mod, ret = program[-2], program[-1]
        assert mod == (0x94, 0, 0, 7)  # BPF_ALU | BPF_MOD | BPF_K
        assert ret == (0x16, 0, 0, 0)  # BPF_RET | BPF_A
    with pytest.raises(ValueError, match="1-65535"):
        prefix_steering_program(socket.AF_INET, 0)


def test_bind_listeners_reports_the_steering_mode() -> None:
    probe = bind_group("127.0.0.1", 0, 1)
    port = probe[0].getsockname()[1]
    probe[0].close()
    settings = parse_config({"listeners": [{"address": f"127.0.0.1:{port}"}]})
    groups = bind_listeners(settings, 3)
    try:
        assert [g.steering for g in groups] == [STEERING_BPF]
        assert len(groups[0].sockets) == 3
        assert {s.getsockname()[1] for s in groups[0].sockets} == {port}
    finally:
        for group in groups:
            group.close()
    single = bind_listeners(settings, 1)
    try:
        assert single[0].steering == STEERING_KERNEL
        assert "single worker" in single[0].steering_note
    finally:
        single[0].close()


def test_an_address_in_use_is_a_clear_error() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        address = f"127.0.0.1:{other.getsockname()[1]}"
        settings = parse_config({"listeners": [{"address": address}]})
        with pytest.raises(ListenError) as caught:
            bind_listeners(settings, 2)
    assert caught.value.error.errno == errno.EADDRINUSE
    assert str(caught.value).startswith(f"cannot listen on {address}: ")
    assert "another process is listening there" in str(caught.value)
