"""``/metrics`` of a running agent parses with prometheus_client's own parser, every
family once, with the membership and quorum series present."""

from __future__ import annotations

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from swimactors.agent.actor_metrics import render_actor_metrics
from swimactors.agent.cluster import open_local_cluster, wait_until
from swimactors.agent.http import http_get
from tests.network.fast import OVERRIDES
from tests.operate.pair import Echo, open_pair

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
            for actor_family in ("actors", "actor_mailbox_messages", "actor_remote_ask_seconds"):
                assert f"swimactors_{actor_family}" in families


async def test_actor_series_count_remote_asks_and_parse() -> None:
    async with open_pair() as (_, y):
        echo = await y.wait_for("echo")
        with trio.fail_after(20):
            for i in range(5):
                assert await echo.ask(i) == i
        stopped = await y.spawn(Echo)
        await y.stop(stopped)
        await stopped.tell("too late")  # a dead letter
        text = render_actor_metrics(y)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    asks = {s.name: s for s in families["swimactors_actor_remote_ask_seconds"].samples}
    assert asks["swimactors_actor_remote_ask_seconds_count"].value == 5
    buckets = [
        s.value
        for s in families["swimactors_actor_remote_ask_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 5  # cumulative, +Inf holds all
    assert families["swimactors_actor_transport_connections"].samples[0].value == 1
    events = {
        s.labels["event"]: s.value for s in families["swimactors_actor_transport_events"].samples
    }
    assert events["dials"] == 1
    assert families["swimactors_actors"].samples[0].value == 0  # the one spawned was stopped
    assert families["swimactors_actor_dead_letters"].type == "counter"
    assert families["swimactors_actor_dead_letters"].samples[0].value == 1
