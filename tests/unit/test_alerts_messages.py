"""What alerts say in each format: golden files for the recorded incident's alerts (every kind, and a
digest), and the shapes each destination requires.

The input is the report tests' recorded incident (tests/fixtures/report/incident.json), so a change in
the detector does not move these files; a change in messages.py does, and shows up as a diff to review.
After a deliberate change, rewrite them and review the diff:
    SHIELDWALL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_alerts_messages.py
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from email import message_from_string
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from alerts_sample import ALL_KINDS, recorded_incident, replay

from shieldwall.alerts.messages import (
    SCHEMA,
    email_message,
    generic_payload,
    slack_payload,
    summary_paragraph,
    teams_payload,
)
from shieldwall.alerts.policy import Alert, AlertKind, AlertPolicy, Digest, IncidentSummary, Notice
from shieldwall.detector.events import Mode

GOLDEN = Path(__file__).parent.parent / "fixtures" / "alerts"
UPDATE = os.environ.get("SHIELDWALL_UPDATE_GOLDEN") == "1"
SHIELD = "www.example.org"
FORMATS: dict[str, Callable[[Notice, str], dict[str, Any]]] = {
    "generic": generic_payload,
    "slack": slack_payload,
    "teams": teams_payload,
}


def notices() -> list[Notice]:
    """Every alert kind of the recorded incident, then the digest a limit of 2 makes of it."""
    incident = recorded_incident()
    every = [d.notice for d in replay(AlertPolicy(["hook"], kinds=ALL_KINDS, max_per_window=100), incident)]
    limited = AlertPolicy(["hook"], kinds=ALL_KINDS, max_per_window=2)
    replay(limited, incident)
    [digest] = limited.release([], incident.closed + 600)  # type: ignore[operator]
    return [*every, digest.notice]


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; if on purpose, see the docstring"


def test_the_sample_covers_every_kind_and_a_digest() -> None:
    sample = notices()
    assert {n.kind for n in sample if isinstance(n, Alert)} == set(AlertKind)
    assert isinstance(sample[-1], Digest) and sample[-1].total == 5


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_payloads_match_their_golden_file(name: str) -> None:
    payloads = [FORMATS[name](notice, SHIELD) for notice in notices()]
    golden(f"{name}.json", json.dumps(payloads, indent=2, ensure_ascii=False) + "\n")


def test_emails_match_their_golden_file() -> None:
    texts = []
    for notice in notices():
        message = email_message(notice, SHIELD, "shield@example.org", ("soc@example.org", "it@example.org"))
        del message["Message-ID"]  # random by design
        texts.append(message.as_string())
    golden("email.txt", "\n\n".join(texts))


def test_generic_payload_is_versioned_and_carries_the_raw_figures() -> None:
    sample = notices()
    closed = generic_payload(sample[-2], SHIELD)
    assert closed["schema"] == SCHEMA == "shieldwall.alert/1"
    assert (closed["kind"], closed["severity"], closed["incident"]) == (
        "closed",
        "resolved",
        "INC-20240610-061821",
    )
    assert closed["summary"]["duration_seconds"] == 209.0 and closed["summary"]["peak_mode"] == "under_attack"
    opened = generic_payload(sample[0], SHIELD)
    assert (opened["old_mode"], opened["new_mode"], opened["severity"]) == ("normal", "elevated", "warning")
    assert opened["values"]["rps"] == 5005.0 and opened["time"] == "2024-06-10T06:18:21Z"
    digest = generic_payload(sample[-1], SHIELD)
    assert (digest["kind"], digest["count"], len(digest["events"])) == ("digest", 5, 5)
    assert digest["severity"] == "resolved"  # the worst of its alerts: a step down, an unpin, the close


def test_the_closed_alert_says_duration_peak_and_filtered_share_in_one_paragraph() -> None:
    text = generic_payload(notices()[-2], SHIELD)["text"]
    assert "\n" not in text
    assert "closed after 3 minutes 29 seconds" in text
    assert "Peak mode: under attack; peak rate 5,022 requests/s" in text
    assert "The shield filtered" in text and "% of " in text


def test_slack_escapes_operator_text_and_respects_its_limits() -> None:
    hostile = Alert(
        AlertKind.PINNED, 1_718_000_000.0, None, Mode.NORMAL, Mode.UNDER_ATTACK, "<!channel> & <http://x|y>"
    )
    payload = slack_payload(hostile, "x" * 200)
    blocks = payload["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "context"]
    assert len(blocks[0]["text"]["text"]) == 150 and blocks[0]["text"]["type"] == "plain_text"
    section = blocks[1]["text"]["text"]
    assert "&lt;!channel&gt; &amp; &lt;http://x|y&gt;" in section and "<" not in section
    assert payload["text"].startswith("[xxx")


def test_slack_shows_the_figures_as_fields() -> None:
    fields = slack_payload(notices()[0], SHIELD)["blocks"][2]["fields"]
    assert fields[0] == {"type": "mrkdwn", "text": "*Requests/s*\n5,005 (usual 50)"}


def test_teams_payload_is_a_message_with_one_adaptive_card() -> None:
    payload = teams_payload(notices()[1], SHIELD)
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.2")
    assert {block["type"] for block in card["body"]} <= {"TextBlock", "FactSet"}
    assert card["body"][0]["color"] == "Attention"  # escalated to under attack


def test_email_is_plain_text_auto_submitted_and_parses_back() -> None:
    message = email_message(notices()[0], SHIELD, "shield@example.org", ("soc@example.org",))
    parsed = message_from_string(message.as_string(), policy=default_policy)
    assert (
        parsed["Subject"]
        == "[www.example.org] Possible attack: mode elevated (on guard) (INC-20240610-061821)"
    )
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"].endswith("@example.org>")
    assert parsed.get_content_type() == "text/plain"
    body = parsed.get_content()
    assert all(len(line) <= 72 for line in body.splitlines())
    assert "Requests/s:" in body and body.endswith("-- shieldwall on www.example.org\n")


def test_the_example_in_docs_alerts_md_is_what_shieldwall_sends() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "alerts.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```json\n(\{\n.*?)```", doc, re.DOTALL)
    assert json.loads(example) == generic_payload(notices()[-2], SHIELD)


def test_a_summary_across_midnight_gives_the_closing_date() -> None:
    summary = IncidentSummary(
        "INC-1", 1_718_063_000.0, 1_718_063_000.0 + 7200, Mode.UNDER_ATTACK, 900.0, 0, 0
    )
    text = summary_paragraph(summary)
    assert "(2024-06-10 23:43:20 UTC to 2024-06-11 01:43:20 UTC)" in text
    assert "filtered" not in text  # no request counted: no share claimed
