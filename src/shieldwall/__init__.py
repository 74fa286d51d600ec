"""shieldwall: a self-hosted HTTP DDoS shield."""

__version__ = "0.1.0"
