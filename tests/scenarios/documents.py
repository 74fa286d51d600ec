"""Reading a scenario's files (TOML or JSON, the same structure in both) strictly: a missing key, a value
of the wrong type and a key nobody reads are all errors that name where they are, so a typo in a
scenario written by hand ("rate_ned") fails loudly instead of silently meaning the default."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


def read_document(folder: Path, stem: str) -> tuple[dict[str, Any], str]:
    """`folder/stem.toml` or `folder/stem.json` (exactly one of them), parsed; and its name for errors."""
    found = [path for path in (folder / f"{stem}.toml", folder / f"{stem}.json") if path.is_file()]
    if len(found) != 1:
        raise ScenarioError(f"{folder}: expected exactly one of {stem}.toml and {stem}.json")
    path = found[0]
    try:
        data = (
            tomllib.loads(path.read_text("utf-8")) if path.suffix == ".toml" else json.loads(path.read_text())
        )
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: the document must be a table (a JSON object)")
    return data, path.name


class Table:
    """One table of a document. Each getter marks its key as read; `done()` refuses the keys left."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{where}: must be a table")
        self.data: dict[str, Any] = data
        self.where = where
        self._read: set[str] = set()

    def keys(self) -> Iterator[str]:
        return iter(self.data)

    def _get(self, key: str, default: Any) -> tuple[bool, Any]:
        """(present, value): `default` when absent, an error when absent and REQUIRED."""
        self._read.add(key)
        if key in self.data:
            return True, self.data[key]
        if default is REQUIRED:
            raise ScenarioError(f"{self.where}.{key}: missing")
        return False, default

    def raw(self, key: str) -> Any:
        """The value as it is (None when absent), for the caller to check."""
        return self._get(key, None)[1]

    def number(self, key: str, default: Any = None, *, minimum: float | None = None) -> Any:
        """A float (an int is taken as one), at least `minimum`; `default` when absent (None allowed)."""
        present, value = self._get(key, default)
        if not present:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{self.where}.{key}: must be a number (got {value!r})")
        if minimum is not None and value < minimum:
            raise ScenarioError(f"{self.where}.{key}: must be at least {minimum:g} (got {value!r})")
        return float(value)

    def integer(self, key: str, default: Any = None, *, minimum: int | None = None) -> Any:
        present, value = self._get(key, default)
        if not present:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{self.where}.{key}: must be an integer (got {value!r})")
        if minimum is not None and value < minimum:
            raise ScenarioError(f"{self.where}.{key}: must be at least {minimum} (got {value!r})")
        return value

    def text(self, key: str, default: Any = None, *, choices: tuple[str, ...] = ()) -> Any:
        present, value = self._get(key, default)
        if not present:
            return value
        if not isinstance(value, str):
            raise ScenarioError(f"{self.where}.{key}: must be a string (got {value!r})")
        if choices and value not in choices:
            raise ScenarioError(f"{self.where}.{key}: must be one of {', '.join(choices)} (got {value!r})")
        return value

    def flag(self, key: str, default: bool) -> bool:
        _, value = self._get(key, default)
        if not isinstance(value, bool):
            raise ScenarioError(f"{self.where}.{key}: must be true or false (got {value!r})")
        return value

    def strings(self, key: str) -> list[str]:
        _, value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ScenarioError(f"{self.where}.{key}: must be a list of strings")
        return value

    def window(self, key: str) -> tuple[float, float] | None:
        """[from, to]: two numbers, from <= to."""
        present, value = self._get(key, None)
        if not present:
            return None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(item, int | float) and not isinstance(item, bool) for item in value)
            or value[0] > value[1]
        ):
            raise ScenarioError(f"{self.where}.{key}: must be [from, to] with from <= to (got {value!r})")
        return float(value[0]), float(value[1])

    def weights(self, key: str, *, required: bool = False) -> dict[str, float]:
        """A table of name = weight (weights > 0)."""
        table = self.table(key, required=required)
        weights = {name: table.number(name, REQUIRED) for name in list(table.keys())}
        if any(weight <= 0 for weight in weights.values()):
            raise ScenarioError(f"{self.where}.{key}: weights must be > 0")
        if required and not weights:
            raise ScenarioError(f"{self.where}.{key}: needs at least one entry")
        return weights

    def strings_by_name(self, key: str) -> dict[str, str]:
        table = self.table(key)
        return {name: table.text(name, REQUIRED) for name in list(table.keys())}

    def table(self, key: str, *, required: bool = False) -> Table:
        _, value = self._get(key, REQUIRED if required else {})
        return Table(value, f"{self.where}.{key}")

    def tables(self, key: str) -> list[Table]:
        """An array of tables ([[key]] in TOML)."""
        _, value = self._get(key, [])
        if not isinstance(value, list):
            raise ScenarioError(f"{self.where}.{key}: must be an array of tables")
        return [Table(item, f"{self.where}.{key}[{index}]") for index, item in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            raise ScenarioError(f"{self.where}: unknown key(s) {', '.join(unknown)}")


class _Required:
    """The default that means "this key must be there"."""


REQUIRED: Any = _Required()
