"""Incident reports: what happened, for the people defending the site and for their national CERT.

Sans-io: every renderer is a pure function of a `model.ReportData` to text, so the same input always
gives the same bytes (golden files compare them), and the CLI, the admin API and the dashboard all
serve the one report. `model.build_report()` assembles the data from a detector `Incident` and the
optional `facts.ReportFacts` only other parts of the shield (or the operator) know: who the
organisation is, the signatures and bans in force, the top sources, actions taken by people.

Formats (`formats.render` picks one by name): `html.render_html` (self-contained, printable, with the
inline SVG of `charts.py`), `markdown.render_markdown` (chat, email), `json_report.render_json`
(ticketing; versioned schema), `stix.render_stix` (STIX 2.1 bundle; the only module that imports the
stix2 library). They share their words: `summary.py` (the plain-words story), `tables.py` (every
table's rows), `cert_questions.py` (a CERT's questions answered) and `words.py` (times, numbers).
`store.py` reads and saves incidents and their facts (state/incident_store.py keeps them in SQLite).
"""
