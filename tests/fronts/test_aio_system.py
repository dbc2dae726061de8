"""The asyncio actor system: spawn, find, ask and tell from asyncio tasks, the same typed
errors, and an asyncio program asking an actor in another OS process (a real agent)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio

from swimactors import Actor, ActorFailed, AskTimeout, BadCall, Context, aio, as_actor
from swimactors.loop_thread import ThreadClosed

from .helpers import agent_process
from .timing import CONFIG

pytestmark = pytest.mark.network


@as_actor("tests.aio.Adder")
class Adder:
    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> int:
        self.total += n
        return self.total


class Tally(Actor):
    """Adds what it is told; answers asks with the total; fails on a negative ask."""

    def __init__(self) -> None:
        self.total = 0

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if msg == "hang":
            await trio.sleep_forever()
        if isinstance(msg, int) and msg < 0:
            raise ValueError("negative")
        self.total += msg
        return self.total


def test_spawn_find_ask_tell_and_errors_from_asyncio_tasks() -> None:
    async def scenario() -> None:
        async with aio.open_system("solo") as system:
            assert system.name == "solo"
            ref = await system.spawn(Tally, name="tally")
            assert await system.find("tally") == ref
            assert await system.find("nobody") is None
            await ref.tell(5)
            assert await ref.ask(0) == 5
            totals = await asyncio.gather(*(ref.ask(1) for _ in range(50)))
            assert sorted(totals) == list(range(6, 56))  # each ask ran once, in some order
            with pytest.raises(ActorFailed):
                await ref.ask(-1)
            stuck = await system.spawn(Tally, name="stuck")
            assert stuck != ref and len({ref, stuck, await system.find("tally")}) == 2
            with pytest.raises(AskTimeout):
                await stuck.ask("hang", timeout=0.2)
        with pytest.raises(ThreadClosed):
            await ref.ask(1)

    asyncio.run(scenario())


def test_a_proxy_is_awaited_from_asyncio() -> None:
    async def scenario() -> None:
        async with aio.open_system("proxied") as system:
            ref = await system.spawn(Adder, name="adder")
            adder = system.proxy(ref, Adder)
            assert await adder.add(2) == 2
            assert sorted(await asyncio.gather(*(adder.add(1) for _ in range(10)))) == list(
                range(3, 13)
            )
            with pytest.raises(BadCall):
                await adder.add("x")

    asyncio.run(scenario())


def test_an_asyncio_program_asks_an_actor_in_another_process() -> None:
    from examples.counter import Add, Get

    with agent_process("a", "examples.counter:setup") as agent:

        async def scenario() -> None:
            async with aio.open_system(
                "web", bind="127.0.0.1:0", seeds=[agent.gossip_address()], config=CONFIG
            ) as system:
                counter = await system.wait_for("counter", timeout=20)
                assert counter.node == "a"
                before = await counter.ask(Get(), timeout=5)
                assert await counter.ask(Add(3), timeout=5) == before + 3
                await counter.tell(Add(2))
                assert await counter.ask(Get(), timeout=5) == before + 5

        asyncio.run(scenario())
