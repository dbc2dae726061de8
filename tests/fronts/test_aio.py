"""The asyncio membership front on real loopback sockets: join, events, metadata, leave,
a blocked asyncio loop that is not suspected, and crash detection across OS processes."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from swimactors import aio
from swimactors.membership import (
    MemberAlive,
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    MemberUpdated,
    NodeClosed,
    Status,
)
from swimactors.membership.types import Address

from .helpers import BLOCK, block_with_peers, peer_process
from .timing import CONFIG, CONVERGE_BOUND, down_bound

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("membership_driver")]


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def sees_up(node: aio.AsyncNode, names: set[str]) -> bool:
    return {m.name for m in await node.members() if m.status is Status.UP} >= names


def announced(event: object) -> bool:
    """A member's own change: not a suspicion and its refutation, which a loaded machine
    may add at any moment (probes answered late) and which this test is not about."""
    return isinstance(event, MemberEvent) and not isinstance(event, MemberSuspect | MemberAlive)


def test_join_members_events_meta_and_leave() -> None:
    async def scenario() -> None:
        async with (
            aio.open_node(name="a", bind="127.0.0.1:0", config=CONFIG) as a,
            aio.open_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=CONFIG) as b,
        ):
            await until(lambda: sees_up(a, {"a", "b"}), CONVERGE_BOUND)
            assert (await a.local_member()).name == "a"
            assert await a.member("b") == await b.local_member()
            assert (await a.counters())["driver_errors"] == 0
            async with asyncio.timeout(CONVERGE_BOUND):
                with a.events() as events:
                    await b.set_meta(b"role=web")
                    updated = await anext(e async for e in events if announced(e))
                    assert isinstance(updated, MemberUpdated) and updated.member.meta == b"role=web"
                    assert await b.leave() is True
                    left = await anext(e async for e in events if announced(e))
                    assert isinstance(left, MemberLeft) and left.member.name == "b"
            with pytest.raises(NodeClosed):
                await b.members()

    asyncio.run(scenario())


def test_a_start_up_error_is_raised_in_the_loop() -> None:
    async def scenario() -> None:
        with pytest.raises(ValueError, match="port"):
            async with aio.open_node(name="a", bind="127.0.0.1:99999"):
                pass

    asyncio.run(scenario())


def test_a_blocked_asyncio_loop_is_not_suspected() -> None:
    def run_node(seed: Address, on_up: Callable[[], None]) -> None:
        async def main() -> None:
            async with aio.open_node(
                name="a", bind="127.0.0.1:0", seeds=[seed], config=CONFIG
            ) as a:
                await until(lambda: sees_up(a, {"b", "c"}), CONVERGE_BOUND)
                await asyncio.to_thread(on_up)
                time.sleep(BLOCK)  # the asyncio loop is blocked; the node is not
                c = await a.member("c")
                assert c is not None and c.status is Status.LEFT

        asyncio.run(main())

    assert block_with_peers(run_node) == []


def test_crash_detection_across_os_processes() -> None:
    async def scenario() -> None:
        async with aio.open_node(name="a", bind="127.0.0.1:0", config=CONFIG) as a:
            with a.events() as events, peer_process("p", a.address) as peer:
                async with asyncio.timeout(CONVERGE_BOUND):
                    up = await anext(e async for e in events if isinstance(e, MemberUp))
                assert up.member.name == "p"
                peer.process.send_signal(signal.SIGKILL)
                killed = time.monotonic()
                async with asyncio.timeout(down_bound(2) + 5):
                    down = await anext(e async for e in events if isinstance(e, MemberDown))
                took = time.monotonic() - killed
                assert down.member.name == "p"
                assert took <= down_bound(2), f"DOWN after {took:.1f} s > {down_bound(2):.1f} s"

    asyncio.run(scenario())
