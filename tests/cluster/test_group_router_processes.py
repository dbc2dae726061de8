"""A group router across OS processes: three agents with two group members each, a
client's round-robin router spreading asks evenly over all six; SIGKILL one agent and,
once its node is DOWN, the router's asks reach only the survivors' members."""

from __future__ import annotations

from collections import Counter

import trio

import swimactors
from swimactors.agent.cluster import open_local_cluster
from swimactors.membership.types import format_address

from .cluster_helpers import FAST, until
from .test_agents_app import OVERRIDES

APP = "tests.cluster.router_app:setup"


async def test_a_group_router_follows_the_members_across_a_kill() -> None:
    with trio.fail_after(90):
        async with open_local_cluster(profile="local", overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", app=APP)
            await cluster.start("b", join=[a.gossip], app=APP)
            await cluster.start("c", join=[a.gossip], app=APP)
            async with swimactors.open_system(
                "client", bind="127.0.0.1:0", seeds=[format_address(a.gossip)], config=FAST
            ) as client:
                router = await client.spawn_group_router("workers", "router")
                await until(lambda: len(client.group_members("workers")) == 6, timeout=20)
                answers = Counter([await router.ask(n) for n in range(60)])
                assert answers == {"a": 20, "b": 20, "c": 20}
                cluster.kill("c")
                await until(lambda: len(client.group_members("workers")) == 4, timeout=30)
                answers = Counter([await router.ask(n) for n in range(40)])
                assert answers == {"a": 20, "b": 20}
