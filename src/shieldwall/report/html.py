"""The HTML report: one self-contained file (inline CSS and SVG, no script, no link to anything) that
reads on a screen and prints to PDF on A4 (print CSS: page margins, no section split across pages where
avoidable, colours kept, table headers repeated).

Every text that comes from data (a user agent, a reason, the site's name) goes through `html.escape`;
the structure around it is fixed, so the same `ReportData` always gives the same bytes.
"""

from __future__ import annotations

from html import escape
from typing import Final

from shieldwall import __version__
from shieldwall.report import summary, tables, words
from shieldwall.report.cert_questions import cert_answers, cert_text
from shieldwall.report.charts import charts
from shieldwall.report.model import ReportData

MAX_TIMELINE: Final = 500
MAX_BANS: Final = 200

_TLP_COLOURS: Final = {"clear": "#ffffff", "green": "#33ff00", "amber": "#ffc000", "red": "#ff2b2b"}

_STYLE: Final = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1b1b1b;
  max-width: 60rem; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: .4rem 0; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; border-bottom: 2px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.meta { color: #555; margin: 0; }
.tlp { display: inline-block; background: #000; font-weight: 700; padding: .15rem .5rem;
  letter-spacing: .05em; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .45rem; border-bottom: 1px solid #e3e3e3; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; white-space: nowrap; }
table.timed td:first-child, table.timed td:last-child { white-space: nowrap; }
table.keep th { width: 16rem; }
td { overflow-wrap: anywhere; }
.note { color: #555; font-size: .88rem; margin: .2rem 0 .8rem; }
figure { margin: .6rem 0 1.2rem; }
figcaption { color: #555; font-size: .88rem; }
svg.chart { width: 100%; height: auto; display: block; font-size: 11px; fill: #444; }
svg.chart .axis { stroke: #888; } svg.chart .tick { stroke: #888; }
svg.chart .grid { stroke: #e5e5e5; } svg.chart .limit { stroke: #555; stroke-dasharray: 5 4; }
dl.cert dt { font-weight: 700; margin-top: .8rem; }
dl.cert dd { margin: .2rem 0 0 1rem; white-space: pre-line; }
pre.paste { white-space: pre-wrap; background: #f6f6f6; border: 1px solid #ddd; padding: .8rem;
  font-size: .85rem; overflow-wrap: anywhere; }
footer { margin-top: 2.5rem; color: #666; font-size: .85rem; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10pt; max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  figure, tr, dl.cert dd, .keep { break-inside: avoid; }
  thead { display: table-header-group; }
  section#cert { break-before: page; }
  pre.paste { border: none; background: none; padding: 0; }
}
"""


_NUM: Final = ' class="num"'


def _e(text: str) -> str:
    return escape(text, quote=True)


def _table(
    table: tables.Table, *, numeric: frozenset[int] = frozenset(), heading: bool = True, timed: bool = False
) -> str:
    """`timed`: the first column is a time, kept on one line."""
    parts = [f'<h3 id="{table.key}">{_e(table.title)}</h3>'] if heading else []
    if table.rows:
        parts.append('<table class="timed">' if timed else "<table>")
        if any(table.headers):
            cells = "".join(
                f'<th scope="col"{_NUM if index in numeric else ""}>{_e(header)}</th>'
                for index, header in enumerate(table.headers)
            )
            parts.append(f"<thead><tr>{cells}</tr></thead>")
        parts.append("<tbody>")
        for row in table.rows:
            cells = "".join(
                f"<td{_NUM if index in numeric else ''}>{_e(cell)}</td>" for index, cell in enumerate(row)
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
    if table.note:
        parts.append(f'<p class="note">{_e(table.note)}</p>')
    return "".join(parts)


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{_e(title)}</h2>{body}</section>'


def _header(data: ReportData) -> str:
    facts = data.facts
    tlp = facts.tlp
    who = " · ".join(_e(part) for part in (facts.organisation, facts.site) if part)
    return (
        f'<header><p class="tlp" style="color: {_TLP_COLOURS[tlp]}">TLP:{tlp.upper()}</p>'
        f"<h1>Incident report: {_e(summary.site_name(data))}</h1>"
        f'<p class="meta">{who + " · " if who else ""}Incident {_e(data.incident_id)} · '
        f"report made {_e(words.utc(data.generated))}</p></header>"
    )


def _summary(data: ReportData) -> str:
    paragraphs = "".join(f"<p>{_e(text)}</p>" for text in summary.paragraphs(data))
    figures = tables.key_figures(data)
    rows = "".join(
        f'<tr><th scope="row">{_e(name)}</th><td>{_e(value)}</td></tr>' for name, value in figures.rows
    )
    return (
        f'<section id="summary"><h2>Summary</h2>{paragraphs}'
        f'<table class="keep"><tbody>{rows}</tbody></table></section>'
    )


def _charts(data: ReportData) -> str:
    figures = "".join(
        f'<figure id="{chart.key}-figure"><h3>{_e(chart.title)}</h3>{chart.svg}'
        f"<figcaption>{_e(chart.caption)} Times in UTC.</figcaption></figure>"
        for chart in charts(data)
    )
    return f'<section id="charts"><h2>Charts</h2>{figures or "<p>No traffic was recorded.</p>"}</section>'


def _sources(data: ReportData) -> str:
    found = tables.sources(data)
    body = "".join(
        _table(table, numeric=frozenset(range(len(table.headers) - 2, len(table.headers)))) for table in found
    )
    if not found:
        body = '<p class="note">The shield recorded no lists of sources for this incident.</p>'
    else:
        body += (
            '<p class="note">Shares are of all requests during the incident. Addresses in a flood are often '
            "hijacked devices or shared networks: sources of this attack, not necessarily its authors.</p>"
        )
    return f'<section id="sources"><h2>Top sources</h2>{body}</section>'


def _cert(data: ReportData) -> str:
    answers = "".join(
        f"<dt>{_e(item.question)}</dt><dd>{_e(item.answer)}</dd>" for item in cert_answers(data)
    )
    return (
        '<section id="cert"><h2>Answers for your CERT</h2>'
        '<p class="note">The questions a national CERT asks about an incident (they follow the UK NCSC\'s), '
        "answered from what the shield recorded. Replace every “[fill in: …]” before sending.</p>"
        f'<dl class="cert">{answers}</dl>'
        "<h3>The same, ready to paste</h3>"
        f'<pre class="paste">{_e(cert_text(data))}</pre></section>'
    )


def _about(data: ReportData) -> str:
    return (
        '<section id="about"><h2>About this report</h2><p class="note">'
        "Made by shieldwall from its own per-second counts of the traffic it handled. The attack's start "
        "and end are estimates: the first and last seconds well above the usual rate. "
        "“Filtered” counts requests the shield refused, rate-limited, challenged or shed. Distinct addresses "
        "are estimated (within about 1%). Figures after the first hour of a long incident are kept per "
        "minute or coarser, so very short spikes late in it may not show.</p></section>"
        f"<footer>shieldwall {_e(__version__)} · incident {_e(data.incident_id)}</footer>"
    )


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document."""
    title = f"Incident report {data.incident_id}: {summary.site_name(data)}"
    timeline = tables.timeline(data, MAX_TIMELINE)
    sections = [
        _header(data),
        _summary(data),
        _charts(data),
        _section("impact", "Impact on real visitors", _table(tables.impact(data), heading=False)),
        _section("timeline", "Timeline", _table(timeline, heading=False, timed=True)),
        _section("actions", "Actions taken", _table(tables.actions(data), heading=False, timed=True)),
        _sources(data),
        _section(
            "signatures",
            "Attack signatures",
            _table(tables.signatures(data), numeric=frozenset((3, 4, 5)), heading=False),
        ),
        _section("bans", "Bans", _table(tables.bans(data, MAX_BANS), heading=False, timed=True)),
        _cert(data),
        _about(data),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
