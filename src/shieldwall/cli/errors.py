"""How every `shieldwall` command reports a bad configuration: all problems, one per line, exit 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from shieldwall.config import ConfigError

EXIT_BAD_CONFIG = 2


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Print every problem of a ConfigError to stderr, one per line, and exit 2."""
    try:
        yield
    except ConfigError as error:
        count = len(error.problems)
        click.echo(f"{error.source}: {count} problem{'' if count == 1 else 's'}", err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_BAD_CONFIG)
