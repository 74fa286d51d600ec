"""State that outlives a process: bans on disk under `server.state_dir` (later: Redis for clusters)."""
