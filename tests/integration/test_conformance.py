"""Request-smuggling conformance: shared/conformance/run_cases.py replays raw requests through the real
proxy into its recording backend and judges each verdict. Both corpora (the shared one and
tests/conformance/extra_cases.json) run at once against a shield each; every case is one test, and
only PASS passes (REVIEW is printed and fails: a strict proxy rejects rather than normalises)."""

from __future__ import annotations

import base64
import codecs
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import procs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "conformance"  # a sibling checkout in CI, as in development
CORPORA = {
    "shared": SHARED / "smuggling_cases.json",
    "extra": REPO / "tests" / "conformance" / "extra_cases.json",
}
RUN_TIMEOUT = 100.0
VERDICTS = {"reject", "accept", "reject_or_normalise"}


def _cases(corpus: str) -> list[dict[str, Any]]:
    return json.loads(CORPORA[corpus].read_text(encoding="utf-8"))["cases"]


def _expected_status(corpus: str, case_id: str) -> int | None:
    """The optional 'status' of an extra case: the first status the client must see."""
    return next((case.get("status") for case in _cases(corpus) if case["id"] == case_id), None)


def _params() -> list[Any]:
    params = []
    for corpus, path in CORPORA.items():
        if not path.exists():  # the corpus fixture fails loudly with the path it looked at
            params.append(pytest.param(corpus, "corpus-missing", id=f"{corpus}-corpus-missing"))
            continue
        params += [pytest.param(corpus, case["id"], id=f"{corpus}-{case['id']}") for case in _cases(corpus)]
    return params


@pytest.fixture(scope="module")
def verdicts(start_module_shield, tmp_path_factory) -> dict[str, dict[str, dict[str, Any]]]:
    """{corpus: {case id: run_cases.py's result row}}, both corpora replayed concurrently."""
    runner = SHARED / "run_cases.py"
    missing = [str(path) for path in (runner, *CORPORA.values()) if not path.exists()]
    if missing:
        pytest.fail(
            f"conformance corpus not found: {', '.join(missing)}. The shared/ directory must be checked "
            f"out next to the repository ({REPO.parent / 'shared'})."
        )
    workdir = tmp_path_factory.mktemp("conformance")
    runs = {}
    for corpus, cases_path in CORPORA.items():
        backend_port = procs.free_port()
        shield = start_module_shield(upstream=f"http://127.0.0.1:{backend_port}")
        out = workdir / f"{corpus}.json"
        argv = [
            sys.executable, str(runner),
            "--proxy", f"127.0.0.1:{shield.port}",
            "--backend-port", str(backend_port),
            "--cases", str(cases_path),
            "--json-out", str(out),
        ]  # fmt: skip
        runs[corpus] = (subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT), out)
    results = {}
    for corpus, (runner_proc, out) in runs.items():
        try:
            transcript, _ = runner_proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            runner_proc.kill()
            transcript, _ = runner_proc.communicate()
            pytest.fail(f"run_cases.py on {corpus} took over {RUN_TIMEOUT:.0f} s:\n{transcript.decode()}")
        print(f"--- run_cases.py, {corpus} corpus ---\n{transcript.decode()}")
        if runner_proc.returncode != 0 or not out.exists():
            pytest.fail(f"run_cases.py on {corpus} exited {runner_proc.returncode}:\n{transcript.decode()}")
        results[corpus] = {row["id"]: row for row in json.loads(out.read_text())}
    return results


@pytest.mark.parametrize(("corpus", "case_id"), _params())
def test_case(verdicts, corpus, case_id):
    row = verdicts[corpus].get(case_id)
    assert row is not None, f"run_cases.py reported nothing for {case_id}"
    shown = json.dumps(row, indent=1)
    if row["verdict"] == "REVIEW":
        print(f"REVIEW (counts as a failure: the request was forwarded, not rejected):\n{shown}")
    assert row["verdict"] == "PASS", f"{case_id}: expected {row['expect']}, got\n{shown}"
    status = _expected_status(corpus, case_id)
    if status is not None:
        assert row["statuses"][:1] == [status], f"{case_id}: the client must get {status}, got\n{shown}"


def test_extra_cases_are_well_formed():
    """Every extra case decodes to the bytes it claims, cites its RFC reason and is judged by a known
    verdict, so the corpus says what it tests."""
    cases = _cases("extra")
    assert len(cases) >= 20
    assert len({case["id"] for case in cases}) == len(cases), "duplicate ids"
    for case in cases:
        raw = base64.b64decode(case["raw_b64"])
        assert codecs.escape_decode(case["raw"])[0] == raw, f"{case['id']}: raw and raw_b64 disagree"
        assert case["expect"] in VERDICTS, case["id"]
        assert "RFC 9" in case["detail"], f"{case['id']}: detail must cite the RFC reason"
        assert (case["expect"] == "accept") == ("backend_requests" in case), case["id"]
        assert case.get("status", 400) in range(400, 600), f"{case['id']}: a status to expect is an error"
