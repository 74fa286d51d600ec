"""Configuration loading: good fixtures load, each error reads well, and the reference doc and the
example file cannot drift from the schema."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pydantic
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shieldwall.config import ConfigError, Settings, load_config, parse_config
from shieldwall.config.load import key_path, read_toml, with_value

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "fixtures" / "config" / "good"
DOC = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / "examples" / "shieldwall.toml"


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


# --- good fixtures -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.toml")), ids=lambda p: p.name)
def test_good_fixture_loads(path: Path) -> None:
    assert isinstance(load_config(path), Settings)


def test_good_fixtures_exist() -> None:
    assert len(list(GOOD.glob("*.toml"))) >= 4


def test_empty_file_means_every_default(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert load_config(path) == Settings()
    assert load_config(None) == Settings()


def test_newsroom_fixture_values_arrive() -> None:
    settings = load_config(GOOD / "newsroom.toml")
    assert [listener.host_port for listener in settings.listeners] == [("0.0.0.0", 80), ("0.0.0.0", 443)]
    assert settings.listeners[1].tls and not settings.listeners[0].tls
    assert settings.upstream.host_port == ("10.0.0.5", 8080)
    assert settings.limits.header_timeout == 8.0


# --- one message per kind of mistake ------------------------------------------------------------


def test_out_of_range_names_the_bound_and_the_value() -> None:
    assert problems({"limits": {"header_timeout": -1}}) == [
        "limits.header_timeout: must be greater than 0 (got -1)"
    ]
    assert problems({"upstream": {"retries": 6}}) == ["upstream.retries: must be at most 5 (got 6)"]
    assert problems({"limits": {"max_body_bytes": -1}}) == [
        "limits.max_body_bytes: must be at least 0 (got -1)"
    ]


def test_unknown_key_suggests_the_closest_key() -> None:
    assert problems({"limits": {"header_timout": 5}}) == [
        "limits.header_timout: unknown key; did you mean 'header_timeout'?"
    ]
    assert problems({"listeners": [{"adress": ":80"}]}) == [
        "listeners[0].adress: unknown key; did you mean 'address'?"
    ]


def test_unknown_key_in_the_wrong_section_says_where_it_belongs() -> None:
    assert problems({"upstream": {"workers": 2}}) == [
        "upstream.workers: unknown key here; 'workers' belongs in [server]"
    ]
    assert problems({"server": {"cert": "x.pem"}}) == [
        "server.cert: unknown key here; 'cert' belongs in [[listeners.certificates]]"
    ]


def test_unknown_key_without_a_near_match_lists_the_valid_keys() -> None:
    assert problems({"access_log": {"rotate": True}}) == [
        "access_log.rotate: unknown key; the keys of [access_log] are: path, format, max_lines_per_second"
    ]
    assert problems({"geoip": {}}) == [
        "geoip: unknown section; the sections are: "
        "server, listeners, upstream, limits, client_identity, client_data, access_log, rules, bans, "
        "cache, admission, challenge, crawlers, detector, admin, alerts, cluster, firewall"
    ]


def test_toml_types_are_strict() -> None:
    """A bool or a quoted number where a number belongs is a mistake, never silently 1 or 0."""
    assert problems({"limits": {"max_body_bytes": True, "header_timeout": "10"}}) == [
        "limits.max_body_bytes: must be a whole number (got true)",
        'limits.header_timeout: must be a number (got "10"); write it without quotes',
    ]
    assert problems({"listeners": [{"proxy_protocol": 1}]}) == [
        "listeners[0].proxy_protocol: must be true or false (got 1)"
    ]
    assert Settings.model_validate({"limits": {"header_timeout": 7}}).limits.header_timeout == 7.0


def test_bad_cidrs_are_each_reported_at_their_index() -> None:
    assert problems({"client_identity": {"trusted_proxies": ["10.0.0.0/8", "x", "10.0.0.0/40"]}}) == [
        f'client_identity.trusted_proxies[{i}]: not a CIDR (got "{v}"); '
        "write it like 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32"
        for i, v in ((1, "x"), (2, "10.0.0.0/40"))
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://o:443", "only http:// origins are supported"),
        ("http://o", "needs a host and a port"),
        ("http://o:0", "the port is not a number in 1-65535"),
        ("http://o:99999", "the port is not a number in 1-65535"),
        ("http://o:port", "the port is not a number in 1-65535"),
        ("http://user:pw@o:80", "the origin URL takes no user:password"),
        ("http://o:80/app", "the origin URL takes no path or query"),
        ("http://o:80/?a=1", "the origin URL takes no path or query"),
    ],
)
def test_bad_upstream_urls(url: str, problem: str) -> None:
    [line] = problems({"upstream": {"url": url}})
    assert line.startswith(f"upstream.url: {problem} (got {json.dumps(url)})")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://[::1]:8000/", "http://origin.internal:80"])
def test_good_upstream_urls(url: str) -> None:
    assert parse_config({"upstream": {"url": url}}).upstream.url == url


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("8080", "not a HOST:PORT address"),
        ("0.0.0.0:0", "port 0 is out of range"),
        ("www.example.org:80", "the host is not an IP address"),
    ],
)
def test_bad_listen_addresses(address: str, problem: str) -> None:
    [line] = problems({"listeners": [{"address": address}]})
    assert line.startswith(f'listeners[0].address: {problem} (got "{address}")')


def test_duplicate_listeners_name_both_blocks() -> None:
    assert problems(
        {"listeners": [{"address": ":80"}, {"address": "[::1]:80"}, {"address": "0.0.0.0:80"}]}
    ) == [
        "listeners: listeners[0] and listeners[2] both listen on 0.0.0.0:80; "
        "give each listener its own address"
    ]


def test_no_listener_is_an_error() -> None:
    assert problems({"listeners": []}) == [
        "listeners: no listener; declare at least one [[listeners]] table with an address"
    ]


@pytest.mark.parametrize(
    ("listen", "url", "loops"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080", True),
        ("127.0.0.1:8080", "http://localhost:8080", True),
        ("0.0.0.0:8080", "http://127.0.0.1:8080", True),
        ("[::]:8080", "http://[::1]:8080", True),
        ("0.0.0.0:8080", "http://127.0.0.1:8000", False),
        ("127.0.0.1:8080", "http://10.0.0.5:8080", False),
    ],
)
def test_upstream_pointing_at_a_listener_is_caught(listen: str, url: str, loops: bool) -> None:
    data = {"listeners": [{"address": listen}], "upstream": {"url": url}}
    if loops:
        assert problems(data) == [
            f"upstream: url {url} is shieldwall's own listeners[0] ({listen}); "
            "point it at the origin server, or shieldwall proxies to itself"
        ]
    else:
        parse_config(data)


def test_via_name_and_server_names_are_checked() -> None:
    cert = {"cert": "c.pem", "key": "k.pem", "server_names": ["*.example.org", "a b"]}
    assert problems({"server": {"via_name": "a\r\nX-Evil: 1"}, "listeners": [{"certificates": [cert]}]}) == [
        r'server.via_name: not an HTTP token (got "a\r\nX-Evil: 1"); '
        "use letters, digits and -._~ only, no spaces",
        'listeners[0].certificates[0].server_names[1]: not a DNS name (got "a b"); '
        "write it like www.example.org or *.example.org, IDNs in their xn-- form",
    ]


def test_wrong_shapes_name_the_toml_header_to_write() -> None:
    assert problems({"limits": 5, "listeners": {"address": ":80"}}) == [
        "listeners: must be an array of tables; start each one with [[listeners]]",
        "limits: must be a table (got 5); start it with [limits] and put its keys on the lines below",
    ]
    assert problems({"listeners": [{"certificates": [{"cert": "c.pem"}]}]}) == [
        "listeners[0].certificates[0].key: required key is missing; add it to [[listeners.certificates]]"
    ]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        {
            "server": {"wokers": 1},
            "listeners": [{"address": "x"}],
            "upstream": {"url": "https://o:1"},
            "limits": {"header_timeout": 0},
            "client_identity": {"trusted_proxies": ["x"]},
            "access_log": {"format": "xml"},
        }
    )
    assert [line.split(":")[0] for line in found] == [
        "server.wokers",
        "listeners[0].address",
        "upstream.url",
        "limits.header_timeout",
        "client_identity.trusted_proxies[0]",
        "access_log.format",
    ]


def test_with_value_puts_the_value_before_the_hint() -> None:
    assert with_value("bad; do this", "x") == 'bad (got "x"); do this'
    assert with_value("bad", 0) == "bad (got 0)"
    assert with_value("bad", False) == "bad (got false)"
    assert with_value("'x' is bad", "x") == "'x' is bad"
    assert with_value("bad", "y" * 100) == "bad"
    assert with_value("bad", [1]) == "bad"


def test_key_path_reads_like_the_toml() -> None:
    assert key_path(("listeners", 0, "certificates", 1, "cert")) == "listeners[0].certificates[1].cert"
    assert key_path(()) == "(top level)"


# --- reading files and applying overrides --------------------------------------------------------


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[limits]\nheader_timeout = = 3\n")
    with pytest.raises(ConfigError) as caught:
        read_toml(path)
    assert caught.value.problems == ["line 2, column 18: not valid TOML: invalid value"]


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p, "file not found"),
        (lambda p: p.mkdir() or p, "cannot read the file: Is a directory"),
        (lambda p: p.write_bytes(b"a = '\xff'") and p, "not UTF-8 text (byte 5); TOML files must be UTF-8"),
    ],
    ids=["missing", "directory", "not-utf8"],
)
def test_unreadable_files(tmp_path: Path, make: Any, problem: str) -> None:
    path = make(tmp_path / "x.toml")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.source, caught.value.problems) == (str(path), [problem])


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('[server]\nworkers = 2\n[upstream]\nurl = "http://127.0.0.1:9000"\n')
    settings = load_config(path, {"server.workers": 4, "listeners": [{"address": ":81"}, {"address": ":82"}]})
    assert settings.server.workers == 4
    assert settings.upstream.url == "http://127.0.0.1:9000"
    assert [listener.address for listener in settings.listeners] == [":81", ":82"]


def test_override_under_a_non_table_leaves_the_mistake_to_report(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('upstream = "http://127.0.0.1:9000"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"upstream.url": "http://127.0.0.1:9001"})
    assert caught.value.problems == [
        'upstream: must be a table (got "http://127.0.0.1:9000"); '
        "start it with [upstream] and put its keys on the lines below"
    ]


def test_override_errors_name_the_command_line_as_source() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"listeners": [{"address": ":80"}, {"address": ":80"}]})
    assert caught.value.source == "<command line>"


# --- the reference doc and the example cannot drift from the schema ------------------------------


def unwrap(annotation: Any) -> Any:
    """`Annotated[X, ...]` and an optional `X | None` are written in TOML as X is."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation):
            [annotation] = [arg for arg in get_args(annotation) if arg is not NoneType]
        else:
            return annotation


def leaf_fields(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every key an operator can write, as the doc names it: `limits.header_timeout`,
    `listeners[].certificates[].cert`. Tables (sections) are not keys; their keys are."""
    for name, field in model.model_fields.items():
        annotation = unwrap(field.annotation)
        args = get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from leaf_fields(annotation, f"{prefix}{name}.")
        elif get_origin(annotation) is tuple and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            yield from leaf_fields(args[0], f"{prefix}{name}[].")
        else:
            yield prefix + name, field


def doc_type(field: FieldInfo) -> str:
    annotation = unwrap(field.annotation)
    if get_origin(annotation) is Literal:
        return " or ".join(json.dumps(arg) for arg in get_args(annotation))
    if get_origin(annotation) is tuple:
        item = get_args(annotation)[0]
        if float in (item, *get_args(item)):
            return "array of numbers"
        return "array of integers" if int in (item, *get_args(item)) else "array of strings"
    if get_origin(annotation) is dict:
        return "table of strings"
    names: dict[Any, str] = {
        int: "integer",
        float: "number",
        bool: "boolean",
        str: "string",
        Path: "string (path)",
    }
    name = names[annotation]
    bounds = {
        type(m).__name__.lower(): getattr(m, type(m).__name__.lower())
        for m in field.metadata
        if isinstance(m, annotated_types.BaseMetadata) and not isinstance(m, pydantic.Strict)
    }
    assert set(bounds) <= {"gt", "ge", "le"}, f"teach doc_type to show {bounds}"
    if "ge" in bounds and "le" in bounds:
        return f"{name} {bounds['ge']:g} to {bounds['le']:g}"
    if "gt" in bounds and "le" in bounds:
        return f"{name} > {bounds['gt']:g}, at most {bounds['le']:g}"
    assert "le" not in bounds, f"teach doc_type to show an upper bound alone ({field})"
    if "gt" in bounds:
        return f"{name} > {bounds['gt']:g}"
    return f"{name} >= {bounds['ge']:g}" if "ge" in bounds else name


def doc_default(field: FieldInfo) -> str:
    def toml(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, tuple):
            return "[" + ", ".join(toml(item) for item in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + "}"
        return str(value)

    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    return "not set" if default is None else f"`{toml(default)}`"


def doc_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"\| `([a-z][a-z0-9_.\[\]]*)` \|(.*)\|", line):
            rows[match[1]] = [cell.strip() for cell in match[2].split(" | ")]
    return rows


def test_doc_lists_every_key_with_its_type_and_default() -> None:
    rows = doc_rows()
    for key, field in leaf_fields():
        expected = (
            f"| `{key}` | {doc_type(field)} | {doc_default(field)} | WHAT IT DOES | WHEN TO CHANGE IT |"
        )
        assert key in rows, f"docs/configuration.md has no row for {key}; add:\n{expected}"
        assert rows[key][:2] == [doc_type(field), doc_default(field)], (
            f"row for {key} should start:\n{expected}"
        )
        assert len(rows[key]) == 4 and all(rows[key][2:]), f"row for {key} needs both explanations"


def test_doc_lists_no_key_the_schema_lacks() -> None:
    assert set(doc_rows()) == {key for key, _ in leaf_fields()}


def test_doc_has_a_heading_for_every_section() -> None:
    headings = set(re.findall(r"^#+ `(\[\[?[a-z_.]+\]\]?)`$", DOC.read_text(encoding="utf-8"), re.MULTILINE))
    sections = {
        f"[[{key.split('[]')[-2].lstrip('.')}]]" if "[]" in key else f"[{key.split('.')[0]}]"
        for key, _ in leaf_fields()
    }
    sections = {s.replace("[[certificates]]", "[[listeners.certificates]]") for s in sections}
    assert sections <= headings, sections - headings


def test_doc_toml_snippets_are_valid() -> None:
    snippets = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert snippets
    for snippet in snippets:
        parse_config(tomllib.loads(snippet))


def test_example_is_valid_and_every_value_in_it_is_the_default() -> None:
    raw = read_toml(EXAMPLE)
    assert raw["upstream"]["url"] == Settings().upstream.url  # set explicitly, so `run` needs no --upstream
    assert load_config(EXAMPLE) == Settings()


def uncommented_example() -> str:
    """The example with its switched-off settings ('#key = ...', '#[[table]]') switched on."""
    return re.sub(r"^#(?=[^ #\n])", "", EXAMPLE.read_text(encoding="utf-8"), flags=re.MULTILINE)


def toml_keys(node: Any, prefix: str = "") -> set[str]:
    here = prefix.removesuffix(".").replace("[]..", "[].").replace(".[]", "[]")
    if here in {key for key, _ in leaf_fields()}:
        return {here}  # a key whose value is a table (rules[].match.headers) is one key
    if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        return set().union(*(toml_keys(item, prefix + "[].") for item in node))
    if isinstance(node, dict):
        return set().union(*(toml_keys(value, f"{prefix}{key}.") for key, value in node.items()))
    return {here}


def test_example_shows_every_key() -> None:
    text = uncommented_example()
    parse_config(tomllib.loads(text))
    assert toml_keys(tomllib.loads(text)) == {key for key, _ in leaf_fields()}
