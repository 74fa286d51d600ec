"""Traffic and targets for drills, demos and tests: the demo origin, the quick demo (loopback only)."""
