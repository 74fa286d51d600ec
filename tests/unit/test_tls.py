"""TLS termination: SNI picks the certificate, ALPN says http/1.1, bad files fail with their key path.

Handshakes run against a real asyncio server on 127.0.0.1 (port 0) with certificates from trustme."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from shieldwall.config import ConfigError
from shieldwall.config.schema import Certificate
from shieldwall.dataplane.tls import build_server_context


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def certs(ca, tmp_path_factory) -> dict[str, tuple[Certificate, bytes]]:
    """name → (config entry, DER of its leaf certificate). "a" is the default (ECDSA), "b" holds a
    wildcard (RSA), "c" is selected only by server_names, which override its SAN."""
    folder = tmp_path_factory.mktemp("certs")
    leaves = {
        "a": (ca.issue_cert("a.example.test"), ()),
        "b": (ca.issue_cert("b.example.test", "*.b.example.test", key_type=trustme.KeyType.RSA), ()),
        "c": (ca.issue_cert("c.example.test"), ("alias.test",)),
    }
    out = {}
    for name, (leaf, server_names) in leaves.items():
        leaf.cert_chain_pems[0].write_to_path(str(folder / f"{name}.pem"))
        leaf.private_key_pem.write_to_path(str(folder / f"{name}.key"))
        entry = Certificate(
            cert=folder / f"{name}.pem", key=folder / f"{name}.key", server_names=server_names
        )
        out[name] = (entry, ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode()))
    return out


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, sni: str) -> ssl.SSLObject:
    async def close(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, "127.0.0.1", 0, ssl=server_ctx)
    try:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=sni), 5
        )
        ssl_object = writer.get_extra_info("ssl_object")
        writer.close()
        return ssl_object
    finally:
        server.close()
        await server.wait_closed()


def _client(ca: trustme.CA, *, check_hostname: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.check_hostname = check_hostname
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


@pytest.mark.parametrize(
    ("sni", "served", "verified"),
    [
        ("a.example.test", "a", True),
        ("A.Example.Test", "a", True),
        ("b.example.test", "b", True),
        ("www.b.example.test", "b", True),  # *.b.example.test
        ("alias.test", "c", False),  # server_names replace the SAN for selection
        ("c.example.test", "a", False),  # ... so the SAN name no longer selects it
        ("x.www.b.example.test", "a", False),  # a wildcard covers exactly one label
        ("unknown.test", "a", False),
        ("", "a", False),  # no SNI at all
    ],
)
def test_sni_selects_certificate_and_alpn_is_http11(ca, certs, sni, served, verified):
    server_ctx = build_server_context([certs[name][0] for name in ("a", "b", "c")])
    ssl_object = asyncio.run(_handshake(server_ctx, _client(ca, check_hostname=verified), sni))
    assert ssl_object.getpeercert(binary_form=True) == certs[served][1]
    assert ssl_object.selected_alpn_protocol() == "http/1.1"


def test_protocol_settings_and_tls12_ciphers_are_mozilla_intermediate(ca, certs):
    server_ctx = build_server_context([certs["b"][0]])
    assert server_ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_ctx.options & ssl.OP_NO_COMPRESSION
    assert server_ctx.options & ssl.OP_NO_RENEGOTIATION

    def tls12_client(cipher: str) -> ssl.SSLContext:
        client = _client(ca)
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        client.set_ciphers(cipher)
        return client

    aead = asyncio.run(_handshake(server_ctx, tls12_client("ECDHE-RSA-AES128-GCM-SHA256"), "b.example.test"))
    assert aead.cipher()[:2] == ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):  # CBC suites are outside the profile
        asyncio.run(_handshake(server_ctx, tls12_client("ECDHE-RSA-AES128-SHA256"), "b.example.test"))


def _problems(certificates: list[Certificate]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        build_server_context(certificates, config_path="listeners[0].certificates")
    return caught.value.problems


def test_missing_key_is_named_by_its_key_path(certs, tmp_path):
    good = certs["a"][0]
    missing = Certificate(cert=certs["b"][0].cert, key=tmp_path / "nope.key")
    assert _problems([good, missing]) == [
        f"listeners[0].certificates[1].key: file not found: {tmp_path / 'nope.key'}"
    ]


def test_mismatched_key(certs):
    swapped = Certificate(cert=certs["a"][0].cert, key=certs["b"][0].key)
    [problem] = _problems([swapped])
    assert problem.startswith("listeners[0].certificates[0].key: ")
    assert "does not match the certificate" in problem


def test_every_problem_is_reported_at_once(certs, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    encrypted = tmp_path / "encrypted.key"
    key = serialization.load_pem_private_key(certs["a"][0].key.read_bytes(), password=None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    problems = _problems(
        [
            Certificate(cert=garbage, key=certs["a"][0].key),
            Certificate(cert=certs["a"][0].cert, key=encrypted),
            Certificate(cert=Path("/nonexistent/cert.pem"), key=Path("/nonexistent/key.pem")),
        ]
    )
    assert [problem.split(":")[0] for problem in problems] == [
        "listeners[0].certificates[0].cert",
        "listeners[0].certificates[1].key",
        "listeners[0].certificates[2].cert",
        "listeners[0].certificates[2].key",
    ]
    assert "encrypted" in problems[1]
