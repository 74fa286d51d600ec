"""The report formats by name, for every front end (the CLI, the admin API, the dashboard): what each is
called, its media type and file suffix, and `render()`. Renderers are imported when used: STIX loads the
stix2 library, which the other formats do not need."""

from __future__ import annotations

from typing import Final, Literal, get_args

from shieldwall.report.model import ReportData

Format = Literal["html", "md", "json", "stix"]
FORMATS: Final[tuple[Format, ...]] = get_args(Format)
MEDIA_TYPES: Final[dict[Format, str]] = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "stix": "application/stix+json;version=2.1",
}
SUFFIXES: Final[dict[Format, str]] = {"html": ".html", "md": ".md", "json": ".json", "stix": ".stix.json"}


def render(data: ReportData, fmt: Format) -> str:
    if fmt == "html":
        from shieldwall.report.html import render_html  # noqa: PLC0415

        return render_html(data)
    if fmt == "md":
        from shieldwall.report.markdown import render_markdown  # noqa: PLC0415

        return render_markdown(data)
    if fmt == "json":
        from shieldwall.report.json_report import render_json  # noqa: PLC0415

        return render_json(data)
    from shieldwall.report.stix import render_stix  # noqa: PLC0415

    return render_stix(data)
