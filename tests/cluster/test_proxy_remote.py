"""A proxy works the same on a ref to another node: calls and replies cross the wire as
their @message types, checked on decode."""

from __future__ import annotations

import pytest
import trio

import swimactors
from swimactors import BadCall, BadReply, as_actor
from swimactors.actors.message import MESSAGES

from .cluster_helpers import open_systems


@as_actor("test.proxy.remote.Counter")
class Counter:
    def __init__(self) -> None:
        self.value = 0

    async def increment(self, n: int = 1) -> int:
        self.value += n
        return self.value

    def snapshot(self, label: str) -> tuple[str, int]:
        return (label, self.value)

    def wrong(self) -> int:
        return "x"  # type: ignore[return-value]


async def test_a_proxy_calls_an_actor_on_another_node_as_it_would_a_local_one() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Counter, name="counter", public=True)
            ref = await a.wait_for("counter", timeout=10)
            assert ref.node == "n1"
            counter = a.proxy(ref, Counter)
            assert await counter.increment(5) == 5
            assert await counter.increment() == 6
            assert await counter.snapshot("now") == ("now", 6)  # a tuple again after decode
            with pytest.raises(BadCall):
                await counter.increment("6")
            with pytest.raises(BadReply, match="returned 'x'"):
                await counter.wrong()
            # a call that skips the proxy's check is refused by the receiver's decoder
            bad = MESSAGES._by_tag["test.proxy.remote.Counter.increment"]("6")
            with pytest.raises(swimactors.ActorFailed, match="WireError: expected int, got str"):
                await ref.ask(bad, timeout=5)
            assert await counter.increment(0) == 6
