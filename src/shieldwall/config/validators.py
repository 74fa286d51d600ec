"""Field checks shared by the configuration's sections (see schema.py for the message convention)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shieldwall.net.networks import parse_network

PositiveFloat = Annotated[float, Field(gt=0, strict=True)]
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
StrictBool = Annotated[bool, Field(strict=True)]

# RFC 9110 token characters: Via pseudonyms, HTTP methods and header names in rules.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Section(BaseModel):
    """A configuration table: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_cidr(value: str) -> str:
    try:
        parse_network(value)
    except ValueError:
        raise ValueError("not a CIDR; write it like 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32") from None
    return value


Cidr = Annotated[str, AfterValidator(_is_cidr)]
