"""The report's story in plain words: what an operator at a council or a charity can paste into an email
to their CERT or their director without editing. Every format shows these same paragraphs.

No jargon without its meaning beside it, figures rounded the way people say them, UTC times, and
nothing claimed that the shield did not measure: where a figure is missing the text says so."""

from __future__ import annotations

from shieldwall.detector.events import Mode
from shieldwall.report import words
from shieldwall.report.model import ReportData


def site_name(data: ReportData) -> str:
    return data.facts.site or "the website"


def _when(wall: float, since: float) -> str:
    """'06:18:21 UTC', or the full date and time when `wall` is on another day than `since`."""
    if words.day(wall) == words.day(since):
        return f"{words.clock(wall)} UTC"
    return words.utc(wall)


def what_happened(data: ReportData) -> str:
    site = site_name(data)
    if data.peak_mode is Mode.UNDER_ATTACK:
        what = "a flood of web requests meant to overwhelm it (an HTTP denial-of-service attack)"
    elif data.peak_mode is Mode.ELEVATED:
        what = (
            "an unusual surge of web requests; the shield went on guard but did not judge it a "
            "denial-of-service attack"
        )
    else:
        what = "traffic that an operator chose to treat as an incident"
    text = f"On {words.day(data.started)} at {words.clock(data.started)} UTC, {site} received {what}."
    peak = f" At its peak it received {words.rate(data.peak_rps)} requests per second"
    if data.peak_distinct_clients >= 1:
        peak += f" from about {words.count(data.peak_distinct_clients)} different addresses"
    if data.usual_rps and data.peak_rps >= 2 * data.usual_rps:
        ratio = data.peak_rps / data.usual_rps
        peak += f", {ratio:,.0f} times its usual rate of {words.rate(data.usual_rps)} per second"
    return text + peak + "."


def what_the_shield_did(data: ReportData) -> str:
    text = f"shieldwall detected it at {_when(data.detected, data.started)}"
    if data.detected - data.started >= 1:
        text += f", {words.duration(data.detected - data.started)} after it began"
    if data.under_attack is not None:
        text += f", and switched to under-attack mode at {_when(data.under_attack, data.started)}"
    text += "."
    if data.requests:
        share = words.percent(data.mitigated / data.requests)
        text += (
            f" It filtered {words.count(data.mitigated)} of the {words.count(data.requests)} requests "
            f"({share}): they were refused, rate-limited or challenged before reaching the web server."
        )
    signatures, bans = len(data.facts.signatures), len(data.facts.bans)
    if signatures or bans:
        done = []
        if signatures:
            done.append(f"{words.plural(signatures, 'attack signature')} to pick out the attack traffic")
        if bans:
            done.append(f"{words.plural(bans, 'ban')} on addresses that kept attacking")
        text += f" It used {' and '.join(done)}."
    return text


def how_long(data: ReportData) -> str:
    if data.closed is None:
        return (
            f"As of {words.utc(data.generated)} the incident is still open: it has lasted "
            f"{words.duration(data.generated - data.started)} so far."
        )
    ended = data.ended if data.ended is not None else data.closed
    return (
        f"The attack lasted {words.duration(ended - data.started)}, until {_when(ended, data.started)}; "
        f"the shield went back to normal operation at {_when(data.closed, data.started)}."
    )


def impact_on_visitors(data: ReportData) -> str:
    impact = data.impact
    parts = []
    if impact.success_rate is not None:
        answered = (
            f"{words.percent(impact.success_rate)} of the requests that reached the website were answered"
        )
        if impact.success_rate_before is not None:
            answered += f" (usually {words.percent(impact.success_rate_before)})"
        parts.append(f"Real visitors: {answered}.")
    if impact.slowed_seconds is None:
        parts.append(
            "The shield has no record of the web server's usual response time from before the attack, so it "
            "cannot say whether visitors were slowed down."
        )
    elif impact.slowed_seconds == 0:
        parts.append("The website's response time stayed normal throughout.")
    else:
        slow = f"Pages were slower than usual for {words.duration(impact.slowed_seconds)} in total"
        slow += f" (worst {words.millis(impact.worst_latency)}"
        if impact.usual_latency is not None:
            slow += f", against {words.millis(impact.usual_latency)} usually"
        slow += ")"
        if impact.time_to_full_speed is None:
            slow += "; the website is not yet back to full speed."
        else:
            slow += (
                f"; full speed was back {words.duration(impact.time_to_full_speed)} after the attack began."
            )
        parts.append(slow)
    return " ".join(parts)


def paragraphs(data: ReportData) -> tuple[str, ...]:
    """The summary: what happened, what the shield did, how long it lasted, what visitors noticed."""
    return (what_happened(data), what_the_shield_did(data), how_long(data), impact_on_visitors(data))
