"""The asyncio actor system: spawn, find, ask and tell from asyncio tasks, the same typed
errors, and an asyncio program asking an actor in another OS process (a real agent)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any

import pytest
import trio

from swimactors import Actor, ActorFailed, AskTimeout, BadCall, Context, System, aio, as_actor
from swimactors.loop_thread import ThreadClosed
from swimactors.membership.types import format_address

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


class Gated(Actor):
    """Answers "wait" once the test opens its gate, after saying it has the message (so a
    test interrupts an ask known to be under way, whatever the machine's load)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if msg == "wait":
            self.started.set()
            await trio.to_thread.run_sync(self.gate.wait)
        return msg


async def cancelled(call: Awaitable[Any], started: threading.Event) -> None:
    """Await ``call`` from a task of its own, then cancel that task once the runtime
    thread has ``started`` on it."""
    task = asyncio.ensure_future(call)
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_cancelling_an_asyncio_call_cancels_it_on_the_runtime_thread() -> None:
    async def scenario() -> None:
        async with aio.open_system("solo") as system:
            gated = Gated()
            ref = await system.spawn(gated, name="gated")
            await cancelled(ref.ask("wait", timeout=None), gated.started)
            gated.gate.set()
            assert await ref.ask("after") == "after"  # handled once "wait" was answered
            assert await system.run(late_replies) == 1  # nobody waited for that answer

            running, finished = threading.Event(), trio.Event()

            async def forever(_: System) -> None:
                running.set()
                try:
                    await trio.sleep_forever()
                finally:
                    finished.set()

            await cancelled(system.run(forever), running)
            await system.run(lambda _: finished.wait())

    asyncio.run(scenario())


def test_cancelling_an_asyncio_ask_of_another_node_forgets_it_there() -> None:
    async def scenario() -> None:
        async with (
            aio.open_system("a", bind="127.0.0.1:0", config=CONFIG) as a,
            aio.open_system("b", "127.0.0.1:0", [await address_of(a)], config=CONFIG) as b,
        ):
            gated = Gated()
            await b.spawn(gated, name="gated", public=True)
            ref = await a.wait_for("gated", timeout=20)
            assert await ref.ask("ready") == "ready"
            await cancelled(ref.ask("wait", timeout=None), gated.started)
            assert a._peers is not None  # the ask went on the asyncio loop's own connection
            assert not a._peers.links[b.name].session.pending  # before the answer comes
            gated.gate.set()

    asyncio.run(scenario())


async def late_replies(system: System) -> int:
    return system.stats.late_replies


async def address_of(system: aio.AsyncSystem) -> str:
    async def gossip_address(system: System) -> str:
        assert system.cluster is not None
        return format_address(system.cluster.node.address)

    return await system.run(gossip_address)


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
