"""`[cluster]` and `[firewall]` in the configuration: what is refused, with a message saying what to do."""

from __future__ import annotations

from typing import Any

import pytest
from test_config import problems

from shieldwall.config import parse_config
from shieldwall.config.cluster_schema import default_node

REDIS = {"redis": "redis://127.0.0.1:6379/0"}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"cluster": {"redis": "http://127.0.0.1:6379"}}, "not a Redis URL"),
        ({"cluster": {**REDIS, "node": "a b"}}, "not a node name"),
        ({"cluster": {**REDIS, "namespace": "Upper"}}, "lower-case"),
        ({"cluster": {**REDIS, "sync_interval": 0.01}}, "0.05"),
        ({"cluster": REDIS, "detector": {"enabled": False}}, "link to the others) needs detector.enabled"),
        ({"firewall": {"nftables": True}, "detector": {"enabled": False}}, "nftables mirror needs detector"),
    ],
)
def test_refused_with_a_reason(data: dict[str, Any], words: str) -> None:
    found = problems(data)
    assert any(words in problem for problem in found), found


def test_a_cluster_of_defaults_and_a_lone_node() -> None:
    settings = parse_config({"cluster": REDIS})
    assert settings.cluster.enabled and settings.cluster.node_name == default_node()
    assert parse_config({"cluster": {**REDIS, "node": "shield-1"}}).cluster.node_name == "shield-1"
    assert not parse_config({}).cluster.enabled
    url = "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
    assert parse_config({"cluster": {"redis": url}}).cluster.redis == url
