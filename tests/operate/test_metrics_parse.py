"""``/metrics`` of a running agent parses with prometheus_client's own parser, every
family once, with the membership and quorum series present."""

from __future__ import annotations

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from swimactors.agent.cluster import open_local_cluster, wait_until
from swimactors.agent.http import http_get
from tests.network.fast import OVERRIDES

pytestmark = pytest.mark.network


async def test_metrics_parse_with_prometheus_client() -> None:
    with trio.fail_after(60):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", extra_args=["--split-brain", "keep-majority"])
            await cluster.start("b", join=[a.gossip])

            async def both_up() -> bool:
                return await a.statuses() == {"a": "up", "b": "up"}

            assert await wait_until(both_up, 20) is not None
            status, body = await http_get(a.http, "/metrics")
            assert status == 200
            families = {f.name: f for f in text_string_to_metric_families(body.decode())}
            members = {s.labels["status"]: s.value for s in families["swimactors_members"].samples}
            assert members["up"] == 2
            assert families["swimactors_members"].type == "gauge"
            assert families["swimactors_messages_sent"].type == "counter"
            assert any(s.value > 0 for s in families["swimactors_messages_sent"].samples)
            assert "swimactors_quorum_serving" in families
