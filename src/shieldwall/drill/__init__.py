"""Drills and the demo: the campaign site and the test origin, visitors and attacks on loopback, and the
runner that scores a shield against them (`shieldwall drill`, `shieldwall demo`)."""
