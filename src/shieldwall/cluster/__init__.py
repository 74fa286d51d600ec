"""Several nodes as one shield: the Redis side of `[cluster]` (docs/scaling.md, docs/architecture.md)."""
