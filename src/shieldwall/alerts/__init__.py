"""Alerts: telling people when an attack starts, escalates and ends, without flooding them.

`policy` (sans-io) decides which detector events alert and how many reach each destination;
`messages` renders them (generic JSON, Slack, Teams, email); `senders` delivers them from the control
process's event loop; `alerter` ties the three to the `[alerts]` configuration.
"""
