"""Configuration: TOML → validated, frozen settings. See docs/configuration.md."""

from shieldwall.config.load import ConfigError, load_config, parse_config
from shieldwall.config.schema import Settings

__all__ = ["ConfigError", "Settings", "load_config", "parse_config"]
