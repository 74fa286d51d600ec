"""Where a visitor goes after passing a challenge: the request target it was challenged on, made safe to
send back in a `Location` header. A challenge must never become an open redirect.

A browser resolves `Location: //evil.example/` to another site, and it also treats "\\" as "/" and drops
tabs and newlines before resolving ("/\\evil.example", "/\\t/evil.example"). So the target keeps only
printable ASCII other than "\\" (anything else is percent-encoded, which a browser never decodes into an
authority), starts with exactly one "/" (any run of leading slashes becomes one), never points back into
the shield's own paths, and is bounded in length (it rides inside the token, in a URL): a longer one
loses its query, and then falls back to "/".
"""

from __future__ import annotations

from typing import Final

MAX_TARGET: Final = 1024  # bytes after encoding; the token in the verify URL stays under ~1.6 kB
SHIELD_PATHS: Final = b"/.shieldwall/"
# Bytes a target may keep as they are: printable ASCII but "\" (0x5C). Everything else is %XX-encoded.
_KEEP: Final = bytes(byte for byte in range(0x21, 0x7F) if byte != 0x5C)


def safe_target(target: bytes) -> bytes:
    """`target` (origin-form path and query, as received) made safe to redirect to; "/" when it is not
    a path at all (e.g. "*" or absolute-form) or is too long even without its query."""
    if target[:1] != b"/":
        return b"/"
    if target.translate(None, _KEEP):  # something to encode (rare: only on odd targets)
        target = b"".join(bytes((byte,)) if byte in _KEEP else b"%%%02X" % byte for byte in target)
    target = b"/" + target.lstrip(b"/")
    if len(target) > MAX_TARGET:
        target = target.partition(b"?")[0]
        if len(target) > MAX_TARGET:
            return b"/"
    if target.startswith(SHIELD_PATHS):
        return b"/"  # the verify URL itself as a destination would only loop
    return target
