"""What the operator commands (`bans`, `mode`) share: the --config option and loading it."""

from __future__ import annotations

from pathlib import Path

import click

from shieldwall.cli.errors import exit_on_config_error
from shieldwall.config import Settings, load_config

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

config_option = click.option(
    "--config",
    "config_path",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="The shield's TOML configuration (for server.state_dir and the other settings these commands "
    "read). Default: none, every setting at its default.",
)


def load_settings(config_path: Path | None) -> Settings:
    """The configuration, or every problem in it on stderr and exit 2 (as `check-config` prints them)."""
    with exit_on_config_error():
        settings = load_config(config_path)
    return settings
