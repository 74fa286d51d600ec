"""The `shieldwall` command line (entry point: shieldwall.cli.main:main). Nothing imports this package."""
