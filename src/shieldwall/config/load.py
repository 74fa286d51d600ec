"""Reading a TOML file into Settings, reporting every problem at once with its key path.

Each problem is one line an operator can act on: the key path as they would find it in the file
(`listeners[0].address`), what is wrong, the offending value when it is short, and what to do, e.g.
`limits.header_timeout: must be greater than 0 (got -1)`. Pydantic's own wording ("Input should be a
valid integer") is translated here, in one table, so every field type reads the same way."""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shieldwall.config.schema import Settings

_MAX_SHOWN_VALUE = 60  # characters; longer values are left out rather than flooding the line
_TOML_POSITION = re.compile(
    r"^(?P<message>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)$"
)


class ConfigError(Exception):
    """All problems found in one configuration, each as 'key.path: message'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


def with_value(message: str, value: object) -> str:
    """Insert '(got VALUE)' after the problem and before its hint ('problem; hint'), written as it
    would appear in TOML, when the value is a short scalar (and not a string already quoted in it)."""
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, int | float):
        shown = str(value)
    elif isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
    else:
        return message
    quoted = isinstance(value, str) and (shown in message or repr(value) in message)
    if len(shown) > _MAX_SHOWN_VALUE or quoted:
        return message
    problem, sep, hint = message.partition("; ")
    return f"{problem} (got {shown}){sep}{hint}"


def key_path(loc: Sequence[int | str]) -> str:
    """('listeners', 0, 'address') → 'listeners[0].address'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path or "(top level)"


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _item_of(annotation: Any) -> Any:
    """The element type of an array or table of values, or None for anything else."""
    annotation = _unwrap(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(origin, type) and issubclass(origin, Mapping) and len(args) == 2:
        return args[1]
    if isinstance(origin, type) and issubclass(origin, Sequence) and args:
        return args[0]
    return None


def _annotation_at(loc: Sequence[int | str]) -> Any:
    """The schema type found at `loc`, or None where the location leaves the schema."""
    annotation: Any = Settings
    for part in loc:
        model = _model_of(annotation)
        if model is not None:
            field = model.model_fields.get(part) if isinstance(part, str) else None
            annotation = field.annotation if field else None
        else:
            annotation = _item_of(annotation)
        if annotation is None:
            return None
    return annotation


def _table_header(loc: Sequence[int | str]) -> str:
    """The TOML header an operator writes for the table at `loc`: [limits], [[listeners]]..."""
    dotted = ".".join(part for part in loc if isinstance(part, str))
    is_array_item = (bool(loc) and isinstance(loc[-1], int)) or (
        _model_of(_item_of(_annotation_at(loc))) is not None
    )
    return f"[[{dotted}]]" if is_array_item else f"[{dotted}]"


def _all_sections() -> dict[str, list[str]]:
    """Every table's header mapped to its keys, to say where a misplaced key belongs."""
    found: dict[str, list[str]] = {}

    def visit(model: type[BaseModel], loc: tuple[str | int, ...]) -> None:
        found[_table_header(loc) if loc else "the top level"] = list(model.model_fields)
        for name, field in model.model_fields.items():
            inner = _model_of(field.annotation)
            item = _model_of(_item_of(field.annotation))
            if inner is not None:
                visit(inner, (*loc, name))
            elif item is not None:
                visit(item, (*loc, name, 0))

    visit(Settings, ())
    return found


def _unknown_key(loc: Sequence[int | str], value: object) -> str:
    name = str(loc[-1])
    kind = "section" if isinstance(value, dict) else "key"
    model = _model_of(_annotation_at(loc[:-1]))
    valid = list(model.model_fields) if model else []
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown {kind}; did you mean {close[0]!r}?"
    here = _table_header(loc[:-1]) if len(loc) > 1 else "the top level"
    homes = [header for header, keys in _all_sections().items() if name in keys and header != here]
    if homes:
        return f"unknown {kind} here; {name!r} belongs in {' or '.join(homes)}"
    if len(loc) == 1:
        return f"unknown {kind}; the sections are: {', '.join(valid)}"
    return f"unknown {kind}; the keys of {here} are: {', '.join(valid)}"


def _number(limit: object) -> str:
    return str(int(limit)) if isinstance(limit, float) and limit.is_integer() else str(limit)


def _message(error: ErrorDetails) -> str:
    """What is wrong, in an operator's words, for each error type the schema's field types produce."""
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx", {})
    unquote = "; write it without quotes" if isinstance(error["input"], str) else ""
    match kind:
        case "extra_forbidden":
            return _unknown_key(loc, error["input"])
        case "missing":
            return f"required key is missing; add it to {_table_header(loc[:-1])}"
        case "greater_than":
            return f"must be greater than {_number(ctx['gt'])}"
        case "greater_than_equal":
            return f"must be at least {_number(ctx['ge'])}"
        case "less_than":
            return f"must be less than {_number(ctx['lt'])}"
        case "less_than_equal":
            return f"must be at most {_number(ctx['le'])}"
        case "int_type" | "int_parsing" | "int_from_float":
            return f"must be a whole number{unquote}"
        case "float_type" | "float_parsing":
            return f"must be a number{unquote}"
        case "bool_type" | "bool_parsing":
            return f"must be true or false{unquote}"
        case "string_type" | "path_type":
            return 'must be a string; put it in double quotes, like "value"'
        case "literal_error":
            expected = str(ctx["expected"]).replace("'", '"')  # as TOML quotes strings
            return f"must be {expected}"
        case "tuple_type" | "list_type":
            if _model_of(_item_of(_annotation_at(loc))) is not None:
                return f"must be an array of tables; start each one with {_table_header(loc)}"
            return 'must be an array; write it in brackets, like ["a", "b"]'
        case "model_type" | "model_attributes_type" | "dict_type":
            return f"must be a table; start it with {_table_header(loc)} and put its keys on the lines below"
        case "value_error":
            return str(ctx.get("error", error["msg"]))
        case _:
            return error["msg"]


def _format(error: ErrorDetails) -> str:
    message = _message(error)
    if error["type"] not in ("extra_forbidden", "missing"):
        message = with_value(message, error["input"])
    return f"{key_path(error['loc'])}: {message}"


def parse_config(data: dict[str, Any], source: str = "<config>") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_format(e) for e in exc.errors()]) from None


def read_toml(path: Path) -> dict[str, Any]:
    """The raw tables of a TOML file, or a ConfigError saying why it cannot be read (with the
    line and column of a syntax error)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"not UTF-8 text (byte {exc.start}); TOML files must be UTF-8"]) from None
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [_toml_problem(str(exc))]) from None


def _toml_problem(text: str) -> str:
    """'Invalid value (at line 3, column 18)' → 'line 3, column 18: not valid TOML: invalid value'."""
    match = _TOML_POSITION.match(text)
    if match is None:
        return f"not valid TOML: {text}"
    message = match["message"][:1].lower() + match["message"][1:]
    where = f"line {match['line']}, column {match['column']}" if match["line"] else "end of file"
    return f"{where}: not valid TOML: {message}"


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Load `path` (or defaults when None), then apply CLI overrides (dotted keys)."""
    data = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "<command line>" if overrides else "<defaults>"
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                break  # the file has a non-table here; leave it for the schema to report
            node = child
        else:
            node[leaf] = value
    return parse_config(data, source)
