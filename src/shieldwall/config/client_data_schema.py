"""`[client_data]`: data about client addresses that the operator supplies (the ASN and country of an
address, for rules' `asns` and `countries` conditions), the checks on those conditions' values, and
opening the files once per process.

Why once per process, remembered here: `shieldwall run` reads every file the configuration names
before it starts the supervisor (cli/main.py, so that a broken file stops it with the other
problems), and the supervisor is that same process. Workers forked from it then find the table
already open here and share most of its memory copy-on-write instead of each reading its own copy
(the full iptoasn table is ~22 MB and 1.3 s of reading, net/ipdata.py). A file changed since is read
again, so a reload after the operator replaced it sees the new data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

from pydantic import AfterValidator, Field

from shieldwall.config.validators import PositiveInt, Section
from shieldwall.net.ipdata import IpLookup, open_ipdata

if TYPE_CHECKING:
    from shieldwall.config.policy_schema import Rule

# ISO 3166-1 alpha-2 (the 249 assigned codes), and the codes data files also write: EU and AP for
# blocks a regional registry assigned to a whole region, XK for Kosovo.
_COUNTRIES: Final = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
    BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH
    ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT
    HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS
    LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI
    NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG
    SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
    UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    EU AP XK
    """.split()  # noqa: SIM905 (252 codes read better as a table than as a list of one per line)
)


def _country(value: str) -> str:
    if value in _COUNTRIES:
        return value
    if value.upper() in _COUNTRIES:
        raise ValueError(f'country codes are upper-case; write "{value.upper()}"')
    raise ValueError('not an ISO 3166-1 alpha-2 country code; write two letters, e.g. "DE" or "US"')


Country = Annotated[str, AfterValidator(_country)]
Asn = Annotated[int, Field(ge=1, le=(1 << 32) - 1, strict=True)]


class ClientData(Section):
    """Files that tell more about a client's address than the address itself."""

    ipdata: tuple[Path, ...] = Field(
        default=(),
        description="ASN and country data: iptoasn's ip2asn-combined.tsv (or .tsv.gz) or MaxMind .mmdb "
        "files; several are asked in turn",
    )
    lookup_cache: PositiveInt = Field(
        default=4096, description="addresses whose ASN and country each worker remembers, per file"
    )


_opened: tuple[tuple[object, ...], IpLookup] | None = None  # (what was opened, the lookup): the last one


def open_client_data(section: ClientData) -> IpLookup | None:
    """The lookup over the section's files, or None when it names none. The same object as the
    previous call's when the files (path, size, modification time) and the cache size are the same.
    Raises DataFileError for the first file that cannot be used."""
    global _opened  # noqa: PLW0603 (one process-wide table, shared by fork: see the module docstring)
    if not section.ipdata:
        return None
    key = (section.lookup_cache, *(_identity(path) for path in section.ipdata))
    if _opened is not None and _opened[0] == key:
        return _opened[1]
    lookup = open_ipdata(section.ipdata, cache_size=section.lookup_cache)
    _opened = (key, lookup)
    return lookup


def _identity(path: Path) -> tuple[object, ...]:
    """What tells a file from its replacement (a new download, renamed into place). A file that cannot
    be found has only its name: open_ipdata will say why it cannot be used."""
    try:
        stat = os.stat(path)
    except OSError:
        return (str(path), None)
    return (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def rules_have_their_data(rules: Sequence[Rule], section: ClientData) -> None:
    """A rule matching on ASNs or countries needs a file to learn them from; without one it would
    silently match nothing."""
    for index, rule in enumerate(rules):
        match = rule.match
        conditions = [
            name for name, values in (("asns", match.asns), ("countries", match.countries)) if values
        ]
        if conditions and not section.ipdata:
            raise ValueError(
                f"rules[{index}] ({rule.name!r}) matches on {' and '.join(conditions)}, which needs a "
                "file of ASN and country data; name one with ipdata = [...] in [client_data] "
                "(docs/configuration.md#client_data), or remove the condition"
            )
