"""Asks and tells from asyncio to actors on other nodes, on the asyncio loop's own
connections (swimactors.actors.aio_peers): the trio ref's answers, errors and order,
replies holding refs, and NodeDown when the node goes; the runtime thread's path where a
cluster key is set."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from swimactors import (
    Actor,
    ActorFailed,
    ActorRef,
    AskTimeout,
    Context,
    NodeDown,
    System,
    Unsendable,
    aio,
)
from swimactors.membership.types import format_address
from swimactors.security import Keyring

from .timing import CONFIG

pytestmark = pytest.mark.network


class Tally(Actor):
    """Adds what it is told; answers asks with the total (its ref for "who"); fails on a
    negative ask; naps half a second on "nap"; blocks its whole node for a float
    (seconds)."""

    def __init__(self) -> None:
        self.total = 0

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if msg == "who":
            return ctx.self_ref
        if msg == "nap":
            await trio.sleep(0.5)
            return msg
        if isinstance(msg, float):
            time.sleep(msg)  # the node's loop stops: it answers no probe meanwhile
            return msg
        if msg < 0:
            raise ValueError("negative")
        self.total += msg
        return self.total


@asynccontextmanager
async def two_systems(
    config: Any = CONFIG,
) -> AsyncIterator[tuple[aio.AsyncSystem, aio.AsyncSystem, aio.AsyncRef]]:
    """Systems a and b (a tally on b), and a's ref to the tally."""
    async with aio.open_system("a", bind="127.0.0.1:0", config=config) as a:
        seed = await a.run(_gossip_address)
        async with aio.open_system("b", "127.0.0.1:0", [seed], config=config) as b:
            await b.spawn(Tally, name="tally", public=True)
            yield a, b, await a.wait_for("tally", timeout=20)


async def _gossip_address(system: System) -> str:
    assert system.cluster is not None
    return format_address(system.cluster.node.address)


async def _runtime_connected_to_b(system: System) -> bool:
    assert system.cluster is not None
    return "b" in system.cluster.transport.connections


def test_remote_asks_and_tells_go_on_the_asyncio_loops_own_connection() -> None:
    async def scenario() -> None:
        async with two_systems() as (a, _b, tally):
            for _ in range(5):
                await tally.tell(1)
            assert await tally.ask(0) == 5  # the tells went first, on the same connection
            totals = await asyncio.gather(*(tally.ask(1) for _ in range(20)))
            assert sorted(totals) == list(range(6, 26))
            with pytest.raises(Unsendable):
                await tally.ask(object())
            who = await tally.ask("who")  # a ref in a reply: bound by the system
            assert isinstance(who, ActorRef) and who == tally.ref
            assert await a.ref(who).ask(0) == 25
            with pytest.raises(ActorFailed):
                await tally.ask(-1)
            with pytest.raises(AskTimeout):
                await tally.ask("nap", timeout=0.1)
            assert a._peers is not None and list(a._peers.links) == ["b"]
            assert not await a.run(_runtime_connected_to_b)  # nothing went that way

    asyncio.run(scenario())


def test_asks_fail_with_node_down_when_the_connection_closes() -> None:
    async def scenario() -> None:
        async with two_systems() as (a, _b, tally):
            assert await tally.ask(0) == 0
            pending = asyncio.ensure_future(tally.ask("nap", timeout=None))
            assert a._peers is not None
            link = a._peers.links["b"]
            while not link.session.pending:  # the ask is on its way
                await asyncio.sleep(0)
            link.close("test")
            with pytest.raises(NodeDown, match="connection to b closed: test"):
                await pending
            assert await tally.ask(0) == 0  # a new connection for the next ask

    asyncio.run(scenario())


def test_a_tell_made_as_the_system_closes_is_sent() -> None:
    async def scenario() -> None:
        async with aio.open_system("b", bind="127.0.0.1:0", config=CONFIG) as b:
            tally = await b.spawn(Tally, name="tally", public=True)
            seed = await b.run(_gossip_address)
            async with aio.open_system("a", "127.0.0.1:0", [seed], config=CONFIG) as a:
                remote = await a.wait_for("tally", timeout=20)
                assert await remote.ask(0) == 0
                await remote.tell(7)
            for _ in range(100):  # delivered after a is gone, in its own time
                if await tally.ask(0) == 7:
                    break
                await asyncio.sleep(0.02)
            assert await tally.ask(0) == 7

    asyncio.run(scenario())


QUICK_DOWN = CONFIG.replace(
    probe_interval=0.2, probe_timeout=0.1, suspicion_mult=2, suspicion_max_timeout_mult=1
)
"""A node that stops answering is DOWN about a second later."""


def test_an_ask_of_a_node_that_stops_answering_fails_once_it_is_down() -> None:
    async def scenario() -> None:
        async with two_systems(QUICK_DOWN) as (a, _b, tally):
            assert await tally.ask(0) == 0
            started = time.monotonic()
            blocked = asyncio.ensure_future(tally.ask(4.0, timeout=None))
            with pytest.raises(NodeDown, match="b is down"):
                await blocked
            assert time.monotonic() - started < 3.5  # DOWN, not the node's return
            assert a._peers is not None and "b" not in a._peers.links

    asyncio.run(scenario())


def test_with_a_cluster_key_remote_asks_go_through_the_runtime_thread() -> None:
    async def scenario() -> None:
        keyed = CONFIG.replace(keyring=Keyring(b"K" * 32))
        async with two_systems(keyed) as (a, _b, tally):
            assert a._peers is None
            await tally.tell(2)
            assert await tally.ask(0) == 2
            assert await a.run(_runtime_connected_to_b)

    asyncio.run(scenario())
