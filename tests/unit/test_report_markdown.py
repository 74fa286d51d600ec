"""The Markdown report: its headings and tables, data that renders as typed (no HTML, emphasis or link
smuggled in by a user agent), and the CERT answers in a fence no value can close."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt
from report_sample import HOSTILE_AGENT, detector_incident, sample_facts

from shieldwall.report.cert_questions import cert_text
from shieldwall.report.facts import ReportFacts
from shieldwall.report.markdown import escape_md, render_markdown
from shieldwall.report.model import ReportData, build_report


@pytest.fixture(scope="module")
def data() -> ReportData:
    incident = detector_incident()
    return build_report(incident, sample_facts(incident), generated=(incident.closed or 0.0) + 600)


@pytest.fixture(scope="module")
def text(data: ReportData) -> str:
    return render_markdown(data)


def test_headings_in_order(text: str) -> None:
    headings = re.findall(r"^(#+) (.*)$", text, flags=re.MULTILINE)
    assert headings == [
        ("#", "Incident report: www.example.gov.uk"),
        ("##", "Summary"),
        ("##", "Impact on real visitors"),
        ("##", "Timeline"),
        ("##", "Actions taken"),
        ("##", "Top sources"),
        ("###", "Top networks (/24 or /64)"),
        ("###", "Top networks by ASN"),
        ("###", "Top client fingerprints (header order)"),
        ("###", "Top user agents"),
        ("##", "Attack signatures"),
        ("##", "Bans"),
        ("##", "Answers for your CERT"),
    ]


def test_every_table_row_has_the_headers_width(text: str) -> None:
    """Escaped pipes in a value do not split its cell."""
    tables = re.findall(r"(?:^\|.*\n)+", text, flags=re.MULTILINE)
    assert len(tables) == 10  # key figures, impact, timeline, actions, 4 top sources, signatures, bans
    for table in tables:
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(widths) == 1, table


def test_escaping() -> None:
    assert escape_md("a*b_c`d[e]f<g>h|i&j~k#l\\m") == r"a\*b\_c\`d\[e\]f\<g\>h\|i\&j\~k\#l\\m"
    assert escape_md("see http://evil.example/x") == r"see http:\//evil.example/x"
    assert escape_md("two\nlines\tand  spaces") == "two lines and spaces"


def test_hostile_values_render_as_typed(text: str) -> None:
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script" not in rendered and "<a " not in rendered
    assert "<strong>bold</strong>" not in rendered and "<code>code</code>" not in rendered
    assert "&lt;script&gt;alert(" in rendered
    assert "<h2>Summary</h2>" in rendered and "<table>" in rendered


def test_the_cert_answers_are_fenced_as_plain_text(data: ReportData, text: str) -> None:
    answers = cert_text(data)
    assert f"```text\n{answers}```\n" in text
    assert HOSTILE_AGENT in answers  # as typed, inside the fence


def test_a_fence_no_value_can_close() -> None:
    incident = detector_incident()
    facts = ReportFacts(notes="look: ```` and ``` here")
    text = render_markdown(build_report(incident, facts, generated=0.0))
    assert "`````text\n" in text and text.rstrip().endswith("`````")


def test_the_same_input_gives_the_same_text(data: ReportData, text: str) -> None:
    assert render_markdown(data) == text
