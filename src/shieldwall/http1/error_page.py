"""The small branded page (or JSON) a visitor sees when the shield answers instead of the origin."""

from __future__ import annotations

import json
from functools import lru_cache
from html import escape
from http import HTTPStatus

from shieldwall.core.refid import REFERENCE_ID_LENGTH
from shieldwall.http1.forwarding import status_line

_EXPLANATIONS: dict[int, str] = {
    400: "Your browser sent a request this site cannot accept.",
    403: "This request is not allowed here. If you think that is a mistake, tell the site's team.",
    404: "There is nothing here.",
    405: "This kind of request is not accepted here.",
    408: "Your request took too long to arrive.",
    413: "The request is larger than this site accepts.",
    414: "The address is longer than this site accepts.",
    417: "Your browser asked for something this site does not support.",
    429: "You are sending requests faster than this site allows. Please wait a moment and try again.",
    431: "Your browser sent more header data than this site accepts.",
    502: "The website behind this shield is not answering right now. Please try again in a minute.",
    503: "The website is very busy right now. Please try again in a minute.",
    504: "The website behind this shield took too long to answer. Please try again in a minute.",
    505: "Your browser spoke a version of HTTP this site does not support.",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{status} {phrase}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:12vh auto;padding:0 1em;color:#222}}
h1{{font-size:1.4em}}code{{background:#eee;padding:.1em .3em;border-radius:3px}}
small{{color:#666}}</style></head>
<body><h1>{status} {phrase}</h1><p>{explanation}</p>
<p>If you contact the site's team, quote this reference: <code>{ref}</code></p>
<small>Protected by shieldwall</small></body></html>
"""


def wants_json(accept: bytes | None) -> bool:
    return accept is not None and b"application/json" in accept and b"text/html" not in accept


@lru_cache(maxsize=128)
def _template(status: int, json_body: bool) -> tuple[bytes, bytes, bytes]:
    """(head up to the reference, body before the reference, body after it) — built once per status."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    explanation = _EXPLANATIONS.get(status, "The request could not be completed.")
    marker = "@@REFERENCE@@"
    if json_body:
        text = json.dumps({"status": status, "error": phrase, "message": explanation, "reference": marker})
        ctype = b"application/json"
    else:
        text = _PAGE.format(status=status, phrase=escape(phrase), explanation=escape(explanation), ref=marker)
        ctype = b"text/html; charset=utf-8"
    before, after = (part.encode() for part in text.split(marker))
    length = len(before) + REFERENCE_ID_LENGTH + len(after)
    head = status_line(status) + b"Content-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n" % (
        ctype,
        length,
    )
    return head, before, after


def error_response(
    status: int, ref_id: str, *, json_body: bool, keep_alive: bool = False, retry_after: int | None = None
) -> bytes:
    """A complete HTTP/1.1 response. Everything but the reference (and Retry-After) is prebuilt."""
    head, before, after = _template(status, json_body)
    ref = ref_id.encode()
    if len(ref) != REFERENCE_ID_LENGTH:
        raise ValueError(f"reference IDs are {REFERENCE_ID_LENGTH} characters, got {ref_id!r}")
    parts = [head, b"X-Shieldwall-Ref: ", ref, b"\r\n"]
    if retry_after is not None:
        parts.append(b"Retry-After: %d\r\n" % retry_after)
    parts.append(b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n")
    parts += (before, ref, after)
    return b"".join(parts)
