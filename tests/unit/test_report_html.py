"""The HTML report: one well-formed, self-contained document (no script, no external resource) with
every section and chart, print CSS, everything from data escaped, the same bytes for the same input,
and a bounded size however long the incident."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from report_sample import HOSTILE_AGENT, detector_incident, hour_incident, sample_facts
from test_detector_detector import WALL0

from shieldwall.detector.incidents import Incident, Series
from shieldwall.report.charts import MAX_COLUMNS, columns
from shieldwall.report.facts import ReportFacts
from shieldwall.report.html import render_html
from shieldwall.report.model import ReportData, build_report

VOID = {"meta", "br", "hr", "img", "input", "link"}
SECTIONS = (
    "summary",
    "charts",
    "impact",
    "timeline",
    "actions",
    "sources",
    "signatures",
    "bans",
    "cert",
    "about",
)


class Checker(HTMLParser):
    """Fails on a tag closed out of order; collects ids and every attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
            if name == "id":
                self.ids.append(value or "")

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        opened = self.stack.pop()
        assert opened == tag, f"</{tag}> closes <{opened}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(document: str) -> Checker:
    checker = Checker()
    checker.feed(document)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return checker


@pytest.fixture(scope="module")
def data() -> ReportData:
    incident = detector_incident()
    return build_report(incident, sample_facts(incident), generated=(incident.closed or 0.0) + 600)


@pytest.fixture(scope="module")
def page(data: ReportData) -> str:
    return render_html(data)


def test_the_document_is_well_formed_with_unique_ids(page: str) -> None:
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    checker = check(page)
    assert len(checker.ids) == len(set(checker.ids))


def test_every_section_is_there(page: str) -> None:
    checker = check(page)
    assert [i for i in checker.ids if i in SECTIONS] == list(SECTIONS)
    text = " ".join(checker.text)
    for words in (
        "Incident report: www.example.gov.uk",
        "TLP:AMBER",
        "Example Borough Council",
        "Top networks (/24 or /64)",
        "Top networks by ASN",
        "Top user agents",
        "Top client fingerprints",
        "Time slowed down",
        "Full speed back",
        "Requests answered successfully",
        "Has any data been accessed, lost or changed?",
        "Called the hosting provider",
        "Jane Doe",
        "sig-029f3aa7f0",
        "Collateral",
        "198.51.100.0/24",
        "ready to paste",
    ):
        assert words in text, words


def test_five_inline_svg_charts_with_titles(page: str) -> None:
    checker = check(page)
    assert checker.tags.count("svg") == 5
    titles = re.findall(r'<svg [^>]*aria-labelledby="(chart-[a-z]+)-title', page)
    assert titles == ["chart-rate", "chart-mode", "chart-served", "chart-latency", "chart-clients"]
    assert page.count("<polygon") == 2 and page.count("<polyline") == 3


def test_self_contained_no_script_no_external_resource(page: str) -> None:
    checker = check(page)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(checker.tags)
    for tag, name, value in checker.attributes:
        assert name not in ("src", "href", "xlink:href", "action"), (tag, name, value)
        assert not name.startswith("on"), (tag, name)
        assert "url(" not in value and "http" not in value, (tag, name, value)
    style = page[page.index("<style>") : page.index("</style>")]
    assert "url(" not in style and "@import" not in style and "http" not in style


def test_print_css(page: str) -> None:
    assert "@media print" in page and "@page { size: A4" in page
    assert "break-inside: avoid" in page and "print-color-adjust: exact" in page


def test_data_is_escaped(page: str) -> None:
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "credential stuffing &lt;again&gt;" in page
    assert "&amp;amp;" in page  # an entity sent by the attacker shows as typed
    assert HOSTILE_AGENT in " ".join(check(page).text)


def test_the_same_input_gives_the_same_bytes(data: ReportData, page: str) -> None:
    incident = detector_incident()
    again = build_report(incident, sample_facts(incident), generated=data.generated)
    assert render_html(again) == page


def test_without_facts_the_report_says_what_is_missing() -> None:
    incident = detector_incident()
    page = render_html(build_report(incident, generated=incident.opened + 10))
    text = " ".join(check(page).text)
    assert "Incident report: the website" in text
    assert "The shield recorded no lists of sources for this incident." in text
    assert "No signature was used." in text and "No address was banned." in text
    assert "[fill in: your organisation" in text


def test_an_empty_incident_renders() -> None:
    incident = Incident("INC-20240610-000000", WALL0, Series(3600, 10, 60))
    page = render_html(build_report(incident, ReportFacts(tlp="red"), generated=WALL0 + 5))
    checker = check(page)
    assert "svg" not in checker.tags and "No traffic was recorded." in " ".join(checker.text)
    assert "TLP:RED" in page and "ongoing as of" in page


def test_an_hour_long_incident_stays_small() -> None:
    incident = hour_incident()
    data = build_report(incident, sample_facts(incident), generated=WALL0 + 4000)
    page = render_html(data)
    check(page)
    assert len(columns(data.points)) <= MAX_COLUMNS
    longest = max(len(points.split()) for points in re.findall(r'points="([^"]*)"', page))
    assert longest <= 2 * MAX_COLUMNS  # a polygon goes along the top and back along the bottom
    assert len(page.encode()) < 250_000
