"""The split-brain layer through the agent: ``--split-brain``, ``/v1/health``, ``/metrics``."""

from __future__ import annotations

import json

import pytest
import trio

from swimactors.agent.api import membership_router
from swimactors.agent.http import http_get, serve_http
from swimactors.cli import main

from .helpers import open_quorum_systems
from .test_system import RULE


@pytest.mark.parametrize("value", ["bogus", "static-quorum:0", "static-quorum:x", "keep-referee:"])
def test_a_bad_split_brain_rule_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["agent", "--name", "a", "--bind", "127.0.0.1:0", "--split-brain", value])
    assert exit_info.value.code == 2
    assert "--split-brain" in capsys.readouterr().err


async def test_health_and_metrics_show_the_quorum() -> None:
    systems = open_quorum_systems(1, split_brain=RULE)
    async with systems as (system,), trio.open_nursery() as nursery:
        quorum, cluster = system.split_brain, system.cluster
        assert quorum is not None and cluster is not None
        router = membership_router(
            cluster.node, extra_health=quorum.health, extra_gauges=quorum.metrics
        )
        address = await nursery.start(serve_http, router, "127.0.0.1", 0)
        status, body = await http_get(address, "/v1/health")
        health = json.loads(body)
        assert status == 200 and health["quorum"] == "ok" and health["status"] == "ok"
        assert health["split_brain"]["rule"] == "keep-majority"
        assert health["split_brain"]["singleton_host"] == system.name
        status, body = await http_get(address, "/metrics")
        assert status == 200 and "swimactors_quorum_serving 1\n" in body.decode()
        nursery.cancel_scope.cancel()
