"""The nftables mirror against a real kernel, inside a network namespace this test creates: a real
shield and origin run in it (loopback only), a ban made with `shieldwall bans add` shows up in the set
with its timeout, and the kernel then drops that client's SYNs (its connect times out) while another
source is answered; a prefix ban goes to the prefix set and drops its addresses too; a lifted ban
leaves the set; the table stays when the shield stops; the `export bans --format nft` script loads
into nft; and nft's own refusal without CAP_NET_ADMIN is recognised. Skipped only where the kernel
denies network namespaces (the reason is given)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import procs
from helpers.tomlfile import merge, write_toml
from shieldwall.control.firewall_mirror import explain
from shieldwall.firewall import nft_json
from shieldwall.firewall.entries import BanSet

pytestmark = pytest.mark.integration

SHIELD_PORT = 8080  # the namespace is fresh: nothing else listens in it
BANNED, OTHER = "127.0.0.9", "127.0.0.10"

# Run inside the namespace: connect from `source` with a deadline, send a request, say what happened.
PROBE = """\
import socket, sys
source, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket()
sock.settimeout(timeout)
sock.bind((source, 0))
try:
    sock.connect(("127.0.0.1", port))
except TimeoutError:
    print("timeout")
    sys.exit()
except OSError as exc:
    print("error", exc.errno)
    sys.exit()
sock.sendall(b"GET /hello HTTP/1.1\\r\\nHost: test\\r\\nConnection: close\\r\\n\\r\\n")
data = b""
try:
    while chunk := sock.recv(65536):
        data += chunk
except OSError:
    pass
print(data.split(b"\\r\\n", 1)[0].decode() if data else "closed")
"""


def run(*argv: str, stdin: bytes | None = None, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), input=stdin, capture_output=True, timeout=timeout, check=False)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"shieldwall-test-{os.getpid()}"
    made = run("ip", "netns", "add", name)
    if made.returncode != 0:
        why = made.stderr.decode(errors="replace").strip()
        if "Operation not permitted" in why or "Permission denied" in why:
            pytest.skip(f"the kernel denies network namespaces here (ip netns add: {why})")
        raise AssertionError(f"ip netns add {name} failed: {why}")
    try:
        up = run("ip", "-n", name, "link", "set", "lo", "up")
        assert up.returncode == 0, up.stderr
        yield name
    finally:
        run("ip", "netns", "del", name)


class Namespace:
    """Processes and commands in one namespace; `stop_all` stops the processes it started, by PID."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.started: list[procs.ServerProcess] = []

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return run(*self.argv(*argv), stdin=stdin)

    def probe(self, source: str, timeout: float = 2.0) -> str:
        result = self.run(sys.executable, "-c", PROBE, source, str(SHIELD_PORT), str(timeout))
        assert result.returncode == 0, result.stderr
        return result.stdout.decode().strip()

    def banned4(self) -> list[Any]:
        """The elements of inet shieldwall banned4, as `nft -j` lists them ([] before the set exists)."""
        listed = self.run("nft", "-j", "list", "set", "inet", "shieldwall", "banned4")
        if listed.returncode != 0:
            return []
        [found] = [item["set"] for item in json.loads(listed.stdout)["nftables"] if "set" in item]
        elements: list[Any] = found.get("elem", [])
        return elements

    def listed(self, name: str) -> str:
        """`nft list set inet shieldwall NAME`, as text."""
        return self.run("nft", "list", "set", "inet", "shieldwall", name).stdout.decode()

    def spawn(self, name: str, argv: list[str], *, capture_stdout: bool = False) -> procs.ServerProcess:
        proc = procs.ServerProcess.spawn(
            name, self.argv(*argv), self.workdir / f"{name}.stderr", capture_stdout=capture_stdout
        )
        self.started.append(proc)
        procs.LIVE.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            procs.stop(proc)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.1)


def element(elements: list[Any], address: str) -> dict[str, Any] | None:
    for item in elements:
        if isinstance(item, dict) and item["elem"]["val"] == address:
            found: dict[str, Any] = item["elem"]
            return found
        if item == address:
            return {"val": address}
    return None


def cli(*args: str, config: Path) -> subprocess.CompletedProcess[bytes]:
    result = run(sys.executable, "-m", "shieldwall", *args, "--config", str(config))
    assert result.returncode == 0, result.stderr
    return result


def test_bans_reach_the_kernel_and_stay_there_across_a_stop(netns: str, tmp_path: Path) -> None:
    ns = Namespace(netns, tmp_path)
    config = tmp_path / "shield.toml"
    write_toml(
        config,
        merge(
            procs.BASE_SHIELD_CONFIG,
            {"server": {"state_dir": str(tmp_path / "state")}, "firewall": {"nftables": True}},
        ),
    )
    try:
        origin = ns.spawn(
            "origin",
            [sys.executable, "-m", "shieldwall.drill.origin", "--listen", "127.0.0.1:0"],
            capture_stdout=True,
        )
        origin.read_announced_port("origin listening on 127.0.0.1:", procs.READY_TIMEOUT)
        shield = ns.spawn(
            "shield",
            [
                sys.executable, "-m", "shieldwall", "run",
                "--upstream", f"http://127.0.0.1:{origin.port}",
                "--listen", f"127.0.0.1:{SHIELD_PORT}",
                "--workers", "1",
                "--config", str(config),
            ],
        )  # fmt: skip
        shield.wait_until(lambda: ns.probe(OTHER) == "HTTP/1.1 200 OK", procs.READY_TIMEOUT, "answer")
        shield.wait_until(
            lambda: ns.run("nft", "list", "table", "inet", "shieldwall").returncode == 0, 10, "table"
        )

        cli("bans", "add", BANNED, "--for", "10m", config=config)
        wait_for("element for the ban", lambda: element(ns.banned4(), BANNED) is not None, 5.0)
        found = element(ns.banned4(), BANNED)
        assert found is not None and 590 <= found["timeout"] <= 600 and found["expires"] <= found["timeout"]
        assert ns.probe(BANNED) == "timeout"  # dropped by the kernel: not even a SYN-ACK
        assert ns.probe(OTHER) == "HTTP/1.1 200 OK"
        chain = json.loads(ns.run("nft", "-j", "list", "chain", "inet", "shieldwall", "prerouting").stdout)
        counters = [
            e["counter"]
            for i in chain["nftables"]
            if "rule" in i
            for e in i["rule"]["expr"]
            if "counter" in e
        ]
        assert counters[0]["packets"] >= 1  # the banned4 rule dropped the SYNs

        cli("bans", "add", "127.0.1.0/24", "--for", "1h", config=config)  # a prefix: the interval set
        wait_for("the prefix in banned4_nets", lambda: "127.0.1.0/24" in ns.listed("banned4_nets"), 5.0)
        assert ns.probe("127.0.1.5") == "timeout"

        cli("bans", "remove", BANNED, config=config)
        wait_for("the lifted ban to leave the set", lambda: element(ns.banned4(), BANNED) is None, 5.0)
        wait_for("an answer once the worker lifts it too", lambda: ns.probe(BANNED) == "HTTP/1.1 200 OK", 5.0)

        cli("bans", "add", BANNED, "--for", "10m", config=config)
        wait_for("element for the new ban", lambda: element(ns.banned4(), BANNED) is not None, 5.0)
        exported = tmp_path / "bans.nft"
        cli("export", "bans", "--format", "nft", "-o", str(exported), config=config)
        procs.stop(shield)
        assert shield.popen.returncode == 0, shield.log_tail()
        assert "left table inet shieldwall in the kernel" in shield.log_tail()
        assert element(ns.banned4(), BANNED) is not None  # still dropped while the shield is down
        assert ns.probe(BANNED) == "timeout"

        ns.run("nft", "delete", "table", "inet", "shieldwall")
        loaded = ns.run("nft", "-f", str(exported))
        assert loaded.returncode == 0, loaded.stderr
        found = element(ns.banned4(), BANNED)
        assert found is not None and 580 <= found["timeout"] <= 600
        assert ns.probe(BANNED) == "timeout"
    finally:
        ns.stop_all()


def test_nft_without_cap_net_admin_is_explained(netns: str) -> None:
    ns = Namespace(netns, Path())
    document = nft_json.document(nft_json.full("shieldwall", BanSet(), time.time()))
    # `sh` runs as nobody too, so the pipe nft reads (`-f -` opens /dev/stdin again) is nobody's, as the
    # shield's own pipe to nft is the shield user's
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    refused = ns.run(*nobody, "sh", "-c", "cat | nft -j -f -", stdin=document)
    assert refused.returncode != 0
    message = explain(refused.stderr.decode())
    assert "CAP_NET_ADMIN" in message, refused.stderr
    assert ns.run("nft", "list", "tables").stdout == b""  # nothing was changed
