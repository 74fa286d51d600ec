"""TLS termination: one server SSLContext per listener, choosing the certificate by SNI.

Built once at start-up and handed to `loop.start_tls`, so a PROXY header can be read before the
handshake. Every certificate problem is found here, with its config key path, rather than at the
first handshake: a shield that starts and then fails every TLS client is worse than one that refuses
to start. Each certificate gets its own context with identical settings; the SNI callback on the
first (default) context swaps in the one whose names match.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from shieldwall.config import ConfigError
from shieldwall.config.schema import Certificate

# Mozilla "intermediate" (Server Side TLS 5.7) TLS 1.2 suites: forward secret AEAD only. The DHE suites
# are left out because Python offers no way to set the ffdhe2048 group the guideline asks for. TLS 1.3
# suites are OpenSSL's defaults, which are the guideline's. Client preference is kept, as it advises.
_TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
_ALPN = ["http/1.1"]
_SOURCE = "TLS certificates"


def build_server_context(
    certificates: Sequence[Certificate], *, config_path: str = "certificates"
) -> ssl.SSLContext:
    """A server context serving `certificates`, the first being the default when SNI matches none.

    `config_path` prefixes key paths in errors; the data plane passes "listeners[N].certificates".
    Raises ConfigError listing every unreadable file, bad PEM or certificate/key mismatch at once."""
    if not certificates:
        raise ValueError("a TLS listener needs at least one certificate")
    problems: list[str] = []
    loaded = [_load(cert, f"{config_path}[{index}]", problems) for index, cert in enumerate(certificates)]
    for index, entry in enumerate(loaded):
        if entry is not None and index > 0 and not entry[1]:
            problems.append(
                f"{config_path}[{index}]: no names to select it by; set server_names, "
                "or use a certificate with DNS subjectAltNames"
            )
    if problems:
        raise ConfigError(_SOURCE, problems)
    contexts = [entry for entry in loaded if entry is not None]
    default = contexts[0][0]
    default.sni_callback = _SniSelector(contexts)
    return default


class _SniSelector:
    """Exact names first, then one-label wildcards; the earliest certificate wins a name claimed twice
    (during a rotation old and new certificates overlap). Unknown or absent SNI keeps the default."""

    def __init__(self, contexts: Sequence[tuple[ssl.SSLContext, tuple[str, ...]]]) -> None:
        self._default = contexts[0][0]
        self._exact: dict[str, ssl.SSLContext] = {}
        self._wildcard: dict[str, ssl.SSLContext] = {}  # "example.org" for *.example.org
        for context, names in contexts:
            for name in names:
                if name.startswith("*."):
                    self._wildcard.setdefault(name[2:], context)
                else:
                    self._exact.setdefault(name, context)

    def __call__(self, ssl_object: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
        if server_name is None:
            return
        name = server_name.lower().rstrip(".")
        context = self._exact.get(name)
        if context is None:
            _, dot, parent = name.partition(".")
            context = self._wildcard.get(parent) if dot else None
        if context is not None and context is not self._default:
            ssl_object.context = context


def _load(
    cert: Certificate, where: str, problems: list[str]
) -> tuple[ssl.SSLContext, tuple[str, ...]] | None:
    """One certificate's context and SNI names, or None after appending what is wrong to `problems`."""
    cert_pem = _read(cert.cert, f"{where}.cert", problems)
    key_pem = _read(cert.key, f"{where}.key", problems)
    if cert_pem is None or key_pem is None:
        return None
    try:
        leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        problems.append(f"{where}.cert: {cert.cert} holds no PEM certificate")
        return None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        problems.append(f"{where}.key: {cert.key} is encrypted; shieldwall needs it unencrypted (mode 0600)")
        return None
    except (ValueError, UnsupportedAlgorithm):
        problems.append(f"{where}.key: {cert.key} holds no PEM private key")
        return None
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        problems.append(f"{where}.key: {cert.key} does not match the certificate in {cert.cert}")
        return None
    context = _new_context()
    try:
        context.load_cert_chain(cert.cert, cert.key)
    except ssl.SSLError as exc:
        problems.append(f"{where}.cert: OpenSSL refused {cert.cert} with {cert.key}: {exc.reason or exc}")
        return None
    # server_names were checked by the config schema; SAN entries we cannot match on are skipped.
    names = cert.server_names or [name for name in _san_dns_names(leaf) if _valid_name(name)]
    return context, tuple(name.lower().rstrip(".") for name in names)


def _read(path: Path, key: str, problems: list[str]) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{key}: file not found: {path}")
    except PermissionError:
        problems.append(f"{key}: not readable by this user: {path}")
    except OSError as exc:
        problems.append(f"{key}: cannot read {path}: {exc.strerror}")
    return None


def _spki(public_key: PublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo: equal for a certificate and the private key it was issued for."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _san_dns_names(leaf: x509.Certificate) -> list[str]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)


def _valid_name(name: str) -> bool:
    """A DNS name, optionally with "*." as its whole leftmost label (RFC 6125 one-label wildcards):
    partial-label wildcards such as f*.example.org are not honoured by browsers, so not by us."""
    labels = name.lower().rstrip(".").removeprefix("*.").split(".")
    return all(label and label.isascii() and label.replace("-", "").isalnum() for label in labels)


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_TLS12_CIPHERS)
    # No compression (CRIME), no renegotiation (a client-driven CPU sink). Session tickets stay on.
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(_ALPN)
    return context
