"""Publish to 1,000 subscribers on 3 nodes: messages delivered per second, against the
floor of telling each subscriber directly, measured in the same run, interleaved.

Three clustered systems on loopback in this one process (so the figure is the whole
cluster's throughput on one core): a third of the subscribers on each node, the
publisher on the first.  ``publish`` sends one transfer per other node per message; the
floor sends one tell per subscriber (what a publisher without topics would do).  A rate
counts deliveries, from the first publish until every subscriber has every message.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

import swimactors
from swimactors import Actor, Context
from swimactors.membership import Config, Status
from swimactors.membership.types import format_address

Row = dict[str, Any]

SUBSCRIBERS = 1_000
NODES = 3


@swimactors.message("bench.pubsub.Tick")
class Tick:
    n: int


class Tally:
    """Deliveries across every subscriber of the run; ``done`` once ``expected`` arrived."""

    def __init__(self, expected: int) -> None:
        self.count = 0
        self.expected = expected
        self.done = trio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


class Subscriber(Actor):
    def __init__(self, tally: list[Tally]) -> None:
        self.tally = tally

    def receive(self, msg: Any, ctx: Context) -> None:
        self.tally[0].add()


@asynccontextmanager
async def _cluster(tally: list[Tally]) -> AsyncIterator[tuple[swimactors.System, list[Any]]]:
    """NODES systems, SUBSCRIBERS subscribed to "ticks" spread over them, all seen by n0."""
    async with AsyncExitStack() as stack:
        systems: list[swimactors.System] = []
        for index in range(NODES):
            seeds = [format_address(systems[0].cluster.node.address)] if systems else []  # type: ignore[union-attr]
            systems.append(
                await stack.enter_async_context(
                    swimactors.open_system(
                        f"p{index}", bind="127.0.0.1:0", seeds=seeds, config=Config.local()
                    )
                )
            )
        refs = []
        for index in range(SUBSCRIBERS):
            system = systems[index % NODES]
            ref = await system.spawn(Subscriber(tally))
            await system.subscribe("ticks", ref)
            refs.append(ref)
        with trio.fail_after(60):
            while len(systems[0].group_members("$topic:ticks")) < SUBSCRIBERS or any(
                sum(m.status is Status.UP for m in s.cluster.node.members()) < NODES  # type: ignore[union-attr]
                for s in systems
            ):
                await trio.sleep(0.05)
        yield systems[0], systems[0].group_members("$topic:ticks")


def _measure(publishes: int, direct: bool) -> tuple[float, float]:
    """Deliveries per second for ``publishes`` messages to every subscriber, and the
    fraction of the deliveries that arrived (bounded mailboxes may drop)."""

    async def main() -> tuple[float, float]:
        tally = [Tally(0)]
        async with _cluster(tally) as (publisher, subscribers):
            tally[0] = Tally(publishes * SUBSCRIBERS)
            start = time.perf_counter()
            for n in range(publishes):
                if direct:
                    for ref in subscribers:
                        await ref.tell(Tick(n))
                else:
                    await publisher.publish("ticks", Tick(n))
                await trio.sleep(0)  # let subscribers drain (mailboxes are bounded)
            with trio.move_on_after(60):
                await tally[0].done.wait()
            elapsed = time.perf_counter() - start
            return tally[0].count / elapsed, tally[0].count / tally[0].expected

    return trio.run(main)


def run(quick: bool) -> list[Row]:
    publishes = 20 if quick else 100
    repeats = 2 if quick else 3
    pairs = [(_measure(publishes, True), _measure(publishes, False)) for _ in range(repeats)]
    floor = statistics.median(f[0] for f, _ in pairs)
    ours = statistics.median(o[0] for _, o in pairs)
    arrived = min(min(f[1], o[1]) for f, o in pairs)
    return [
        {
            "benchmark": "publish to 1,000 subscribers on 3 nodes",
            "metric": "floor",
            "value": floor,
            "unit": "deliveries/s",
            "note": "one tell per subscriber",
        },
        {
            "benchmark": "publish to 1,000 subscribers on 3 nodes",
            "metric": "swimactors",
            "value": ours,
            "unit": "deliveries/s",
            "floor": floor,
            "ratio": ours / floor,
            "note": f"{publishes} publishes, one transfer per other node each; 3 nodes in "
            f"one process; {arrived:.0%} delivered; ratio = publish / floor",
        },
    ]
