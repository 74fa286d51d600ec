"""The only package with asyncio/uvloop/httptools socket code. See docs/architecture.md."""
