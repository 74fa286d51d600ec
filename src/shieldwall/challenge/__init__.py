"""Challenges, sans-io: a proof-of-work page (with a no-JavaScript wait) that a browser passes once to
earn a clearance cookie, so a challenged client proves it runs a browser instead of being refused.

    request without clearance ──▶ ChallengeService.challenge_page ──▶ 403 + page (page.py)
        page script solves the proof of work (or <noscript> waits) ──▶ GET /.shieldwall/verify?...
    ChallengeService.verify ──▶ Passed ──▶ Set-Cookie (clearance.py) + 303 to the original target
                            └─▶ Refused(Rejection) ──▶ logged; a new challenge
    later requests ──▶ ChallengeService.cleared_level(Cookie lines) ──▶ level or None

Modules: keys (master secret file, per-period keys), tokens (the one signing and encoding, with the
client binding), pow, nojs, clearance (the three kinds of token), replay (single use), target (no open
redirect), difficulty, endpoint (the verify URL), page + page_source (the page), solver (the search in
Python), service (the facade a worker uses). Every time is wall-clock epoch seconds, passed as `now`:
tokens cross worker processes and restarts.
"""
