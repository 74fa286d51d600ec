"""Test helpers shared by the integration suite (import as `from helpers.x import ...`)."""
