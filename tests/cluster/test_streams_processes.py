"""Streamed replies across OS processes: a reader leaving its loop cancels the producer
in the agent's process; a producer's process SIGKILLed mid-stream gives NodeDown."""

from __future__ import annotations

import pytest
import trio

import swimactors
from swimactors import NodeDown
from swimactors.agent.cluster import open_local_cluster
from swimactors.membership.types import format_address

from .cluster_helpers import FAST
from .test_agents_app import OVERRIDES

APP = "tests.cluster.streams_app:setup"


async def test_cancellation_reaches_the_producer_and_a_kill_gives_node_down() -> None:
    with trio.fail_after(90):
        async with open_local_cluster(profile="local", overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", app=APP)
            await cluster.start("b", join=[a.gossip], app=APP)
            async with swimactors.open_system(
                "client", bind="127.0.0.1:0", seeds=[format_address(a.gossip)], config=FAST
            ) as client:
                source_a = await client.wait_for("source-a", timeout=20)
                source_b = await client.wait_for("source-b", timeout=20)
                async for n in source_a.stream("ticks", window=16):
                    if n == 100:
                        break
                with trio.fail_after(10):
                    while await source_a.ask("state") != {"open": 0, "closed": 1}:
                        await trio.sleep(0.02)

                got = []
                with pytest.raises(NodeDown):
                    async for n in source_b.stream("ticks", window=16):
                        got.append(n)
                        if n == 50:
                            cluster.kill("b")
                assert got == list(range(len(got))) and len(got) >= 51
