"""The page's JavaScript, run in Node (v20: it has WebCrypto): its pure-JS SHA-256 agrees with hashlib,
its search finds exactly the nonce solver.solve finds, and the whole page script, with a stand-in DOM
and Worker, lands on a verify URL the server accepts. Node is required: without it these tests fail."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shieldwall.challenge.difficulty import DifficultyPolicy
from shieldwall.challenge.endpoint import VERIFY_PATH
from shieldwall.challenge.keys import Keyring, MasterSecrets
from shieldwall.challenge.outcomes import Method, Passed
from shieldwall.challenge.service import ChallengeService, ChallengeSettings
from shieldwall.challenge.solver import solve

NOW = 1_700_000_000.0
PREFIX = "203.0.113.0/24"
UA = b"Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile"
SERVICE = ChallengeService(
    Keyring(MasterSecrets(1, bytes(range(32)))),
    ChallengeSettings(difficulty=DifficultyPolicy(base=8)),
)

# Runs one job from the JSON file named on the command line and prints its result as JSON.
HARNESS = r"""
import fs from "node:fs";
const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
function load(src, crypto) {  // the worker's functions, with `self` as a worker would see it
  return new Function("self", src + "\nreturn {sha256: sha256, solve: solve};")({crypto: crypto});
}
async function run() {
  if (job.mode === "sha256") {
    const {sha256} = load(job.worker, undefined);
    const digest = (hex) => sha256(Uint8Array.from(Buffer.from(hex, "hex")));
    return job.inputs.map((hex) => Buffer.from(digest(hex)).toString("hex"));
  }
  if (job.mode === "solve") {
    const {solve} = load(job.worker, job.subtle ? globalThis.crypto : undefined);
    return await solve(job.c, job.d, null);
  }
  // The page script, with stand-ins for the DOM, Blob, URL, location and Worker.
  const elements = {
    "sw": {getAttribute: (name) => job.attributes[name]},
    "sw-status": {textContent: ""},
    "sw-worker": {textContent: job.worker},
  };
  const statuses = [];
  let navigate;
  const navigated = new Promise((resolve) => { navigate = resolve; });
  const location = {replace: (url) => navigate(url)};
  class Blob { constructor(parts, options) { this.text = parts.join(""); this.type = options.type; } }
  const URL = {createObjectURL: (blob) => blob};
  class Worker {
    constructor(blob) {
      if (!job.workers) throw new Error("workers are disabled here");
      if (blob.type !== "text/javascript") throw new Error("not a script: " + blob.type);
      const scope = {crypto: job.subtle ? globalThis.crypto : undefined, onmessage: null};
      const post = (data) => setTimeout(() => this.onmessage({data: data}), 0);
      new Function("self", "postMessage", blob.text)(scope, post);
      this.scope = scope;
    }
    postMessage(data) { setTimeout(() => this.scope.onmessage({data: data}), 0); }
  }
  globalThis.self = {crypto: job.subtle ? globalThis.crypto : undefined};  // the window, for the fallback
  new Function("document", "location", "Worker", "Blob", "URL", job.page)(
    {getElementById: (id) => elements[id]}, location, Worker, Blob, URL);
  statuses.push(elements["sw-status"].textContent);
  const url = await navigated;
  statuses.push(elements["sw-status"].textContent);
  return {url: url, statuses: statuses};
}
run().then((result) => console.log(JSON.stringify(result)));
"""


def node(tmp_path: Path, job: dict[str, Any]) -> Any:
    executable = shutil.which("node")
    assert executable, (
        "Node.js (v20 or later) is needed to test the challenge page's script: apt-get install nodejs"
    )
    harness, job_file = tmp_path / "harness.mjs", tmp_path / "job.json"
    harness.write_text(HARNESS)
    job_file.write_text(json.dumps(job))
    done = subprocess.run(
        [executable, str(harness), str(job_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def page() -> str:
    return SERVICE.challenge_page(
        target=b"/search?q=shoes",
        prefix=PREFIX,
        user_agent=UA,
        level=0,
        offences=0,
        refid="SW-0123456789AB",
        now=NOW,
    ).decode()


def scripts(html: str) -> tuple[str, str]:
    """(the worker's source, the page script) as the browser sees them: script text is not unescaped."""
    worker = re.search(r'<script id="sw-worker" type="text/plain">(.*?)</script>', html, re.S)
    main = re.search(r"<script>(.*?)</script>", html, re.S)
    assert worker is not None and main is not None
    return worker.group(1), main.group(1)


def attributes(html: str) -> dict[str, str]:
    found = re.search(r'<main id="sw" data-c="([^"]*)" data-d="([^"]*)">', html)
    assert found is not None
    return {"data-c": unescape(found.group(1)), "data-d": unescape(found.group(2))}


def test_the_pure_js_sha256_agrees_with_hashlib(tmp_path: Path) -> None:
    inputs = [b"", b"abc", bytes(range(256)) * 4, "caf\u00e9 \u2603".encode()]
    inputs += [b"x" * length for length in (1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000)]
    digests = node(
        tmp_path, {"mode": "sha256", "worker": scripts(page())[0], "inputs": [i.hex() for i in inputs]}
    )
    assert digests == [hashlib.sha256(data).hexdigest() for data in inputs]


@pytest.mark.parametrize("subtle", [True, False], ids=["webcrypto", "pure-js"])
def test_the_script_finds_the_nonce_the_python_solver_finds(tmp_path: Path, subtle: bool) -> None:
    html = page()
    challenge = attributes(html)["data-c"]
    for difficulty in (0, 1, 8, 10):
        nonce = node(
            tmp_path,
            {"mode": "solve", "worker": scripts(html)[0], "subtle": subtle, "c": challenge, "d": difficulty},
        )
        assert nonce == solve(challenge, difficulty)


@pytest.mark.parametrize(
    ("workers", "subtle"),
    [(True, True), (True, False), (False, True), (False, False)],
    ids=["worker-webcrypto", "worker-pure-js", "in-page-webcrypto", "in-page-pure-js"],
)
def test_the_page_script_lands_on_a_verify_url_the_server_accepts(
    tmp_path: Path, workers: bool, subtle: bool
) -> None:
    html = page()
    worker, main = scripts(html)
    job = {
        "mode": "page",
        "worker": worker,
        "page": main,
        "attributes": attributes(html),
        "workers": workers,
        "subtle": subtle,
    }
    result = node(tmp_path, job)
    url = urlsplit(result["url"])
    assert url.path == VERIFY_PATH and not url.netloc
    assert result["statuses"][0].startswith("Working") and result["statuses"][1].startswith("Done")
    passed = SERVICE.verify(url.query.encode(), PREFIX, UA, NOW + 1)
    assert passed == Passed(b"/search?q=shoes", 0, Method.POW, 8, int(NOW))
