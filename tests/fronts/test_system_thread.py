"""``open_system(membership_thread=True)``: an actor whose ``receive`` blocks the loop does
not get its node suspected (and without the thread it does); names, asks and leaves work
across systems whose membership runs on its own thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

import swimactors
from swimactors import Actor, Context
from swimactors.membership import Status
from swimactors.membership.types import Address, format_address
from tests.cluster.cluster_helpers import open_systems, until

from .helpers import BLOCK, block_with_peers
from .timing import CONFIG, CONVERGE_BOUND

pytestmark = pytest.mark.network


class Blocker(Actor):
    """A ``receive`` that blocks its thread (a sync database call, a long computation)."""

    async def receive(self, msg: Any, ctx: Context) -> Any:
        time.sleep(msg)
        return "done"


def node_with_a_blocking_actor(thread: bool) -> Callable[[Address, Callable[[], None]], None]:
    def run_node(seed: Address, on_up: Callable[[], None]) -> None:
        async def main() -> None:
            async with swimactors.open_system(
                "a",
                bind="127.0.0.1:0",
                seeds=[format_address(seed)],
                config=CONFIG,
                membership_thread=thread,
            ) as system:
                assert system.cluster is not None
                node = system.cluster.node

                def up(name: str) -> bool:
                    member = node.member(name)
                    return member is not None and member.status is Status.UP

                await until(lambda: up("b") and up("c"), CONVERGE_BOUND)
                await trio.to_thread.run_sync(on_up)
                blocker = await system.spawn(Blocker)
                assert await blocker.ask(BLOCK, timeout=BLOCK + 10) == "done"
                if thread:  # the node's view stayed current: c left during the block
                    await until(lambda: not up("c"), 1.0)
                    member = node.member("c")
                    assert member is not None and member.status is Status.LEFT

        trio.run(main)

    return run_node


def test_a_blocking_receive_is_not_suspected_with_the_membership_thread() -> None:
    assert block_with_peers(node_with_a_blocking_actor(thread=True)) == []


def test_a_blocking_receive_is_suspected_without_the_membership_thread() -> None:
    """The control: the same actor on a system whose node shares its loop."""
    suspicions = block_with_peers(node_with_a_blocking_actor(thread=False))
    assert suspicions, "b never suspected the node whose loop was blocked"


class Echo(Actor):
    async def receive(self, msg: Any, ctx: Context) -> Any:
        return msg


async def test_names_asks_and_leaves_across_systems_on_membership_threads() -> None:
    with trio.fail_after(60):
        async with open_systems(3, membership_thread=True) as (a, b, c):
            await a.spawn(Echo, name="echo", public=True)
            echo = await c.wait_for("echo", timeout=10)
            assert echo.node == "n0"
            assert await echo.ask("hello", timeout=5) == "hello"
            await b.spawn(Echo, name="other", public=True)
            assert await (await a.wait_for("other", timeout=10)).ask(1, timeout=5) == 1
            assert a.cluster is not None and c.cluster is not None
            assert c.cluster.node.counters["membership_thread_errors"] == 0
            left = await b.cluster.node.leave() if b.cluster is not None else False
            assert left
            await until(lambda: not c.has_actor("other"), 10)
