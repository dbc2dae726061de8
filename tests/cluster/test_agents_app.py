"""Agents as real processes running ``--app``: a node is SIGKILLed under a caller's feet."""

from __future__ import annotations

import json

import trio

import swimactors
from examples import chat
from swimactors import Actor, ActorRef, NodeDown, Terminated
from swimactors.agent.cluster import open_local_cluster
from swimactors.agent.http import http_get
from swimactors.membership.types import format_address

from .cluster_helpers import FAST, until

OVERRIDES = {
    "probe_interval": FAST.probe_interval,
    "probe_timeout": FAST.probe_timeout,
    "gossip_interval": FAST.gossip_interval,
    "suspicion_mult": FAST.suspicion_mult,
    "push_pull_interval": FAST.push_pull_interval,
}


class Watch(Actor):
    def __init__(self, target: ActorRef, notices: list[Terminated]) -> None:
        self.target = target
        self.notices = notices

    async def on_start(self) -> None:
        self.context.watch(self.target)

    def receive(self, msg: object, ctx: swimactors.Context) -> None:
        if isinstance(msg, Terminated):
            self.notices.append(msg)


async def test_killed_node_fails_asks_at_once_and_notifies_watchers_and_the_room() -> None:
    lines: list[str] = []
    notices: list[Terminated] = []
    with trio.fail_after(60):
        async with open_local_cluster(profile="local", overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", app="examples.chat:setup")
            b = await cluster.start("b", join=[a.gossip], app="examples.chat:setup")
            async with swimactors.open_system(
                "client", bind="127.0.0.1:0", seeds=[format_address(a.gossip)], config=FAST
            ) as system:
                room, _, _ = await chat.join(
                    system, "me", lambda line: lines.append(f"{line.user}: {line.text}")
                )
                assert room.node == "a"
                bot = await system.spawn_on("b", "chat.bot", ["bot-b"])
                await until(lambda: "*: bot-b joined" in lines)
                await system.spawn(Watch(bot, notices))
                status, body = await http_get(a.http, "/v1/actors", 5.0)
                assert status == 200
                assert {"name": "room", "node": "a", "actor_id": "room#1"} in json.loads(body)

                async def kill_soon() -> None:
                    await trio.sleep(0.3)
                    cluster.kill("b")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(kill_soon)
                    start = trio.current_time()
                    try:
                        await bot.ask(["sleep", 30], timeout=30)
                    except NodeDown:
                        pass
                    else:  # pragma: no cover
                        raise AssertionError("the ask outlived its node")
                    assert trio.current_time() - start < 5  # at once, not at the timeout
                bound = FAST.suspicion_timeouts(3)[1] + 3 * FAST.probe_interval + 5.0
                await until(lambda: len(notices) == 1, timeout=bound)
                assert notices[0].ref == bot and "down" in (notices[0].reason or "")
                await until(lambda: any("bot-b was lost" in line for line in lines), timeout=5)
                await trio.sleep(0.5)
                assert len(notices) == 1  # exactly once
                assert b.process.returncode is not None
