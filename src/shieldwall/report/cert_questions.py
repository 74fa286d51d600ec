"""Answers to a national CERT's standard incident questions, ready to paste into its form or an email.

The questions follow the UK NCSC's. Its guidance "Reporting a cyber security incident" asks: who are
you; what organisation are you reporting for; your role; your contact details; a summary of your
understanding of the incident, including any impact to services and/or users; what investigations
and/or mitigations you or a third party have performed or plan to perform; the output of any technical
analysis; who else has been informed; your planned next steps
(https://www.ncsc.gov.uk/articles/get-help-significant-cyber-incident-guidance). Its online form
(https://report.ncsc.gov.uk/, "Cyber Security Incident Form") starts with the reporter's name, phone,
a contact email on an uncompromised system and a company email. The timing, affected-service,
ongoing and data-loss questions that national forms (NCSC-NL's, for one) also ask are split out of the
NCSC's summary point, so that each answer fits one field.

What the shield does not know (who the reporter is, who else was told, the next steps) is left as a
"[fill in: ...]" placeholder rather than guessed, unless the report's facts give it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shieldwall.report import summary, words
from shieldwall.report.facts import AUTOMATIC
from shieldwall.report.model import ReportData

FILL_IN: Final = "[fill in: "
TOP_LISTED: Final = 10  # networks, ASNs and user agents named in the indicators answer


@dataclass(frozen=True, slots=True)
class CertAnswer:
    key: str  # stable, for the JSON report
    question: str
    answer: str  # plain text; lines starting with "- " are a list


def _fill(what: str) -> str:
    return f"{FILL_IN}{what}]"


def _reporter(data: ReportData) -> str:
    contact = data.facts.contact
    name = contact.name or _fill("your name")
    role = contact.role or _fill("your role")
    return f"{name}, {role}"


def _contact(data: ReportData) -> str:
    contact = data.facts.contact
    email = contact.email or _fill("an email address on a system the attack has not touched")
    phone = contact.phone or _fill("a phone number")
    return f"Email: {email}\nPhone: {phone}"


def _timing(data: ReportData) -> str:
    lines = [
        f"Started: {words.utc(data.started)} (estimated from the traffic the shield saw)",
        f"Detected: {words.utc(data.detected)} (by shieldwall, automatically)",
    ]
    if data.under_attack is not None:
        lines.append(f"Under-attack mode: from {words.utc(data.under_attack)}")
    if data.closed is None:
        lines.append(f"Ended: no, the incident is ongoing (as of {words.utc(data.generated)})")
    else:
        ended = data.ended if data.ended is not None else data.closed
        lines.append(f"Attack traffic ended: {words.utc(ended)} (estimate)")
        lines.append(f"Back to normal operation: {words.utc(data.closed)}")
    return "\n".join(lines)


def _affected(data: ReportData) -> str:
    site = data.facts.site or _fill("the website's address")
    origin = f" ({data.facts.origin})" if data.facts.origin else ""
    return (
        f"The public website {site}{origin}, behind the shieldwall reverse proxy. shieldwall sees only "
        "the web (HTTP) traffic that passes through it: it cannot tell whether other systems or the "
        "network link itself were attacked at the same time."
    )


def _impact(data: ReportData) -> str:
    impact = data.impact
    lines = [summary.impact_on_visitors(data)]
    if impact.usual_legit_rps is not None and impact.legit_rps_during is not None:
        lines.append(
            f"Requests served per second while the attack lasted: {words.rate(impact.legit_rps_during)} on "
            f"average, against {words.rate(impact.usual_legit_rps)} before it (this counts anything the "
            "filters let through)."
        )
    if impact.challenges_issued:
        passed = impact.challenges_passed or 0
        lines.append(
            f"Check pages shown: {words.count(impact.challenges_issued)}; passed: {words.count(passed)} "
            "(a real browser passes; most attack tools do not)."
        )
    ongoing = "yes" if data.ongoing else "no"
    lines.append(f"Is the incident ongoing? {ongoing}.")
    return "\n".join(lines)


def _actions(data: ReportData) -> str:
    if not data.actions:
        return "No action was recorded."
    lines = []
    for action in data.actions:
        who = "automatic" if action.by == AUTOMATIC else f"by {action.by}"
        lines.append(f"- {words.utc(action.at)}: {action.what} ({who})")
    return "\n".join(lines)


def _indicators(data: ReportData) -> str:
    top = data.facts.top
    lines = [
        f"Peak: {words.rate(data.peak_rps)} requests per second from about "
        f"{words.count(data.peak_distinct_clients)} distinct addresses."
    ]
    for title, entries in (
        ("Top attacking networks", top.prefixes),
        ("Top networks by ASN", top.asns),
        ("Top user agents", top.user_agents),
    ):
        if entries:
            shown = ", ".join(
                f"{entry.value}{f' ({entry.label})' if entry.label else ''} {words.percent(entry.share)}"
                for entry in entries[:TOP_LISTED]
            )
            lines.append(f"{title} (share of all requests): {shown}")
    for record in data.facts.signatures:
        lines.append(f"Attack signature {record.id}: {record.description}")
    if len(lines) == 1:
        lines.append("The shield recorded no lists of sources for this incident.")
    lines.append(
        "Addresses of a flood are often hijacked devices or shared networks: treat them as sources of this "
        "attack, not as the people behind it."
    )
    return "\n".join(lines)


def _data_loss() -> str:
    return (
        "No data access is known. This was a denial-of-service attack: a flood of requests meant to make "
        "the website unavailable, which does not by itself read or change data. The shield saw only the "
        "web requests that passed through it; it cannot see other systems, so it cannot rule out that the "
        "flood covered another intrusion. Check the web server's and other systems' logs if in doubt."
    )


def _other(data: ReportData) -> str:
    lines = [
        f"shieldwall incident reference: {data.incident_id}. Handling: TLP:{data.facts.tlp.upper()}.",
        "Figures come from the shield's own per-second counts; start and end times are estimates from "
        "the traffic.",
    ]
    if data.facts.notes:
        lines.append(data.facts.notes)
    return "\n".join(lines)


def cert_answers(data: ReportData) -> tuple[CertAnswer, ...]:
    facts = data.facts
    return (
        CertAnswer("reporter", "Who are you, and what is your role in the organisation?", _reporter(data)),
        CertAnswer("contact", "Your contact details", _contact(data)),
        CertAnswer(
            "organisation",
            "Which organisation are you reporting the incident for?",
            facts.organisation or _fill("your organisation's name"),
        ),
        CertAnswer(
            "summary",
            "Your understanding of the incident",
            " ".join(
                (summary.what_happened(data), summary.what_the_shield_did(data), summary.how_long(data))
            ),
        ),
        CertAnswer("timing", "When did it start, when was it detected, and has it ended?", _timing(data)),
        CertAnswer("affected", "Which systems or services are affected?", _affected(data)),
        CertAnswer("impact", "What is the impact on the service and its users?", _impact(data)),
        CertAnswer(
            "actions",
            "What investigations and mitigations have been performed or are planned?",
            _actions(data),
        ),
        CertAnswer("indicators", "Technical analysis: what indicators do you have?", _indicators(data)),
        CertAnswer("data", "Has any data been accessed, lost or changed?", _data_loss()),
        CertAnswer(
            "informed",
            "Who else has been informed about this incident?",
            facts.informed or _fill("e.g. your hosting provider, your internet provider, the police"),
        ),
        CertAnswer(
            "next_steps", "What are your planned next steps?", facts.next_steps or _fill("your next steps")
        ),
        CertAnswer("other", "Anything else?", _other(data)),
    )


def cert_text(data: ReportData) -> str:
    """The answers as plain text, numbered, one blank line between them: paste into an email as is."""
    blocks = []
    for number, item in enumerate(cert_answers(data), start=1):
        answer = "\n".join(f"   {line}" for line in item.answer.splitlines())
        blocks.append(f"{number}. {item.question}\n{answer}")
    return "\n\n".join(blocks) + "\n"
