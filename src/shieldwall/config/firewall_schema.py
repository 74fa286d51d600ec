"""`[firewall]`: bans pushed down to the kernel, so that it drops banned clients before Python sees a
byte of theirs. Off by default: it needs CAP_NET_ADMIN, and it drops every packet of a banned client on
the whole machine, not only on the shield's ports (docs/firewall.md)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from shieldwall.config.validators import Section, StrictBool

# nftables identifiers are freer than this, but the name also prefixes the exported ipset sets
# ("<table>-banned4"), whose names may hold at most 31 characters.
_TABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,23}")


class Firewall(Section):
    """The nftables mirror of the bans (run by the control process)."""

    nftables: StrictBool = Field(
        default=False, description="mirror the bans into nftables sets that the kernel drops"
    )
    table: str = Field(default="shieldwall", description="name of the `inet` table holding the sets")
    nft: str = Field(default="nft", description="the nft command: a name looked up in PATH, or a full path")
    timeout: Annotated[float, Field(gt=0, le=60, strict=True)] = Field(
        default=10.0, description="seconds one nft run may take before it is killed"
    )

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not _TABLE.fullmatch(value):
            raise ValueError("write a letter, then letters, digits or '_', at most 24 in all")
        return value

    @field_validator("nft")
    @classmethod
    def _nft(cls, value: str) -> str:
        if not value or value != value.strip() or "\0" in value:
            raise ValueError('write the command\'s name or its full path, e.g. "nft" or "/usr/sbin/nft"')
        return value
