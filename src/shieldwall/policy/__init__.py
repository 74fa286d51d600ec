"""The policy engine: for every request, allow / limit / block (challenge, shed and cache come later).

Sans-io: `Policy.decide(view, now) -> Decision` over a frozen `RequestView`; rules are compiled once from
the configuration (`policy.compile`). See docs/policy.md.
"""
