"""The `shieldwall` command line, driven through click's CliRunner. The supervisor and the demo are
replaced by recording fakes in sys.modules, so nothing here opens a socket."""

from __future__ import annotations

import errno
import sys
import types
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner, Result

from shieldwall import __version__
from shieldwall.challenge.keys import load, load_or_create
from shieldwall.cli.main import main
from shieldwall.config import Settings
from shieldwall.dataplane.challenges import secret_path
from shieldwall.dataplane.listen import ListenError
from shieldwall.state.ban_store import StateDirError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "config"
BAD = sorted((FIXTURES / "bad").glob("*.toml"))
EXAMPLE = ROOT / "examples" / "shieldwall.toml"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


class FakeSupervisor:
    """Stands in for shieldwall.dataplane.supervisor: records what `run` hands it."""

    def __init__(self, exit_code: int) -> None:
        self.exit_code = exit_code
        self.calls: list[tuple[Settings, Path | None, dict[str, Any]]] = []

    def run(self, settings: Settings, *, config_path: Path | None, overrides: dict[str, Any]) -> int:
        self.calls.append((settings, config_path, overrides))
        return self.exit_code


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> FakeSupervisor:
    fake = FakeSupervisor(exit_code=0)
    module = types.ModuleType("shieldwall.dataplane.supervisor")
    module.__dict__["run"] = fake.run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return fake


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shieldwall.toml"
    path.write_text(text)
    return path


# --- check-config --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_check_config_golden_errors(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr equals the .expected file beside the fixture, byte for byte."""
    monkeypatch.chdir(path.parent)
    result = invoke("check-config", path.name)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == path.with_suffix(".expected").read_text(encoding="utf-8")


def test_every_bad_fixture_has_its_expected_text_and_no_expected_is_orphaned() -> None:
    assert len(BAD) >= 15
    assert {p.stem for p in (FIXTURES / "bad").glob("*.expected")} == {p.stem for p in BAD}


def tls_config(tmp_path: Path, *, matching_key: bool = True) -> Path:
    """The newsroom fixture with its certificate paths pointed at a fresh test certificate, and at
    its own key or (matching_key=False) the key of another certificate."""
    ca = trustme.CA()
    cert = ca.issue_cert("news.example.org")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "news.pem"))
    (cert if matching_key else ca.issue_cert("other.example.org")).private_key_pem.write_to_path(
        str(tmp_path / "news.key")
    )
    text = (FIXTURES / "good" / "newsroom.toml").read_text()
    text = text.replace("/etc/shieldwall/tls/news.example.org.pem", str(tmp_path / "news.pem"))
    return write(
        tmp_path, text.replace("/etc/shieldwall/tls/news.example.org.key", str(tmp_path / "news.key"))
    )


def test_check_config_ok_prints_a_summary(tmp_path: Path) -> None:
    path = tls_config(tmp_path)
    result = invoke("check-config", str(path))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        f"{path}: OK\n"
        "  listeners: 0.0.0.0:80, 0.0.0.0:443 (TLS)\n"
        "  upstream:  http://10.0.0.5:8080\n"
        "  workers:   2\n"
    )


def test_check_config_reads_the_certificates(tmp_path: Path) -> None:
    path = tls_config(tmp_path, matching_key=False)
    result = invoke("check-config", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}: 1 problem\n  listeners[1].certificates[0].key: ")
    assert "does not match the certificate" in result.stderr


def test_run_checks_certificates_before_starting(supervisor: FakeSupervisor, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[listeners]]\naddress = ":443"\n[[listeners.certificates]]\ncert = "no.pem"\nkey = "no.key"\n',
    )
    result = invoke("run", "--config", str(path), "--upstream", "http://127.0.0.1:9000")
    assert result.exit_code == 2
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == [
        str(path),
        "  listeners[0].certificates[0].cert",
        "  listeners[0].certificates[0].key",
    ]
    assert supervisor.calls == []


def test_check_config_summary_flags_a_default_upstream_and_proxy_protocol(tmp_path: Path) -> None:
    path = write(tmp_path, '[[listeners]]\naddress = "[::]:8443"\nproxy_protocol = true\n')
    result = invoke("check-config", str(path))
    assert result.exit_code == 0
    assert result.stdout == (
        f"{path}: OK\n"
        "  listeners: [::]:8443 (PROXY protocol)\n"
        "  upstream:  http://127.0.0.1:8000 (default; `shieldwall run` needs --upstream)\n"
        "  workers:   0 (one per CPU core)\n"
    )


def test_check_config_passes_the_example() -> None:
    result = invoke("check-config", str(EXAMPLE))
    assert result.exit_code == 0, result.stderr
    assert "upstream:  http://127.0.0.1:8000\n" in result.stdout  # set explicitly, not the default


@pytest.mark.parametrize(
    ("name", "problem"),
    [("missing.toml", "file not found"), ("folder", "cannot read the file: Is a directory")],
)
def test_check_config_unreadable_file(tmp_path: Path, name: str, problem: str) -> None:
    (tmp_path / "folder").mkdir()
    result = invoke("check-config", str(tmp_path / name))
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path / name}: 1 problem\n  {problem}\n"


def test_check_config_needs_a_file() -> None:
    result = invoke("check-config")
    assert result.exit_code == 2
    assert "Missing argument 'FILE'" in result.stderr


# --- run -----------------------------------------------------------------------------------------


def test_run_builds_overrides_and_hands_over_to_the_supervisor(supervisor: FakeSupervisor) -> None:
    result = invoke(
        "run",
        "--upstream",
        "http://127.0.0.1:9000",
        "--listen",
        ":80",
        "--listen",
        "[::]:80",
        "--workers",
        "3",
    )
    assert result.exit_code == 0, result.stderr
    [(settings, config_path, overrides)] = supervisor.calls
    assert config_path is None
    assert overrides == {
        "upstream.url": "http://127.0.0.1:9000",
        "listeners": [{"address": ":80"}, {"address": "[::]:80"}],
        "server.workers": 3,
    }
    assert settings.upstream.host_port == ("127.0.0.1", 9000)
    assert [listener.host_port for listener in settings.listeners] == [("0.0.0.0", 80), ("::", 80)]
    assert settings.server.workers == 3


def test_run_exits_with_the_supervisors_code(supervisor: FakeSupervisor) -> None:
    supervisor.exit_code = 3
    assert invoke("run", "--upstream", "http://127.0.0.1:9000").exit_code == 3


def test_run_reports_a_port_it_cannot_bind(
    supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(settings: Settings, **_: Any) -> int:
        raise ListenError("0.0.0.0:80", PermissionError(errno.EACCES, "Permission denied"))

    monkeypatch.setattr(sys.modules["shieldwall.dataplane.supervisor"], "run", refuse)
    result = invoke("run", "--upstream", "http://127.0.0.1:9000", "--listen", "0.0.0.0:80")
    assert result.exit_code == 1
    assert result.stderr == (
        "shieldwall: cannot listen on 0.0.0.0:80: Permission denied "
        "(ports below 1024 need root or CAP_NET_BIND_SERVICE)\n"
    )


def test_run_reports_an_unusable_state_dir_in_one_line(
    supervisor: FakeSupervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(settings: Settings, **_: Any) -> int:
        raise StateDirError("server.state_dir: cannot create /x/y (Not a directory); set it elsewhere")

    monkeypatch.setattr(sys.modules["shieldwall.dataplane.supervisor"], "run", refuse)
    result = invoke("run", "--upstream", "http://127.0.0.1:9000")
    assert result.exit_code == 2
    assert result.stderr == (
        "shieldwall: server.state_dir: cannot create /x/y (Not a directory); set it elsewhere\n"
    )


def test_options_override_the_file_and_listen_replaces_its_listeners(
    supervisor: FakeSupervisor, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        '[server]\nworkers = 2\n[[listeners]]\naddress = "0.0.0.0:443"\nproxy_protocol = true\n'
        '[upstream]\nurl = "http://127.0.0.1:9000"\nread_timeout = 5.0\n',
    )
    result = invoke("run", "--config", str(path), "--workers", "4", "--listen", "127.0.0.1:8081")
    assert result.exit_code == 0, result.stderr
    [(settings, config_path, overrides)] = supervisor.calls
    assert config_path == path
    assert overrides == {"listeners": [{"address": "127.0.0.1:8081"}], "server.workers": 4}
    assert settings.server.workers == 4
    assert [(lst.address, lst.proxy_protocol) for lst in settings.listeners] == [("127.0.0.1:8081", False)]
    assert (settings.upstream.url, settings.upstream.read_timeout) == ("http://127.0.0.1:9000", 5.0)


def test_run_without_upstream_uses_a_url_the_file_sets(supervisor: FakeSupervisor, tmp_path: Path) -> None:
    path = write(tmp_path, '[upstream]\nurl = "http://127.0.0.1:8000"\n')  # the default value, but explicit
    assert invoke("run", "--config", str(path)).exit_code == 0
    assert len(supervisor.calls) == 1


@pytest.mark.parametrize("text", [None, "[upstream]\nread_timeout = 5.0\n", "[server]\nworkers = 1\n"])
def test_run_requires_upstream_unless_the_file_sets_it(
    supervisor: FakeSupervisor, tmp_path: Path, text: str | None
) -> None:
    args = ["run"] if text is None else ["run", "--config", str(write(tmp_path, text))]
    result = invoke(*args)
    assert result.exit_code == 2
    assert "Missing option '--upstream'" in result.stderr
    assert supervisor.calls == []


def test_run_reports_every_config_problem_and_does_not_start(
    supervisor: FakeSupervisor, tmp_path: Path
) -> None:
    path = write(tmp_path, "[limits]\nheader_timeout = -1\nheader_timout = 3\n")
    result = invoke("run", "--config", str(path), "--upstream", "http://127.0.0.1:9000")
    assert result.exit_code == 2
    assert result.stderr == (
        f"{path}: 2 problems\n"
        "  limits.header_timeout: must be greater than 0 (got -1)\n"
        "  limits.header_timout: unknown key; did you mean 'header_timeout'?\n"
    )
    assert supervisor.calls == []


def test_run_reports_conflicting_options_as_command_line_problems(supervisor: FakeSupervisor) -> None:
    result = invoke("run", "--upstream", "http://127.0.0.1:8080", "--listen", "0.0.0.0:8080")
    assert result.exit_code == 2
    assert result.stderr.startswith("<command line>: 1 problem\n  upstream: url http://127.0.0.1:8080 is")
    assert supervisor.calls == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--upstream", "https://o:443"],
            """Invalid value for '--upstream': only http:// origins are supported (got "https://o:443")""",
        ),
        (
            ["--upstream", "http://127.0.0.1:9000", "--listen", "8080"],
            """Invalid value for '--listen': not a HOST:PORT address (got "8080")""",
        ),
        (
            ["--upstream", "http://127.0.0.1:9000", "--workers", "-1"],
            "Invalid value for '--workers': must be at least 0 (got -1); 0 means one per CPU core",
        ),
        (
            ["--upstream", "http://127.0.0.1:9000", "--workers", "many"],
            "Invalid value for '--workers': 'many' is not a valid integer",
        ),
    ],
)
def test_run_rejects_bad_options_before_loading(
    supervisor: FakeSupervisor, args: list[str], message: str
) -> None:
    result = invoke("run", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert supervisor.calls == []


# --- demo, version, help, entry point ------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1])
def test_demo_runs_the_demo_and_exits_with_its_code(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    calls: list[dict[str, Any]] = []
    module = types.ModuleType("shieldwall.drill.demo")
    module.__dict__["main"] = lambda **options: calls.append(options) or code
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert invoke("demo", "--quick").exit_code == code
    assert calls == [{"quick": True, "keep_running": False, "workdir": None}]


def test_version() -> None:
    for flag in ("--version", "-V"):
        result = invoke(flag)
        assert (result.exit_code, result.stdout) == (0, f"shieldwall {__version__}\n")


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "check-config", "demo"):
        assert f"\n  {command} " in result.stdout


def test_run_help_gives_each_option_its_purpose_and_default() -> None:
    text = " ".join(invoke("run", "--help").stdout.split())  # undo click's wrapping
    assert "--upstream URL Origin to protect, http://HOST:PORT." in text
    assert "required unless --config sets it" in text
    assert (
        "--listen HOST:PORT Accept clients here; repeat for more. "
        "Replaces [[listeners]]. Default: 127.0.0.1:8080." in text
    )
    assert "--config FILE TOML configuration file. Default: none, every setting at its default." in text
    assert (
        "--workers N Worker processes, 0 = one per CPU core. Overrides [server].workers. Default: 0." in text
    )


def test_console_script_points_at_main() -> None:
    [script] = [ep for ep in entry_points(group="console_scripts") if ep.name == "shieldwall"]
    assert script.load() is main


def test_check_config_reads_the_crawler_address_lists(tmp_path: Path) -> None:
    good = tmp_path / "googlebot.json"
    good.write_text('{"prefixes": [{"ipv4Prefix": "66.249.64.0/27"}]}')
    bad = tmp_path / "bingbot.txt"
    bad.write_text("157.55.39.0/24\nnot-a-network\n")
    path = write(
        tmp_path,
        f'[upstream]\nurl = "http://127.0.0.1:8000"\n[crawlers.ranges]\ngoogle = "{good}"\nbing = "{bad}"\n',
    )
    result = invoke("check-config", str(path))
    assert result.exit_code == 2
    assert "crawlers.ranges.bing:" in result.stderr and f"{bad}:2" in result.stderr
    assert "google" not in result.stderr


def test_check_config_reads_the_asn_and_country_data(tmp_path: Path) -> None:
    good = ROOT / "tests" / "fixtures" / "ipdata" / "ip2asn-sample.tsv"
    bad = tmp_path / "ip2asn.tsv"
    bad.write_text("1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n1.0.4.0\t1.0.7.255\t38803\tAUS\tGTELECOM\n")
    text = '[upstream]\nurl = "http://127.0.0.1:8000"\n[client_data]\nipdata = ["{}", "{}"]\n'
    path = write(tmp_path, text.format(good, bad))
    result = invoke("check-config", str(path))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"{path}: 1 problem\n"
        f"  client_data.ipdata[1]: {bad}:2: not a two-letter country code: 'AUS'; give iptoasn's "
        "ip2asn-combined.tsv (or .tsv.gz) or a MaxMind .mmdb file\n"
    )
    path = write(tmp_path, text.format(good, tmp_path / "missing.tsv"))
    missing = f"client_data.ipdata[1]: {tmp_path / 'missing.tsv'}: cannot read"
    assert missing in invoke("check-config", str(path)).stderr
    path = write(tmp_path, text.format(good, good))
    assert invoke("check-config", str(path)).exit_code == 0


def test_run_reads_the_asn_and_country_data_first(supervisor: FakeSupervisor, tmp_path: Path) -> None:
    path = write(tmp_path, f'[client_data]\nipdata = ["{tmp_path / "missing.tsv"}"]\n')
    result = invoke("run", "--config", str(path), "--upstream", "http://127.0.0.1:9000")
    assert result.exit_code == 2 and "client_data.ipdata[0]: " in result.stderr
    assert supervisor.calls == []


def test_challenge_rotate_secret_keeps_the_previous_master(tmp_path: Path) -> None:
    config = write(tmp_path, f'[server]\nstate_dir = "{tmp_path / "state"}"\n')
    missing = invoke("challenge", "rotate-secret", "--config", str(config))
    assert missing.exit_code == 2 and "first starts" in missing.stderr
    path = secret_path(tmp_path / "state")
    path.parent.mkdir(parents=True, exist_ok=True)
    before = load_or_create(path)
    result = invoke("challenge", "rotate-secret", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    after = load(path)
    assert after.generation == before.generation + 1 and after.previous == before.current
    assert "generation 2" in result.stdout and "kill -HUP" in result.stdout
