"""Rate limiters over bounded key tables. Sans-io: every call takes `now` from an injected clock."""
