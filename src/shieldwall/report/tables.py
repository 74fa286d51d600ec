"""The report's tables as rows of plain strings (unescaped): the HTML and Markdown renderers only lay
them out and escape them, so both say exactly the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shieldwall.report import words
from shieldwall.report.facts import AUTOMATIC, TopEntry
from shieldwall.report.model import ReportData

MAX_TEXT: Final = 200  # characters of a sender-controlled value (user agent...) shown in a table


@dataclass(frozen=True, slots=True)
class Table:
    key: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""  # said under the table (what a figure means, what was left out)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """One line, at most `limit` characters: values the attacker chose must not flood the report."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def who(by: str) -> str:
    return "automatic" if by == AUTOMATIC else by


def key_figures(data: ReportData) -> Table:
    rows = [
        ("Incident", data.incident_id),
        ("Attack began (estimate)", words.utc(data.started)),
        ("Detected", words.utc(data.detected)),
    ]
    if data.under_attack is not None:
        rows.append(("Under-attack mode from", words.utc(data.under_attack)))
    if data.closed is None:
        rows.append(("Status", f"ongoing as of {words.utc(data.generated)}"))
    else:
        if data.ended is not None:
            rows.append(("Attack traffic ended (estimate)", words.utc(data.ended)))
        rows.append(("Back to normal", words.utc(data.closed)))
    if data.attack_seconds is not None:
        rows.append(("Attack duration", words.duration(data.attack_seconds)))
    rows.append(("Highest mode", words.MODE_WORDS[data.peak_mode]))
    rows.append(("Peak rate", f"{words.rate(data.peak_rps)} requests/s"))
    if data.usual_rps is not None:
        rows.append(("Usual rate", f"{words.rate(data.usual_rps)} requests/s"))
    rows.append(("Peak distinct addresses", f"{words.count(data.peak_distinct_clients)} per second"))
    if data.requests:
        share = words.percent(data.mitigated / data.requests)
        rows.append(
            ("Requests filtered", f"{words.count(data.mitigated)} of {words.count(data.requests)} ({share})")
        )
    for mode, seconds in data.mode_seconds:
        rows.append((f"Time in {words.MODE_WORDS[mode]} mode", words.duration(seconds)))
    return Table("key-figures", "Key figures", ("", ""), tuple(rows))


def impact(data: ReportData) -> Table:
    impact = data.impact
    unknown = "not recorded"
    rows = []
    rows.append(
        (
            "Requests answered successfully",
            unknown if impact.success_rate is None else words.percent(impact.success_rate),
            unknown if impact.success_rate_before is None else words.percent(impact.success_rate_before),
        )
    )
    rows.append(
        (
            "Requests served per second",
            unknown if impact.legit_rps_during is None else words.rate(impact.legit_rps_during),
            unknown if impact.usual_legit_rps is None else words.rate(impact.usual_legit_rps),
        )
    )
    rows.append(
        (
            "Web server response time (p95)",
            f"worst {words.millis(impact.worst_latency)}",
            unknown if impact.usual_latency is None else words.millis(impact.usual_latency),
        )
    )
    slowed = unknown if impact.slowed_seconds is None else words.duration(impact.slowed_seconds)
    rows.append(("Time slowed down", slowed, ""))
    if impact.slowed_seconds is None:
        full_speed = unknown
    elif impact.time_to_full_speed is None:
        full_speed = "not yet"
    else:
        full_speed = f"{words.duration(impact.time_to_full_speed)} after the attack began"
    rows.append(("Full speed back", full_speed, ""))
    if impact.challenges_issued is not None:
        passed = impact.challenges_passed or 0
        rows.append(
            (
                "Check pages shown / passed",
                f"{words.count(impact.challenges_issued)} / {words.count(passed)}",
                "",
            )
        )
    note = "Requests served include whatever attack traffic the filters let through."
    if impact.slow_threshold is not None:
        note += f" Slowed down: response time above {words.millis(impact.slow_threshold)}."
    return Table("impact", "Impact on real visitors", ("", "During the attack", "Usually"), tuple(rows), note)


def timeline(data: ReportData, limit: int) -> Table:
    entries = data.timeline[:limit]
    rows = tuple(
        (words.utc(entry.at), clip(entry.text, 400), who(entry.by) if entry.by else "") for entry in entries
    )
    left_out = len(data.timeline) - len(entries) + data.timeline_dropped
    note = f"{words.plural(left_out, 'later event')} not shown (see the JSON report)." if left_out else ""
    return Table("timeline", "Timeline", ("Time (UTC)", "What happened", "By"), rows, note)


def actions(data: ReportData) -> Table:
    rows = tuple((words.utc(action.at), clip(action.what, 400), who(action.by)) for action in data.actions)
    note = "" if rows else "No action was recorded."
    return Table("actions", "Actions taken", ("Time (UTC)", "Action", "By"), rows, note)


def _top(key: str, title: str, what: str, entries: tuple[TopEntry, ...], with_label: bool) -> Table:
    headers = (what, "Name", "Requests", "Share") if with_label else (what, "Requests", "Share")
    rows = tuple(
        (clip(entry.value), clip(entry.label), words.count(entry.requests), words.percent(entry.share))
        if with_label
        else (clip(entry.value), words.count(entry.requests), words.percent(entry.share))
        for entry in entries
    )
    return Table(key, title, headers, rows)


def sources(data: ReportData) -> tuple[Table, ...]:
    """The top-source tables that have data (ASNs only when an ASN database was configured)."""
    top = data.facts.top
    tables = (
        _top("top-prefixes", "Top networks (/24 or /64)", "Network", top.prefixes, False),
        _top("top-asns", "Top networks by ASN", "ASN", top.asns, True),
        _top(
            "top-fingerprints",
            "Top client fingerprints (header order)",
            "Fingerprint",
            top.fingerprints,
            False,
        ),
        _top("top-user-agents", "Top user agents", "User agent", top.user_agents, False),
    )
    return tuple(table for table in tables if table.rows)


def signatures(data: ReportData) -> Table:
    rows = tuple(
        (
            record.id,
            clip(record.description, 400),
            record.signature.action,
            words.percent(record.signature.coverage),
            words.percent(record.signature.collateral),
            "" if record.requests is None else words.count(record.requests),
            who(record.decided_by),
        )
        for record in data.facts.signatures
    )
    note = (
        "Coverage: share of the attack traffic the signature matched. Collateral: share of normal "
        "(pre-attack) traffic it would also match, the estimate of real visitors affected; a signature "
        "only blocks outright when that is (almost) nil, otherwise it shows a check page."
    )
    headers = ("Signature", "Matches", "Action", "Coverage", "Collateral", "Requests", "By")
    return Table("signatures", "Attack signatures", headers, rows, note if rows else "No signature was used.")


def bans(data: ReportData, limit: int) -> Table:
    ordered = sorted(data.facts.bans, key=lambda ban: (ban.since, ban.target))
    rows = tuple(
        (
            ban.target,
            clip(ban.reason),
            words.utc(ban.since),
            "until removed" if ban.until is None else words.utc(ban.until),
            "automatic" if ban.source == "auto" else "operator",
        )
        for ban in ordered[:limit]
    )
    note = ""
    if len(ordered) > limit:
        note = f"{words.plural(len(ordered) - limit, 'more ban')} not shown (see the JSON report)."
    elif not ordered:
        note = "No address was banned."
    return Table("bans", "Bans", ("Address or network", "Reason", "From", "Until", "Source"), rows, note)
