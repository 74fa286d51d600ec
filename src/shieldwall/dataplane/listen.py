"""Listening sockets shared by the workers, and the classic-BPF program that pins clients to workers.

Every listener gets one socket per worker, all bound to the same address with SO_REUSEPORT, so the
kernel spreads new connections over the workers without a shared accept lock. By default the kernel
picks a socket by hashing the 4-tuple, which scatters one client's connections over all workers. The
per-client limiters live in each worker's memory, so we attach a tiny classic-BPF program to the group
that hashes only the client's prefix (IPv4 /24, IPv6 /64): all connections from one prefix land on one
socket index, hence one worker, and that worker's counts are exact without any shared state.

The supervisor binds the groups once and keeps every socket open for its whole life. Workers that crash
or are replaced on reload reuse the socket of their index, so the group (and the order the BPF program's
answer refers to) never changes, and connections queue in the kernel backlog while a worker restarts.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shieldwall.config.schema import Listener, Settings

# Not exported by Python's socket module; the values are Linux UAPI (asm-generic/socket.h, linux/filter.h).
SO_ATTACH_REUSEPORT_CBPF = 51
SKF_NET_OFF = -0x100000  # "relative to the network header" base for negative load offsets

STEERING_BPF = "bpf-prefix"
STEERING_KERNEL = "kernel-hash"

_DEFAULT_BACKLOG = 4096

# Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
_BPF_LD, _BPF_ALU, _BPF_RET, _BPF_MISC = 0x00, 0x04, 0x06, 0x07
_BPF_W, _BPF_ABS = 0x00, 0x20
_BPF_AND, _BPF_MUL, _BPF_RSH, _BPF_MOD, _BPF_XOR = 0x50, 0x20, 0x70, 0x90, 0xA0
_BPF_K, _BPF_X, _BPF_A = 0x00, 0x08, 0x10
_BPF_TAX = 0x00

# Knuth's multiplicative hash constant (2^32 / golden ratio): one multiply mixes the prefix bits into
# the high half of the word, which is why the program shifts right before taking the modulus. Without
# it, prefixes allocated in strides (every 4th /24, say) would all share one worker.
_GOLDEN = 0x9E3779B1
_IPV4_SADDR = 12  # offset of the source address in the IPv4 header
_IPV6_SADDR = 8  # offset of the source address in the IPv6 header

Instruction = tuple[int, int, int, int]  # (code, jt, jf, k): one struct sock_filter


class ListenError(Exception):
    """A listener could not be bound; the message names the address, the OS error and a likely fix."""

    def __init__(self, address: str, error: OSError) -> None:
        self.address = address
        self.error = error
        reason = error.strerror or str(error)
        hint = ""
        if error.errno == errno.EADDRINUSE:
            hint = " (another process is listening there; stop it or choose another port)"
        elif error.errno in (errno.EACCES, errno.EPERM):
            hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        elif error.errno == errno.EADDRNOTAVAIL:
            hint = " (that address is not configured on any interface of this host)"
        super().__init__(f"cannot listen on {address}: {reason}{hint}")


@dataclass(frozen=True)
class ListenerGroup:
    """One listener's sockets, index i served by worker i. `steering` is STEERING_BPF or STEERING_KERNEL;
    `steering_note` says why the kernel hash is used (empty when the BPF program is attached)."""

    listener: Listener
    sockets: tuple[socket.socket, ...]
    steering: str
    steering_note: str

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def bind_listeners(settings: Settings, n_workers: int) -> list[ListenerGroup]:
    """Bind `n_workers` sockets for every listener and attach prefix steering where possible.

    Raises ListenError (after closing whatever was already bound) if any address cannot be used."""
    groups: list[ListenerGroup] = []
    try:
        for listener in settings.listeners:
            host, port = listener.host_port
            try:
                sockets = bind_group(host, port, n_workers)
            except OSError as exc:
                raise ListenError(listener.address, exc) from None
            mode, note = _steer(sockets, enabled=settings.server.steer_by_prefix)
            groups.append(ListenerGroup(listener, tuple(sockets), mode, note))
    except BaseException:
        for group in groups:
            group.close()
        raise
    return groups


def bind_group(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` non-blocking listening sockets on one address, in reuseport-group order.

    Port 0 binds the first socket to a free port and the rest to that port (tests use this). Each socket
    listens right after its bind: a TCP socket joins the group at listen(), so list order = group order."""
    family, address = _resolve(host)
    if port:
        _ensure_not_taken(family, address, port)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _new_socket(family, reuse_port=True)
            sockets.append(sock)
            sock.bind((address, port))
            port = sock.getsockname()[1]
            sock.listen(_backlog())
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def prefix_steering_program(family: socket.AddressFamily, n_sockets: int) -> list[Instruction]:
    """The classic-BPF program answering `hash(client prefix) % n_sockets` for one reuseport group.

    For TCP the kernel runs it on the SYN with skb->data past the TCP header, so the source address is
    read relative to the network header (SKF_NET_OFF). A load outside the packet makes the program return
    0, i.e. socket 0: harmless. Loads are big-endian; ALU is 32-bit, so the multiply wraps mod 2^32."""
    if not 1 <= n_sockets <= 0xFFFF:
        raise ValueError(f"a reuseport group holds 1-65535 sockets, not {n_sockets}")
    net = SKF_NET_OFF & 0xFFFFFFFF  # k is a u32; the kernel reads it back as a negative offset
    if family == socket.AF_INET:
        prefix = [
            (_BPF_LD | _BPF_W | _BPF_ABS, 0, 0, net + _IPV4_SADDR),  # A = IPv4 source address
            (_BPF_ALU | _BPF_AND | _BPF_K, 0, 0, 0xFFFFFF00),  # A &= /24 mask
            (_BPF_ALU | _BPF_MUL | _BPF_K, 0, 0, _GOLDEN),  # A *= golden ratio (mixes into high bits)
        ]
    elif family == socket.AF_INET6:
        prefix = [
            (_BPF_LD | _BPF_W | _BPF_ABS, 0, 0, net + _IPV6_SADDR),  # A = source address bits 0-31
            (_BPF_ALU | _BPF_MUL | _BPF_K, 0, 0, _GOLDEN),  # A *= golden ratio
            (_BPF_MISC | _BPF_TAX, 0, 0, 0),  # X = A
            (_BPF_LD | _BPF_W | _BPF_ABS, 0, 0, net + _IPV6_SADDR + 4),  # A = source address bits 32-63
            (_BPF_ALU | _BPF_XOR | _BPF_X, 0, 0, 0),  # A ^= X: both halves of the /64
            (_BPF_ALU | _BPF_MUL | _BPF_K, 0, 0, _GOLDEN),  # A *= golden ratio
        ]
    else:
        raise ValueError(f"no steering program for address family {family!r}")
    return [
        *prefix,
        (_BPF_ALU | _BPF_RSH | _BPF_K, 0, 0, 16),  # A >>= 16: keep the well-mixed high half
        (_BPF_ALU | _BPF_MOD | _BPF_K, 0, 0, n_sockets),  # A %= number of sockets
        (_BPF_RET | _BPF_A, 0, 0, 0),  # return A: the index of the socket that gets the connection
    ]


class _SockFilter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter)))


def attach_prefix_steering(sockets: Sequence[socket.socket]) -> None:
    """Attach the prefix-steering program to the group `sockets` form (all must be listening already).

    Raises OSError when the kernel refuses (before 4.6, or a seccomp/LSM policy)."""
    program = prefix_steering_program(sockets[0].family, len(sockets))
    filters = (_SockFilter * len(program))(*(_SockFilter(*insn) for insn in program))
    fprog = _SockFprog(len(program), ctypes.cast(filters, ctypes.POINTER(_SockFilter)))
    # setsockopt copies the struct; the kernel copies the instructions it points to before returning.
    sockets[0].setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(fprog))


def _steer(sockets: Sequence[socket.socket], *, enabled: bool) -> tuple[str, str]:
    if not enabled:
        return STEERING_KERNEL, "disabled by server.steer_by_prefix"
    if len(sockets) == 1:
        return STEERING_KERNEL, "a single worker needs no steering"
    try:
        attach_prefix_steering(sockets)
    except OSError as exc:
        return STEERING_KERNEL, f"the kernel refused the BPF program: {exc}"
    return STEERING_BPF, ""


def _resolve(host: str) -> tuple[socket.AddressFamily, str]:
    # The schema admits IP literals and "localhost"; the latter means IPv4 loopback here so that the
    # result never depends on the resolver's (gai.conf) ordering.
    address = "127.0.0.1" if host == "localhost" else host
    version = ipaddress.ip_address(address).version
    return (socket.AF_INET6 if version == 6 else socket.AF_INET), address


def _new_socket(family: socket.AddressFamily, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def _ensure_not_taken(family: socket.AddressFamily, address: str, port: int) -> None:
    """Raise EADDRINUSE if something already listens on the address.

    With SO_REUSEPORT a second shieldwall (or anything of the same user with that option) on the port
    would silently *share* it, splitting traffic between two instances. A probe bound without
    SO_REUSEPORT conflicts with any listener there, so the mistake is reported instead."""
    probe = _new_socket(family, reuse_port=False)
    with probe:
        probe.bind((address, port))


def _backlog() -> int:
    # The kernel silently caps listen()'s backlog at net.core.somaxconn; asking for that much means
    # the operator's sysctl decides, and 4096 (the modern default) when it cannot be read.
    with contextlib.suppress(OSError, ValueError):
        return max(1, int(Path("/proc/sys/net/core/somaxconn").read_text(encoding="ascii")))
    return _DEFAULT_BACKLOG
