"""The detector: per-second telemetry in, a mode (normal / elevated / under attack), signatures and
incidents out. Sans-io: time is always an argument.

Workers count each second in `counters.SecondCounters` (with the bounded sketches of `sketches.py`) and
send a `WorkerSecond`; the supervisor merges them into a `Second` and hands it to `detector.Detector`,
which reads the metrics and judges them (`judge.py`) against learned baselines (`baseline.py`, with
`newclients.py`), moves the mode ladder (`modes.py`) and keeps the incident (`incidents.py`). Knobs are
in `config.DetectorConfig`; events are `events.Event`. The signature miner (`signatures.py`) works on
the feature vectors of `features.py`, sampled per second.
"""
