"""Detector scenarios: folders of a config, a synthetic traffic description and the expected outcome,
run sans-io by `runner.py` (see README.md in this folder)."""
