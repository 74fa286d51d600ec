"""The two config files a drill renders, shipped in the repository's contrib/ where an admin finds them:

    contrib/drill/shieldwall.toml   the shield a drill and the demo rehearse (each setting's reason inside)
    contrib/nginx/limit.conf        nginx with the limit_req / limit_conn config a careful admin writes

Placeholders are @@NAME@@ (nginx's own syntax uses `$`, TOML's `{}` would need escaping), filled by
`render`, which refuses to leave one unfilled or to fill one the template does not have: a renamed
placeholder must fail loudly, not start a server on a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

CONTRIB: Final = Path(__file__).resolve().parents[3] / "contrib"
SHIELD_TEMPLATE: Final = CONTRIB / "drill" / "shieldwall.toml"
NGINX_TEMPLATE: Final = CONTRIB / "nginx" / "limit.conf"
_PLACEHOLDER: Final = re.compile(r"@@([A-Z][A-Z0-9_]*)@@")


def render(template: str, values: Mapping[str, str]) -> str:
    """`template` with every @@NAME@@ replaced by values[NAME]. ValueError names a placeholder
    without a value and a value without a placeholder."""
    wanted = set(_PLACEHOLDER.findall(template))
    missing, unused = sorted(wanted - values.keys()), sorted(values.keys() - wanted)
    if missing or unused:
        raise ValueError(f"template placeholders without a value: {missing}; values without one: {unused}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def read_template(path: Path) -> str:
    """A shipped template's text; a clear error when the repository's contrib/ is not beside the code."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} is missing: drills run from a shieldwall source tree (contrib/ beside src/)"
        ) from None
