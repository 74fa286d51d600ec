"""The servers of one drill setup, as child processes on 127.0.0.1: the campaign site, and in front of
it a shield (shieldwall run) or nginx with a careful admin's limits, or nothing (the site exposed).

`Stack` is a context manager: every process it started is stopped by PID on the way out, whatever
happened (see processes.Child). Configs are rendered from the templates in contrib/ (templates.py)
into the stack's work directory, next to each server's log, so a drill that went wrong can be read
afterwards.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from shieldwall.drill.campaign_site import SiteSettings
from shieldwall.drill.crawler import ranges_file_text
from shieldwall.drill.processes import HOST, Child, free_port
from shieldwall.drill.templates import NGINX_TEMPLATE, SHIELD_TEMPLATE, read_template, render

READY_TIMEOUT = 20.0
# attack_rps in the shipped config: 3x the home pages the site serves per second. Visitors stay far
# below it (a page then its cheap assets, then seconds of reading); any flood worth the name is above.
ATTACK_RPS_PER_CAPACITY = 3.0
SITE_ANNOUNCES = f"campaign site listening on {HOST}:"


@dataclass(frozen=True)
class Shield:
    """A started shield: its process and the state directory its control process writes."""

    child: Child
    state_dir: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.child.port}"


def shield_config_text(
    *, port: int, site_port: int, site: SiteSettings, state_dir: Path, crawler_ranges: Path, hold: float
) -> str:
    """contrib/drill/shieldwall.toml for a shield on `port` in front of the site on `site_port`."""
    values = {
        "STATE_DIR": str(state_dir),
        "PORT": str(port),
        "SITE_PORT": str(site_port),
        "SITE_WORKERS": str(site.workers),
        "CRAWLER_RANGES": str(crawler_ranges),
        "ATTACK_RPS": f"{ATTACK_RPS_PER_CAPACITY * site.capacity_rps:.1f}",
        "HOLD": f"{hold:.1f}",
        "ADMIN_PORT": str(free_port()),
    }
    return render(read_template(SHIELD_TEMPLATE), values)


def nginx_config_text(*, directory: Path, port: int, site_port: int) -> str:
    """contrib/nginx/limit.conf for nginx on `port` in front of the site, everything in `directory`."""
    values = {"DIR": str(directory), "PORT": str(port), "SITE_PORT": str(site_port)}
    return render(read_template(NGINX_TEMPLATE), values)


def nginx_available() -> bool:
    return shutil.which("nginx") is not None


class Stack:
    """Starts servers into `workdir` and stops every one of them when the `with` block ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.live: list[Child] = []
        workdir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        while self.live:
            self.live.pop().stop()

    def died(self) -> list[Child]:
        """The servers that exited by themselves."""
        return [child for child in self.live if child.popen.poll() is not None]

    def site(self, settings: SiteSettings) -> Child:
        """The campaign site with `settings`, on a port of its choosing."""
        argv = [
            sys.executable, "-m", "shieldwall.drill.campaign_site",
            "--listen", f"{HOST}:0",
            "--workers", str(settings.workers),
            "--service-ms", str(settings.service_ms),
            "--backlog", str(settings.backlog),
            "--max-connections", str(settings.max_connections),
            "--client-timeout", str(settings.client_timeout),
        ]  # fmt: skip
        child = Child.spawn("campaign site", argv, self.workdir / "site.log", capture_stdout=True)
        child.read_announced_port(SITE_ANNOUNCES, READY_TIMEOUT)
        self.live.append(child)
        return child

    def shield(
        self,
        site_port: int,
        site: SiteSettings,
        *,
        crawler_source: str,
        hold: float,
        config: Path | None = None,
    ) -> Shield:
        """A shield in front of the site: the shipped drill config (rendered for this site, with the
        crawler's address list), or the operator's `config` with the listener and upstream overridden."""
        port = free_port()
        if config is None:
            state_dir = self.workdir / "shield-state"
            ranges = self.workdir / "crawler-ranges.txt"
            ranges.write_text(ranges_file_text(crawler_source), encoding="utf-8")
            config = self.workdir / "shieldwall.toml"
            text = shield_config_text(
                port=port,
                site_port=site_port,
                site=site,
                state_dir=state_dir,
                crawler_ranges=ranges,
                hold=hold,
            )
            config.write_text(text, encoding="utf-8")
        else:
            from shieldwall.config import load_config  # noqa: PLC0415 (pydantic: only when drilling a file)

            state_dir = load_config(config).server.state_dir
        argv = [
            sys.executable, "-m", "shieldwall", "run",
            "--config", str(config),
            "--upstream", f"http://{HOST}:{site_port}",
            "--listen", f"{HOST}:{port}",
        ]  # fmt: skip
        child = Child.spawn("shieldwall", argv, self.workdir / "shield.log", port=port)
        child.wait_accepting(READY_TIMEOUT)
        self.live.append(child)
        return Shield(child, state_dir)

    def nginx(self, site_port: int) -> Child:
        """nginx with contrib/nginx/limit.conf in front of the site, its files in workdir/nginx."""
        directory = self.workdir / "nginx"
        directory.mkdir(exist_ok=True)
        port = free_port()
        config = directory / "nginx.conf"
        config.write_text(nginx_config_text(directory=directory, port=port, site_port=site_port))
        argv = ["nginx", "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
        child = Child.spawn("nginx", argv, directory / "nginx.log", port=port)
        child.wait_accepting(READY_TIMEOUT)
        self.live.append(child)
        return child
