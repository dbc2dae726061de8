"""Pub/sub across OS processes: three agents each with a subscriber, a client publishing;
one agent SIGKILLed; every surviving subscriber has exactly what was published, in order."""

from __future__ import annotations

import trio

import swimactors
from swimactors.agent.cluster import open_local_cluster
from swimactors.membership.types import format_address

from .cluster_helpers import FAST, until
from .pubsub_app import News
from .test_agents_app import OVERRIDES

APP = "tests.cluster.pubsub_app:setup"


async def test_publishes_reach_every_subscriber_once_and_in_order_across_a_kill() -> None:
    with trio.fail_after(90):
        async with open_local_cluster(profile="local", overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", app=APP)
            await cluster.start("b", join=[a.gossip], app=APP)
            await cluster.start("c", join=[a.gossip], app=APP)
            async with swimactors.open_system(
                "client", bind="127.0.0.1:0", seeds=[format_address(a.gossip)], config=FAST
            ) as client:
                await until(lambda: len(client.group_members("$topic:news")) == 3, timeout=20)
                for n in range(200):
                    assert await client.publish("news", News(n)) == 3
                for node in "abc":
                    reader = await client.wait_for(f"reader-{node}", timeout=10)
                    await until_seen(reader, 200)
                    assert await reader.ask("seen") == list(range(200))
                assert client.groups.counters["transfers"] == 600  # one per node per publish
                cluster.kill("c")
                await until(lambda: len(client.group_members("$topic:news")) == 2, timeout=30)
                for n in range(200, 300):
                    assert await client.publish("news", News(n)) == 2
                for node in "ab":
                    reader = await client.wait_for(f"reader-{node}", timeout=10)
                    await until_seen(reader, 300)
                    assert await reader.ask("seen") == list(range(300))


async def until_seen(reader: swimactors.ActorRef, count: int) -> None:
    with trio.fail_after(10):
        while len(await reader.ask("seen")) < count:
            await trio.sleep(0.05)
