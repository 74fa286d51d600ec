"""Reading every file a configuration names (TLS certificates and keys, crawler address lists, ASN and
country data) before anything runs on it: `check-config` and `run` report a missing or broken one with
the other problems, and a reload with a broken one keeps the running configuration."""

from __future__ import annotations

from shieldwall.config import ConfigError, Settings
from shieldwall.config.client_data_schema import open_client_data
from shieldwall.net.crawlers import load_crawler_ranges
from shieldwall.net.ipdata import DataFileError


def check_files(settings: Settings, source: str) -> None:
    """Read every file the configuration names (TLS certificates and keys, crawler address lists, ASN
    and country data) now, so a missing or broken one is reported with the other problems instead of
    when a worker starts. For `run`, the data stays open for the workers (client_data_schema.py)."""
    problems: list[str] = []
    if any(listener.tls for listener in settings.listeners):
        from shieldwall.dataplane.tls import build_server_context  # noqa: PLC0415 (loads cryptography)

        for index, listener in enumerate(settings.listeners):
            if listener.tls:
                try:
                    build_server_context(
                        listener.certificates, config_path=f"listeners[{index}].certificates"
                    )
                except ConfigError as error:
                    problems.extend(error.problems)
    for name, path in settings.crawlers.ranges.items():
        try:
            load_crawler_ranges(path)
        except DataFileError as exc:
            problems.append(
                f"crawlers.ranges.{name}: {exc}; give the JSON list the engine publishes, or one CIDR a line"
            )
    try:
        open_client_data(settings.client_data)
    except DataFileError as exc:
        index = [str(path) for path in settings.client_data.ipdata].index(exc.path)
        problems.append(
            f"client_data.ipdata[{index}]: {exc}; give iptoasn's ip2asn-combined.tsv (or .tsv.gz) "
            "or a MaxMind .mmdb file"
        )
    if problems:
        raise ConfigError(source, problems)
