"""The configs a drill renders from contrib/: every placeholder filled (and no stray one), the shield's
file valid for `shieldwall run` with the drill's figures in it, nginx's with its limits and ports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shieldwall.config import load_config
from shieldwall.drill.campaign_site import SiteSettings
from shieldwall.drill.crawler import SOURCE, ranges_file_text
from shieldwall.drill.stack import nginx_config_text, shield_config_text
from shieldwall.drill.templates import NGINX_TEMPLATE, SHIELD_TEMPLATE, render
from shieldwall.net.crawlers import load_crawler_ranges


def test_render_fills_every_placeholder_and_refuses_gaps_and_extras():
    assert render("a @@X@@ b @@Y_2@@ @@X@@", {"X": "1", "Y_2": "2"}) == "a 1 b 2 1"
    assert render("an @@ alone, and @@lower@@", {}) == "an @@ alone, and @@lower@@"
    with pytest.raises(ValueError, match=r"without a value: \['Y'\]"):
        render("@@X@@ @@Y@@", {"X": "1"})
    with pytest.raises(ValueError, match=r"values without one: \['Z'\]"):
        render("@@X@@", {"X": "1", "Z": "2"})


def test_the_shield_config_is_valid_and_carries_the_drills_figures(tmp_path: Path):
    ranges = tmp_path / "ranges.txt"
    ranges.write_text(ranges_file_text())
    path = tmp_path / "shield.toml"
    text = shield_config_text(
        port=18080, site_port=19090, site=SiteSettings(workers=6, service_ms=40.0),
        state_dir=tmp_path / "state", crawler_ranges=ranges, hold=7.0,
    )  # fmt: skip
    assert "@@" not in re.sub(r"placeholders between @@ marks", "", text)
    path.write_text(text)
    settings = load_config(path)
    assert settings.listeners[0].address == "127.0.0.1:18080"
    assert settings.upstream.url == "http://127.0.0.1:19090"
    assert settings.server.state_dir == tmp_path / "state"
    assert settings.admission.enabled and settings.admission.fixed_limit == 6
    assert settings.admission.critical_paths == ("/donate", "/volunteer")
    assert settings.detector.attack_rps == 3 * 6 * 1000 / 40.0  # 3x the site's capacity
    assert (settings.detector.hold, settings.detector.warmup) == (7.0, 10)
    assert settings.detector.under_attack.challenge_all and not settings.rules  # no challenge rules
    assert settings.crawlers.dns is False and settings.crawlers.ranges == {"google": ranges}
    assert load_crawler_ranges(ranges).contains(SOURCE)


def test_the_nginx_config_has_its_limits_ports_and_private_paths(tmp_path: Path):
    text = nginx_config_text(directory=tmp_path, port=18081, site_port=19091)
    assert "@@" not in re.sub(r"placeholders between @@ marks", "", text)
    assert "listen 127.0.0.1:18081" in text and "server 127.0.0.1:19091;" in text
    assert "limit_req zone=perip burst=40 nodelay;" in text and "limit_conn connperip 20;" in text
    paths = re.findall(r"(?:pid|error_log|_temp_path) (\S+?);?\s", text)
    assert paths and all(path.startswith(str(tmp_path)) for path in paths)


def test_the_templates_are_shipped():
    assert SHIELD_TEMPLATE.is_file() and NGINX_TEMPLATE.is_file()
