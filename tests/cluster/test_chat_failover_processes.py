"""The chat example across OS processes (the tutorial's failure test): sessions on three
nodes join the room on a fourth; SIGKILL the room's node; every session is told the room
was lost (Terminated), a survivor starts the room again (a singleton) and the sessions
join it by themselves, and a line said afterwards reaches them all."""

from __future__ import annotations

from collections.abc import Callable

import trio

import swimactors
from examples import chat
from swimactors import ActorRef, SplitBrainConfig
from swimactors.agent.cluster import open_local_cluster
from swimactors.membership.types import format_address
from swimactors.quorum import keep_majority

from .cluster_helpers import FAST, PROBES
from .test_agents_app import OVERRIDES

APP = "examples.chat:setup"
SPLIT_BRAIN = ["--split-brain", "keep-majority", "--stable-after", "5"]


async def test_sessions_rejoin_the_room_a_survivor_restarts_after_a_kill() -> None:
    with trio.fail_after(120):
        async with open_local_cluster(profile="local", overrides=OVERRIDES | PROBES) as cluster:
            a = await cluster.start("a", app=APP, extra_args=SPLIT_BRAIN)
            for name in "bc":
                await cluster.start(name, join=[a.gossip], app=APP, extra_args=SPLIT_BRAIN)
            async with swimactors.open_system(
                "client",
                bind="127.0.0.1:0",
                seeds=[format_address(a.gossip)],
                config=FAST.replace(**PROBES),
                split_brain=SplitBrainConfig(strategy=keep_majority(), stable_after=5.0),
            ) as client:
                await client.wait_serving(timeout=20)
                room, me, _ = await chat.join(client, "me", lambda line: None)
                assert room.node == "a"
                bots = [await client.spawn_on(n, "chat.bot", [f"bot-{n}"]) for n in "bc"]
                sessions = [me, *bots]
                await _until_all(sessions, lambda where: where == room)

                cluster.kill("a")
                start = trio.current_time()
                await _until_all(sessions, lambda where: where is not None and where.node != "a")
                rejoined = trio.current_time() - start
                for session in sessions:
                    lines = await session.ask("lines")
                    assert any("the room was lost" in line for line in lines), lines
                await me.tell(chat.Say("me", "still here"))
                for session in sessions:
                    with trio.fail_after(10):
                        while "me: still here" not in await session.ask("lines"):
                            await trio.sleep(0.1)
                print(f"\nall sessions in the new room {rejoined:.1f} s after the kill")


async def _until_all(sessions: list[ActorRef], where: Callable[[ActorRef | None], bool]) -> None:
    """Poll each session's room until ``where(room)`` holds for all of them."""
    with trio.fail_after(60):
        while not all([where((await s.ask("room")).room) for s in sessions]):
            await trio.sleep(0.2)
