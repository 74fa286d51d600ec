"""Write test configurations as TOML (the stdlib reads TOML but cannot write it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it, nested tables merged key by key."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _lines(table: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    scalars = {key: value for key, value in table.items() if not isinstance(value, dict)}
    lines = [f"[{'.'.join(path)}]"] if path and scalars else []
    lines += [f"{key} = {_value(value)}" for key, value in scalars.items()]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += _lines(value, (*path, key))
    return lines


def write_toml(path: Path, data: dict[str, Any]) -> None:
    """Nested dicts become tables; scalars and lists of scalars only (all our schema needs)."""
    path.write_text("\n".join(_lines(data, ())) + "\n", encoding="utf-8")
