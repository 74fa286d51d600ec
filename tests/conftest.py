"""Fixtures every test folder may use."""

from helpers.redis_server import redis_server

__all__ = ["redis_server"]
