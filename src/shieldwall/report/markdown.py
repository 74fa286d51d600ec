"""The Markdown report, for chat and email: the summary, the tables and the CERT answers, no charts.

Text from data is escaped for CommonMark/GitHub Markdown: the characters that could start emphasis,
code, a link, an HTML tag, an entity, strikethrough or break a table cell are backslash-escaped, so is
the "/" of "://" (no autolink), and values are kept to one line: a user agent like "<img src=x>|**"
shows as typed. The CERT answers go in a fenced block (fenced with more backticks than any run inside),
ready to copy as plain text.
"""

from __future__ import annotations

import re
from typing import Final

from shieldwall.report import summary, tables, words
from shieldwall.report.cert_questions import cert_text
from shieldwall.report.model import ReportData

MAX_TIMELINE: Final = 100
MAX_BANS: Final = 50
_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>|~&#])")


def escape_md(text: str) -> str:
    """One line of text that renders as typed: specials backslash-escaped, "://" as ":\\//" so that no
    address an attacker sent becomes a clickable link."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split())).replace("://", ":\\//")


def _table(table: tables.Table) -> list[str]:
    lines = []
    if table.rows:
        lines.append("| " + " | ".join(escape_md(header) for header in table.headers) + " |")
        lines.append("|" + "|".join("---" for _ in table.headers) + "|")
        lines += ["| " + " | ".join(escape_md(cell) for cell in row) + " |" for row in table.rows]
        lines.append("")
    if table.note:
        lines += [f"_{escape_md(table.note)}_", ""]
    return lines


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(data: ReportData) -> str:
    facts = data.facts
    meta = [f"**TLP:{facts.tlp.upper()}**"]
    meta += [escape_md(part) for part in (facts.organisation, facts.site) if part]
    meta += [f"Incident {escape_md(data.incident_id)}", f"report made {words.utc(data.generated)}"]
    lines = [f"# Incident report: {escape_md(summary.site_name(data))}", "", " · ".join(meta), ""]
    lines += ["## Summary", ""]
    for paragraph in summary.paragraphs(data):
        lines += [escape_md(paragraph), ""]
    lines += _table(tables.key_figures(data))
    lines += ["## Impact on real visitors", "", *_table(tables.impact(data))]
    lines += ["## Timeline", "", *_table(tables.timeline(data, MAX_TIMELINE))]
    lines += ["## Actions taken", "", *_table(tables.actions(data))]
    lines += ["## Top sources", ""]
    found = tables.sources(data)
    for table in found:
        lines += [f"### {escape_md(table.title)}", "", *_table(table)]
    if not found:
        lines += ["_The shield recorded no lists of sources for this incident._", ""]
    lines += ["## Attack signatures", "", *_table(tables.signatures(data))]
    lines += ["## Bans", "", *_table(tables.bans(data, MAX_BANS))]
    answers = cert_text(data)
    fence = _fence(answers)
    lines += [
        "## Answers for your CERT",
        "",
        "_The questions a national CERT asks (they follow the UK NCSC's), answered from what the shield "
        "recorded. Replace every \\[fill in: …\\] before sending._",
        "",
        f"{fence}text",
        answers.rstrip("\n"),
        fence,
        "",
    ]
    return "\n".join(lines)
