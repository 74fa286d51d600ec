"""Field checks shared by the configuration's sections (see schema.py for the message convention)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from shieldwall.net.networks import parse_network


def _is_cidr(value: str) -> str:
    try:
        parse_network(value)
    except ValueError:
        raise ValueError("not a CIDR; write it like 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32") from None
    return value


Cidr = Annotated[str, AfterValidator(_is_cidr)]
