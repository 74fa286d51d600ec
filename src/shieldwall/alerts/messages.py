"""What an alert says, and the payload each kind of destination takes. Sans-io: plain data in, JSON-ready
dicts and an `EmailMessage` out.

Every format carries the same three things, worded once here: a title (a chat notification's first
line, an email's subject), one paragraph in plain words, and a few facts (figures with their names).

Formats:
- `generic_payload`: shieldwall's own JSON, versioned by its `schema` field ("shieldwall.alert/1").
  docs/alerts.md documents every field; fields may be added within a version, never renamed or removed.
- `slack_payload`: `{"text": ..., "blocks": [...]}` for Slack incoming webhooks (and the chat tools that
  accept Slack's format, such as Mattermost and Rocket.Chat); `text` is the notification's fallback.
- `teams_payload`: a message with one Adaptive Card (version 1.2, TextBlocks and a FactSet only), the
  format both Teams "Workflows" webhooks (Power Automate, which take Adaptive Cards only) and the older
  Office 365 connector webhooks accept.
- `email_message`: a plain-text email marked `Auto-Submitted: auto-generated` (RFC 3834), so that
  auto-responders do not answer it.

Operator-written text (a pin's reason) reaches Slack escaped: `<`, `>` and `&` would otherwise make
links and mentions there.
"""

from __future__ import annotations

import textwrap
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Final

from shieldwall.alerts.policy import Alert, AlertKind, Digest, IncidentSummary, Notice
from shieldwall.detector.events import Mode
from shieldwall.report import words

SCHEMA: Final = "shieldwall.alert/1"
_SLACK_HEADER_MAX: Final = 150  # characters Slack allows in a header block
_SLACK_TEXT_MAX: Final = 3000  # in a section's text
_SLACK_FIELDS_MAX: Final = 10


def _mode(mode: Mode | None) -> str:
    return "?" if mode is None else words.MODE_WORDS[mode]


def severity(notice: Notice) -> str:
    """'critical' (under attack), 'warning' (elevated), 'resolved' (closed) or 'info'."""
    if isinstance(notice, Digest):
        return max((severity(alert) for alert in notice.alerts), key=_SEVERITY_RANK.__getitem__)
    if notice.kind is AlertKind.CLOSED:
        return "resolved"
    if notice.kind in (AlertKind.OPENED, AlertKind.ESCALATED):
        return "critical" if notice.new is Mode.UNDER_ATTACK else "warning"
    return "info"


_SEVERITY_RANK: Final = {"info": 0, "resolved": 1, "warning": 2, "critical": 3}


def title(notice: Notice, shield: str) -> str:
    """'[www.example.org] Escalated to under attack (INC-20240610-061821)'."""
    return f"[{shield}] {headline(notice)}"


def headline(notice: Notice) -> str:
    """The title without the shield's name."""
    if isinstance(notice, Digest):
        return f"and {words.plural(notice.total, 'more event')} since {words.clock(notice.since)} UTC"
    incident = f" ({notice.incident})" if notice.incident else ""
    if notice.kind is AlertKind.OPENED:
        return f"Possible attack: mode {_mode(notice.new)}{incident}"
    if notice.kind is AlertKind.ESCALATED:
        return f"Escalated to {_mode(notice.new)}{incident}"
    if notice.kind is AlertKind.DEESCALATED:
        return f"Stepped down to {_mode(notice.new)}{incident}"
    if notice.kind is AlertKind.CLOSED:
        return f"Incident closed: back to normal{incident}"
    if notice.kind is AlertKind.PINNED:
        return f"Mode pinned to {_mode(notice.new)} by an operator"
    if notice.reason == "pin expired":
        return f"The mode pin expired: mode {_mode(notice.new)}"
    return f"Mode pin removed: mode {_mode(notice.new)}"


def paragraph(notice: Notice, shield: str) -> str:
    """The alert in one paragraph of plain words."""
    if isinstance(notice, Digest):
        listed = "" if not notice.not_listed else f"; the last {len(notice.alerts)} are listed"
        return (
            f"{words.plural(notice.total, 'event')} on {shield} since {words.utc(notice.since)} were "
            f"held back so that alerts do not flood this channel{listed}."
        )
    at = words.utc(notice.wall)
    why = f": {notice.reason}" if notice.reason else ""
    if notice.kind is AlertKind.OPENED:
        return (
            f"At {at} shieldwall on {shield} left normal mode for {_mode(notice.new)}{why}. "
            f"Incident {notice.incident} is open; `shieldwall mode status` on the shield shows what it does."
        )
    if notice.kind is AlertKind.ESCALATED:
        return f"At {at} the mode went up from {_mode(notice.old)} to {_mode(notice.new)}{why}."
    if notice.kind is AlertKind.DEESCALATED:
        return f"At {at} the mode stepped down from {_mode(notice.old)} to {_mode(notice.new)}{why}."
    if notice.kind is AlertKind.CLOSED:
        if notice.summary is not None:
            return summary_paragraph(notice.summary)
        return f"At {at} incident {notice.incident} closed{why}."
    if notice.kind is AlertKind.PINNED:
        return f"At {at} the mode was {notice.reason or 'pinned to ' + _mode(notice.new)}."
    who = "the operator's pin expired" if notice.reason == "pin expired" else "an operator removed the pin"
    return f"At {at} {who}; the mode is now {_mode(notice.new)}, as the traffic calls for."


def summary_paragraph(summary: IncidentSummary) -> str:
    """The closed incident in one paragraph: how long, how bad, how much the shield filtered."""
    same_day = words.day(summary.closed) == words.day(summary.opened)
    until = f"{words.clock(summary.closed)} UTC" if same_day else words.utc(summary.closed)
    text = (
        f"Incident {summary.id} closed after {words.duration(summary.duration)} "
        f"({words.utc(summary.opened)} to {until}). "
        f"Peak mode: {_mode(summary.peak_mode)}; peak rate {words.rate(summary.peak_rps)} requests/s."
    )
    share = summary.mitigated_share
    if share is not None:
        text += (
            f" The shield filtered {words.percent(share)} of {words.count(summary.requests)} requests "
            "(refused, rate-limited or challenged before reaching the web server)."
        )
    return text


def facts(notice: Notice) -> list[tuple[str, str]]:
    """Named figures shown beside the paragraph (a digest lists its alerts instead)."""
    if isinstance(notice, Digest):
        return []
    if notice.summary is not None:
        summary = notice.summary
        shown = [
            ("Duration", words.duration(summary.duration)),
            ("Peak mode", _mode(summary.peak_mode)),
            ("Peak requests/s", words.rate(summary.peak_rps)),
        ]
        if summary.mitigated_share is not None:
            filtered = f"{words.percent(summary.mitigated_share)} of {words.count(summary.requests)}"
            shown.append(("Filtered", filtered))
        return shown
    values = notice.values
    shown = []
    if "rps" in values:
        usual = values.get("rps_baseline")
        extra = f" (usual {words.rate(usual)})" if usual is not None else ""
        shown.append(("Requests/s", words.rate(values["rps"]) + extra))
    if "distinct_clients" in values:
        shown.append(("Distinct clients/s", words.count(values["distinct_clients"])))
    if "latency_p95" in values:
        shown.append(("Origin p95 latency", words.millis(values["latency_p95"])))
    return shown


def digest_lines(digest: Digest) -> list[str]:
    """One line per listed alert: 'HH:MM:SS headline'."""
    lines = [f"{words.clock(alert.wall)} {headline(alert)}" for alert in digest.alerts]
    if digest.not_listed:
        lines.insert(0, f"… {words.plural(digest.not_listed, 'earlier event')} not listed")
    return lines


# --- generic JSON --------------------------------------------------------------------------------


def _alert_fields(alert: Alert) -> dict[str, Any]:
    summary = alert.summary
    return {
        "kind": alert.kind.value,
        "time": words.iso(alert.wall),
        "timestamp": alert.wall,
        "incident": alert.incident,
        "old_mode": None if alert.old is None else alert.old.value,
        "new_mode": None if alert.new is None else alert.new.value,
        "reason": alert.reason,
        "values": dict(alert.values),
        "summary": None
        if summary is None
        else {
            "opened": words.iso(summary.opened),
            "closed": words.iso(summary.closed),
            "duration_seconds": summary.duration,
            "peak_mode": summary.peak_mode.value,
            "peak_rps": summary.peak_rps,
            "requests": summary.requests,
            "mitigated": summary.mitigated,
            "mitigated_share": summary.mitigated_share,
        },
    }


def generic_payload(notice: Notice, shield: str) -> dict[str, Any]:
    common = {
        "schema": SCHEMA,
        "shield": shield,
        "severity": severity(notice),
        "title": title(notice, shield),
        "text": paragraph(notice, shield),
    }
    if isinstance(notice, Digest):
        return common | {
            "kind": "digest",
            "time": words.iso(notice.since),
            "timestamp": notice.since,
            "count": notice.total,
            "not_listed": notice.not_listed,
            "events": [_alert_fields(alert) for alert in notice.alerts],
        }
    return common | _alert_fields(notice)


# --- Slack ---------------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(notice: Notice, shield: str) -> dict[str, Any]:
    heading = title(notice, shield)
    text = _slack_escape(paragraph(notice, shield))
    if isinstance(notice, Digest):
        text += "\n" + "\n".join(f"• {_slack_escape(line)}" for line in digest_lines(notice))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(heading, _SLACK_HEADER_MAX)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, _SLACK_TEXT_MAX)}},
    ]
    shown = facts(notice)[:_SLACK_FIELDS_MAX]
    if shown:
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in shown],
            }
        )
    context = f"shieldwall · {severity(notice)}"
    if isinstance(notice, Alert) and notice.incident:
        context += f" · {notice.incident}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": _slack_escape(heading), "blocks": blocks}


# --- Microsoft Teams -----------------------------------------------------------------------------

_TEAMS_COLOUR: Final = {"critical": "Attention", "warning": "Warning", "resolved": "Good", "info": "Default"}


def teams_payload(notice: Notice, shield: str) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title(notice, shield),
            "weight": "Bolder",
            "size": "Medium",
            "color": _TEAMS_COLOUR[severity(notice)],
            "wrap": True,
        },
        {"type": "TextBlock", "text": paragraph(notice, shield), "wrap": True},
    ]
    if isinstance(notice, Digest):
        body.append({"type": "TextBlock", "text": "\n\n".join(digest_lines(notice)), "wrap": True})
    shown = facts(notice)
    if shown:
        body.append({"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in shown]})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


# --- email ---------------------------------------------------------------------------------------


def email_message(notice: Notice, shield: str, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = title(notice, shield)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(notice.since if isinstance(notice, Digest) else notice.wall, usegmt=True)
    message["Message-ID"] = make_msgid("shieldwall", domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    lines = [textwrap.fill(paragraph(notice, shield), 72), ""]
    if isinstance(notice, Digest):
        lines += [*digest_lines(notice), ""]
    shown = facts(notice)
    if shown:
        width = max(len(name) for name, _ in shown)
        lines += [f"{name + ':':<{width + 1}} {value}" for name, value in shown] + [""]
    lines.append(f"-- shieldwall on {shield}")
    message.set_content("\n".join(lines) + "\n")
    return message
