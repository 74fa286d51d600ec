"""The JSON report, for ticketing systems: one object, keys sorted, two-space indent.

Schema "shieldwall-incident-report", version 1. A later version only adds keys; a change to the meaning
or type of an existing key raises `schema_version`. Times are ISO 8601 UTC strings
("2024-06-10T06:18:21Z") or null; shares are fractions (0.992 = 99.2 %); latencies are seconds.

    schema            "shieldwall-incident-report"
    schema_version    1
    generated         when the report was made
    incident          id, status ("open" | "closed"), tlp ("clear" | "green" | "amber" | "red"),
                      started (estimate), detected, under_attack (first switch to that mode, or null),
                      ended (attack traffic ended, estimate; null while open), closed (the shield back
                      to normal; null while open), duration_seconds (started to ended; null while
                      open), peak_mode ("normal" | "elevated" | "under_attack"), peak_rps,
                      peak_mitigated_rps, peak_distinct_clients, peak_latency_p95, usual_rps (or null),
                      requests and mitigated (counts from `started` on), mode_seconds ({mode: seconds}
                      from detection on)
    organisation      name, site, origin, contact {name, role, email, phone}; "" when not given
    summary           the plain-words summary, a list of paragraphs
    impact            usual_legit_rps, legit_rps_during, usual_latency_p95, worst_latency_p95,
                      slow_threshold, slowed_seconds, time_to_full_speed_seconds, success_rate,
                      success_rate_before, challenges_issued, challenges_passed (each null when unknown)
    timeline          [{at, kind, text, by, values}]: by is "automatic", a person, or "" (observed);
                      values are the signals behind a detector event ({name: number})
    timeline_dropped  events beyond the incident's cap, counted and not kept
    actions           [{at, what, by}]
    sources           prefixes, asns, fingerprints, user_agents: [{value, label, requests, share}]
    signatures        [{id, description, conditions {feature: value}, action ("block" | "challenge"),
                      coverage, collateral, first_seen, last_seen, requests, decided_by}]
    bans              [{target, since, until (null: until removed), source ("auto" | "manual"),
                      reason, level}]
    cert_answers      [{key, question, answer}] (see cert_questions.py for the keys)
    series            {columns: [start, seconds, served, mitigated, latency_p95, distinct_clients, mode],
                      points: [[...]]}: at most charts.MAX_COLUMNS points, neighbours merged
"""

from __future__ import annotations

import json
from typing import Any, Final

from shieldwall.report import summary, words
from shieldwall.report.cert_questions import cert_answers
from shieldwall.report.charts import columns
from shieldwall.report.model import ReportData

SCHEMA: Final = "shieldwall-incident-report"
SCHEMA_VERSION: Final = 1
SERIES_COLUMNS: Final = ("start", "seconds", "served", "mitigated", "latency_p95", "distinct_clients", "mode")


def _time(wall: float | None) -> str | None:
    return None if wall is None else words.iso(wall)


def _num(value: float | None, digits: int = 4) -> float | None:
    """Fixed precision, so equal inputs print equal JSON whatever float noise a sum carried."""
    return None if value is None else round(value, digits)


def report_document(data: ReportData) -> dict[str, Any]:
    """The report as plain JSON-ready data (the API can serve it as is)."""
    facts, impact = data.facts, data.impact
    contact = facts.contact
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated": _time(data.generated),
        "incident": {
            "id": data.incident_id,
            "status": "open" if data.ongoing else "closed",
            "tlp": facts.tlp,
            "started": _time(data.started),
            "detected": _time(data.detected),
            "under_attack": _time(data.under_attack),
            "ended": _time(data.ended),
            "closed": _time(data.closed),
            "duration_seconds": _num(data.attack_seconds, 1),
            "peak_mode": data.peak_mode.value,
            "peak_rps": _num(data.peak_rps, 2),
            "peak_mitigated_rps": _num(data.peak_mitigated_rps, 2),
            "peak_distinct_clients": _num(data.peak_distinct_clients, 1),
            "peak_latency_p95": _num(data.peak_latency),
            "usual_rps": _num(data.usual_rps, 2),
            "requests": data.requests,
            "mitigated": data.mitigated,
            "mode_seconds": {mode.value: _num(seconds, 1) for mode, seconds in data.mode_seconds},
        },
        "organisation": {
            "name": facts.organisation,
            "site": facts.site,
            "origin": facts.origin,
            "contact": {
                "name": contact.name,
                "role": contact.role,
                "email": contact.email,
                "phone": contact.phone,
            },
        },
        "summary": list(summary.paragraphs(data)),
        "impact": {
            "usual_legit_rps": _num(impact.usual_legit_rps, 2),
            "legit_rps_during": _num(impact.legit_rps_during, 2),
            "usual_latency_p95": _num(impact.usual_latency),
            "worst_latency_p95": _num(impact.worst_latency),
            "slow_threshold": _num(impact.slow_threshold),
            "slowed_seconds": _num(impact.slowed_seconds, 1),
            "time_to_full_speed_seconds": _num(impact.time_to_full_speed, 1),
            "success_rate": _num(impact.success_rate, 6),
            "success_rate_before": _num(impact.success_rate_before, 6),
            "challenges_issued": impact.challenges_issued,
            "challenges_passed": impact.challenges_passed,
        },
        "timeline": [
            {
                "at": _time(entry.at),
                "kind": entry.kind,
                "text": entry.text,
                "by": entry.by,
                "values": {name: _num(value) for name, value in entry.values},
            }
            for entry in data.timeline
        ],
        "timeline_dropped": data.timeline_dropped,
        "actions": [
            {"at": _time(action.at), "what": action.what, "by": action.by} for action in data.actions
        ],
        "sources": {
            name: [
                {
                    "value": entry.value,
                    "label": entry.label,
                    "requests": entry.requests,
                    "share": _num(entry.share, 6),
                }
                for entry in getattr(facts.top, name)
            ]
            for name in ("prefixes", "asns", "fingerprints", "user_agents")
        },
        "signatures": [
            {
                "id": record.id,
                "description": record.description,
                "conditions": dict(record.signature.conditions),
                "action": record.signature.action,
                "coverage": _num(record.signature.coverage, 6),
                "collateral": _num(record.signature.collateral, 6),
                "first_seen": _time(record.first_seen),
                "last_seen": _time(record.last_seen),
                "requests": record.requests,
                "decided_by": record.decided_by,
            }
            for record in facts.signatures
        ],
        "bans": [
            {
                "target": ban.target,
                "since": _time(ban.since),
                "until": _time(ban.until),
                "source": ban.source,
                "reason": ban.reason,
                "level": ban.level,
            }
            for ban in sorted(facts.bans, key=lambda ban: (ban.since, ban.target))
        ],
        "cert_answers": [
            {"key": item.key, "question": item.question, "answer": item.answer} for item in cert_answers(data)
        ],
        "series": {
            "columns": list(SERIES_COLUMNS),
            "points": [
                [
                    _time(point.wall),
                    point.seconds,
                    point.legit,
                    point.mitigated,
                    _num(point.latency_p95),
                    _num(point.distinct_clients, 1),
                    point.mode.value,
                ]
                for point in columns(data.points)
            ],
        },
    }


def render_json(data: ReportData) -> str:
    return json.dumps(report_document(data), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
