"""The admin API over a real ControlLoop, in memory (FastAPI's TestClient): the token on every /api/v1
route, each route's answer and what it changed (the ban store, pin.json, state.json, the control loop),
errors as {"error": ...}, the dashboard's files without a token."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_rig import WALL0, AdminRig
from report_sample import hour_incident

from shieldwall.admin import live, operator
from shieldwall.admin.app import API, STATIC_DIR
from shieldwall.control.state import PIN_FILE, STATE_FILE, ControlState, Pin, StateReader, control_dir
from shieldwall.detector.counters import Answered
from shieldwall.detector.events import Mode
from shieldwall.detector.signatures import Signature
from shieldwall.limiter.bans import Ban
from shieldwall.report import store
from shieldwall.state import ban_store, incident_store


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[AdminRig]:
    made = AdminRig(tmp_path, {"bans": {"allowlist": ["10.0.0.0/8", "192.0.2.10"]}})
    yield made
    made.close()


def api_routes(rig: AdminRig) -> list[tuple[str, str]]:
    """(method, path) of every /api/v1 operation in the OpenAPI document, path parameters filled in."""
    filled = {"{target}": "203.0.113.7", "{incident_id}": "INC-20240610-061821", "{signature_id}": "sig-x"}
    filled["{ref}"] = "SW-000000000000"
    found = []
    for template, operations in rig.app.openapi()["paths"].items():
        if template.startswith(API):
            path = template
            for name, value in filled.items():
                path = path.replace(name, value)
            found += [(method.upper(), path) for method in operations]
    return found


# --- the token -----------------------------------------------------------------------------------


def test_every_api_route_refuses_a_request_without_the_right_token(rig: AdminRig) -> None:
    routes = api_routes(rig)
    assert len(routes) >= 14  # the contract's routes: a route dropped from the app shows here
    wrong = {"Authorization": "Bearer " + "x" * 43}
    basic = {"Authorization": f"Basic {rig.token}"}  # the token, but not as a bearer token
    for method, path in routes:
        for headers in ({}, wrong, basic):
            response = rig.client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert "Authorization: Bearer" in response.json()["error"]
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert not os.path.exists(rig.state_dir / "bans" / "manual.json")  # no write happened
    assert rig.control.detector.ladder.pinned is None


def test_every_api_operation_declares_the_bearer_token_in_the_openapi_document(rig: AdminRig) -> None:
    document = rig.client.get("/openapi.json").json()  # no token needed
    operations = [
        (method, path, operation)
        for path, methods in document["paths"].items()
        if path.startswith(API)
        for method, operation in methods.items()
    ]
    assert operations
    for method, path, operation in operations:
        assert operation.get("security") == [{"HTTPBearer": []}], (method, path)


def test_the_stream_takes_the_token_as_a_query_parameter_too(rig: AdminRig) -> None:
    assert rig.client.get(f"{API}/stream").status_code == 401
    assert rig.client.get(f"{API}/stream", params={"token": "nope"}).status_code == 401
    assert rig.client.get(f"{API}/status", params={"token": rig.token}).status_code == 401  # only /stream


def test_a_rotated_token_replaces_the_old_one_without_a_restart(rig: AdminRig) -> None:
    from shieldwall.admin.auth import rotate  # noqa: PLC0415

    assert rig.client.get(f"{API}/status", headers=rig.auth).status_code == 200
    new = rotate(rig.admin.tokens.path)
    assert rig.client.get(f"{API}/status", headers=rig.auth).status_code == 401
    assert rig.client.get(f"{API}/status", headers={"Authorization": f"Bearer {new}"}).status_code == 200


# --- now: status, lookup, stream ---------------------------------------------------------------


def test_status_is_the_control_snapshot_with_pinned_flags_on_signatures(rig: AdminRig) -> None:
    rig.second(allow=30, block=5)
    signature = propose_signature(rig)
    rig.control.signatures.pin(signature.id)
    rig.second(allow=30, stats={"admission.queued": 3})
    status = rig.client.get(f"{API}/status", headers=rig.auth).json()
    assert status["mode"] == "normal"
    assert status["now"]["by_outcome"]["allow"] == pytest.approx(30.0)
    assert status["stats"]["admission.queued"] == 3
    assert [(entry["id"], entry["pinned"]) for entry in status["signatures"]] == [(signature.id, True)]
    assert len(status["history"]) == 2
    assert "pinned" not in rig.control.status.snapshot["signatures"][0]  # the snapshot itself is untouched


def test_status_has_no_nan_or_infinity(rig: AdminRig) -> None:
    rig.second()
    rig.control.status.snapshot = {**rig.control.status.snapshot, "odd": [float("nan"), float("inf"), 1.5]}
    response = rig.client.get(f"{API}/status", headers=rig.auth)
    assert json.loads(response.text)["odd"] == [None, None, 1.5]


def test_lookup_finds_a_reference_id_the_shield_answered(rig: AdminRig) -> None:
    answer = Answered("SW-7F3A9C2E01BD", WALL0 + 5, "203.0.113.9", "GET", "/wp-login.php", 403, "rule no-wp")
    rig.second(block=1, answered=(answer,))
    found = rig.client.get(f"{API}/lookup/sw-7f3a9c2e01bd", headers=rig.auth)
    assert found.status_code == 200
    assert found.json() == {
        "ref": "SW-7F3A9C2E01BD",
        "wall": WALL0 + 5,
        "client": "203.0.113.9",
        "method": "GET",
        "target": "/wp-login.php",
        "status": 403,
        "reason": "rule no-wp",
    }
    missing = rig.client.get(f"{API}/lookup/SW-000000000000", headers=rig.auth)
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("reference ID SW-000000000000 not seen recently")


def test_the_stream_sends_each_new_snapshot_once_as_a_status_event(rig: AdminRig) -> None:
    rig.admin.stream_poll = 0.0

    async def first_events() -> list[str]:
        events = live._events(rig.admin)
        sent = [await anext(events)]
        rig.second(allow=7)  # a new snapshot: the next event
        sent.append(await anext(events))
        rig.admin.closing = True  # the server stops: the stream ends
        with pytest.raises(StopAsyncIteration):
            await anext(events)
        return sent

    rig.second(allow=3)
    first, second = asyncio.run(first_events())
    for event, allowed in ((first, 3.0), (second, 7.0)):
        kind, data = event.removesuffix("\n\n").split("\n")
        assert kind == "event: status"
        assert json.loads(data.removeprefix("data: "))["now"]["by_outcome"]["allow"] == pytest.approx(allowed)


# --- bans ----------------------------------------------------------------------------------------


def test_a_ban_is_written_to_the_store_listed_and_removed(rig: AdminRig) -> None:
    added = rig.client.post(
        f"{API}/bans",
        headers=rig.auth,
        json={"target": "203.0.113.7", "duration": "2h", "reason": "stuffing"},
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["target"], body["source"], body["reason"], body["note"]) == (
        "203.0.113.7",
        "manual",
        "stuffing",
        None,
    )
    assert body["until"] == pytest.approx(body["since"] + 7200)
    stored = ban_store.load(rig.state_dir, ban_store.MANUAL, body["since"]).bans
    assert [(ban.target, ban.until, ban.reason) for ban in stored] == [
        ("203.0.113.7", body["until"], "stuffing")
    ]
    listed = rig.client.get(f"{API}/bans", headers=rig.auth).json()
    assert [ban["target"] for ban in listed] == ["203.0.113.7"]
    removed = rig.client.delete(f"{API}/bans/203.0.113.7", headers=rig.auth)
    assert removed.json() == {"lifted": 1, "note": None}
    assert rig.client.get(f"{API}/bans", headers=rig.auth).json() == []
    again = rig.client.delete(f"{API}/bans/203.0.113.7", headers=rig.auth)
    assert again.json() == {"lifted": 0, "note": None}


def test_a_prefix_ban_is_removed_with_its_slash_url_encoded(rig: AdminRig) -> None:
    rig.client.post(
        f"{API}/bans", headers=rig.auth, json={"target": "198.51.100.77/24", "duration": "permanent"}
    )
    listed = rig.client.get(f"{API}/bans", headers=rig.auth).json()
    assert [(ban["target"], ban["until"]) for ban in listed] == [("198.51.100.0/24", None)]
    removed = rig.client.delete(f"{API}/bans/198.51.100.0%2F24", headers=rig.auth)
    assert removed.json()["lifted"] == 1


def test_a_target_with_a_line_break_is_a_bad_request_not_a_missing_route(rig: AdminRig) -> None:
    answered = rig.client.delete(f"{API}/bans/192.0.2.1%0Ax", headers=rig.auth)
    assert answered.status_code == 400, answered.text


def test_removing_an_address_lifts_the_workers_bans_and_names_a_banned_prefix(rig: AdminRig) -> None:
    now = WALL0
    worker_bans = [
        Ban("192.0.2.1", now + 600, "30 refusals", "auto", 0, now),
        Ban("198.51.100.0/24", now + 600, "prefix", "auto", 0, now),
    ]
    ban_store.save(rig.state_dir, ban_store.worker_writer(0), worker_bans)
    rig.admin.operator.clock = FixedClock(now + 1)
    removed = rig.client.delete(f"{API}/bans/192.0.2.1", headers=rig.auth).json()
    assert removed == {"lifted": 1, "note": None}
    lifts = ban_store.load(rig.state_dir, ban_store.MANUAL, now + 1).lifts
    assert [(lift.target, lift.until) for lift in lifts] == [("192.0.2.1", now + 600)]
    noted = rig.client.delete(f"{API}/bans/198.51.100.9", headers=rig.auth).json()
    assert noted == {
        "lifted": 0,
        "note": "its prefix 198.51.100.0/24 is banned too; remove that as well to let it in",
    }
    assert [action.what for action in rig.control.facts._actions] == ["Lifted the ban on 192.0.2.1"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"target": "10.1.0.0/16"}, "target: a ban covers one address or one client prefix"),
        ({"target": "example.org"}, "target: not an IP address or CIDR prefix"),
        ({"target": "203.0.113.7", "duration": "0m"}, "duration: a ban must last longer than 0 s"),
        ({"target": "203.0.113.7", "duration": "soon"}, "duration: not a duration; write e.g. 90s"),
        ({"target": "203.0.113.7", "reason": "two\nlines"}, "reason: write one line of at most 200"),
        ({"target": "203.0.113.7", "duraton": "1h"}, "duraton: Extra inputs are not permitted"),
        ({}, "target: missing"),
        ({"target": "10.1.2.3"}, "10.1.2.3 is in bans.allowlist, which wins over every ban"),
    ],
)
def test_a_bad_ban_is_refused_with_a_400_that_says_why(
    rig: AdminRig, body: dict[str, Any], message: str
) -> None:
    response = rig.client.post(f"{API}/bans", headers=rig.auth, json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not (rig.state_dir / "bans" / "manual.json").exists()


def test_a_body_that_is_not_json_is_a_400(rig: AdminRig) -> None:
    response = rig.client.post(
        f"{API}/bans", headers={**rig.auth, "Content-Type": "application/json"}, content=b"{nope"
    )
    assert response.status_code == 400
    assert "the body is not valid JSON" in response.json()["error"]


def test_a_prefix_with_allowlisted_addresses_is_banned_with_a_note(rig: AdminRig) -> None:
    response = rig.client.post(f"{API}/bans", headers=rig.auth, json={"target": "192.0.2.0/24"})
    assert response.status_code == 201
    assert response.json()["note"] == "the allowlisted addresses in 192.0.2.0/24 are still let in"


def test_a_bad_target_in_the_path_is_a_400(rig: AdminRig) -> None:
    response = rig.client.delete(f"{API}/bans/10.0.0.0%2F8", headers=rig.auth)
    assert response.status_code == 400
    assert "a ban covers one address or one client prefix" in response.json()["error"]


# --- the mode ------------------------------------------------------------------------------------


def test_a_pin_changes_the_mode_at_once_and_is_written_for_a_restart(rig: AdminRig) -> None:
    rig.second()
    response = rig.client.post(
        f"{API}/mode/pin",
        headers=rig.auth,
        json={"mode": "under_attack", "duration": "2h", "reason": "debate"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["mode"], body["mode_now"]) == ("under_attack", "under_attack")
    assert rig.control.detector.mode is Mode.UNDER_ATTACK
    written = Pin.from_json((control_dir(rig.state_dir) / PIN_FILE).read_bytes())
    assert (written.mode, written.until, written.by, written.reason) == (
        Mode.UNDER_ATTACK,
        body["until"],
        "admin API",
        "debate",
    )
    assert body["until"] == pytest.approx(written.written + 7200)
    assert rig.pins.changed() is None  # the control process's reader: our write, not to apply again
    assert StateReader(control_dir(rig.state_dir) / PIN_FILE).changed() is not None  # a restart's reader
    assert "pin" in [event.kind for event in rig.admin.operator.take_events()]  # for the tick's log
    assert rig.admin.operator.take_events() == []
    unpinned = rig.client.post(f"{API}/mode/unpin", headers=rig.auth).json()
    assert unpinned == {"mode": None, "until": None, "mode_now": "normal"}
    assert rig.control.detector.ladder.pinned is None
    assert Pin.from_json((control_dir(rig.state_dir) / PIN_FILE).read_bytes()).mode is None


def test_a_pin_for_an_unknown_mode_is_a_400(rig: AdminRig) -> None:
    response = rig.client.post(f"{API}/mode/pin", headers=rig.auth, json={"mode": "panic"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("mode: Input should be 'normal', 'elevated' or 'under_attack'")
    assert not (control_dir(rig.state_dir) / PIN_FILE).exists()


# --- signatures ----------------------------------------------------------------------------------


def propose_signature(rig: AdminRig) -> Signature:
    wall = WALL0 + rig.now
    signature = Signature(
        (("user_agent", "curl/8"), ("path", "/wp-login.php")), 0.9, 0.0, "block", wall, wall
    )
    [added] = rig.control.signatures.propose([signature], wall)
    return added


def test_a_rejected_signature_leaves_the_workers_state_at_once(rig: AdminRig) -> None:
    rig.second()
    signature = propose_signature(rig)
    keep = rig.control.signatures.propose(
        [Signature((("user_agent", "masscan"),), 0.5, 0.0, "block", WALL0, WALL0)], WALL0
    )[0]
    response = rig.client.post(f"{API}/signatures/{signature.id}/reject", headers=rig.auth)
    assert response.json() == {"id": signature.id, "status": "rejected"}
    state = ControlState.from_json((control_dir(rig.state_dir) / STATE_FILE).read_bytes())
    assert [sig.id for sig in state.signatures] == [keep.id]
    assert rig.control.signatures.is_rejected(signature.id)
    again = rig.client.post(f"{API}/signatures/{signature.id}/reject", headers=rig.auth)
    assert again.status_code == 404
    assert again.json()["error"].startswith(f"no active signature {signature.id}")


def test_a_signature_is_pinned_and_unpinned(rig: AdminRig) -> None:
    signature = propose_signature(rig)
    pinned = rig.client.post(f"{API}/signatures/{signature.id}/pin", headers=rig.auth)
    assert pinned.json() == {"id": signature.id, "status": "pinned"}
    assert rig.control.signatures.is_pinned(signature.id)
    unpinned = rig.client.post(f"{API}/signatures/{signature.id}/unpin", headers=rig.auth)
    assert unpinned.json() == {"id": signature.id, "status": "unpinned"}
    assert not rig.control.signatures.is_pinned(signature.id)
    assert rig.client.post(f"{API}/signatures/{signature.id}/unpin", headers=rig.auth).status_code == 404
    assert rig.client.post(f"{API}/signatures/sig-unknown/pin", headers=rig.auth).status_code == 404
    whats = [action.what for action in rig.control.facts._actions]
    assert whats == [f"Pinned signature {signature.id}", f"Unpinned signature {signature.id}"]


# --- reload --------------------------------------------------------------------------------------


def test_reload_without_a_supervisor_is_refused(rig: AdminRig) -> None:
    response = rig.client.post(f"{API}/reload", headers=rig.auth)
    assert response.status_code == 503
    assert "no supervisor to reload" in response.json()["error"]


def test_reload_signals_the_parent_only_while_it_is_the_supervisor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(operator.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    parent = os.getppid()
    rig = AdminRig(tmp_path, supervisor=parent)
    try:
        response = rig.client.post(f"{API}/reload", headers=rig.auth)
        assert (response.status_code, response.json()) == (202, {"reloading": True, "supervisor": parent})
        assert sent == [(parent, signal.SIGHUP)]
        rig.admin.operator.supervisor = parent + 1  # the supervisor died: our parent is someone else
        assert rig.client.post(f"{API}/reload", headers=rig.auth).status_code == 503
        assert sent == [(parent, signal.SIGHUP)]
    finally:
        rig.close()


# --- incidents -----------------------------------------------------------------------------------


def test_incidents_are_listed_newest_first_and_read_as_file_or_report(rig: AdminRig) -> None:
    older = hour_incident(120, WALL0 - 10_000)
    newer = hour_incident(60, WALL0)
    for incident in (older, newer):
        store.save(rig.state_dir, incident, now=WALL0)
    listed = rig.client.get(f"{API}/incidents", headers=rig.auth).json()
    assert [entry["id"] for entry in listed] == [newer.id, older.id]
    assert listed[0] == {
        "id": newer.id,
        "opened": newer.opened,
        "closed": newer.closed,
        "peak_mode": newer.peak_mode.value,
        "peak_rps": newer.peak_rps,
    }
    one = rig.client.get(f"{API}/incidents/{older.id}", headers=rig.auth)
    assert one.json() == json.loads(older.to_json())
    for fmt, media, start in (
        ("html", "text/html", "<!doctype html>"),
        ("md", "text/markdown", "# "),
        ("json", "application/json", "{"),
    ):
        report = rig.client.get(
            f"{API}/incidents/{newer.id}/report", params={"format": fmt}, headers=rig.auth
        )
        assert report.status_code == 200, report.text
        assert report.headers["content-type"].startswith(media)
        assert report.text.lstrip().lower().startswith(start.lower())
    stix = rig.client.get(
        f"{API}/incidents/{newer.id}/report", params={"format": "stix", "tlp": "green"}, headers=rig.auth
    ).json()
    assert stix["type"] == "bundle"
    assert rig.client.get(f"{API}/incidents?limit=1", headers=rig.auth).json()[0]["id"] == newer.id
    incident_store.shared(rig.state_dir).close()


def test_a_damaged_incidents_database_is_a_503_saying_so(rig: AdminRig) -> None:
    (rig.state_dir / "incidents.sqlite3").write_bytes(b"\0garbage" * 1000)
    for path in ("/incidents", "/incidents/INC-20000101-000000"):
        response = rig.client.get(f"{API}{path}", headers=rig.auth)
        assert response.status_code == 503
        assert "incidents.sqlite3: file is not a database" in response.json()["error"]
    incident_store.shared(rig.state_dir).close()


def test_unknown_and_malformed_incident_ids(rig: AdminRig) -> None:
    missing = rig.client.get(f"{API}/incidents/INC-20000101-000000", headers=rig.auth)
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("no incident INC-20000101-000000")
    bad = rig.client.get(f"{API}/incidents/..%2Fsecret/report", headers=rig.auth)
    assert bad.status_code in (400, 404)
    assert "error" in bad.json()
    wrong_format = rig.client.get(f"{API}/incidents/x/report", params={"format": "pdf"}, headers=rig.auth)
    assert wrong_format.status_code == 400


# --- the open API, the dashboard and unknown routes ---------------------------------------------


def test_the_dashboard_and_its_files_need_no_token(rig: AdminRig) -> None:
    page = rig.client.get("/")
    assert page.status_code == 200
    assert page.text == (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    script = rig.client.get("/static/dashboard.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


def test_unknown_routes_and_methods_answer_in_the_error_shape(rig: AdminRig) -> None:
    assert rig.client.get("/nope").json() == {"error": "no such route; the routes are in /openapi.json"}
    response = rig.client.put(f"{API}/bans", headers=rig.auth)
    assert response.status_code == 405
    assert "error" in response.json()


class FixedClock:
    def __init__(self, wall: float) -> None:
        self._wall = wall

    def monotonic(self) -> float:
        return 1000.0

    def wall(self) -> float:
        return self._wall
