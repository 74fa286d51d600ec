"""Sans-io foundations: clocks, errors with status hints, reference IDs. Stdlib only."""
