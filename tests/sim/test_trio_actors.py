"""Whole actor applications on the trio engine: three ``open_system`` nodes on the
simulated network (membership datagrams and actor connections alike) under MockClock
with trio's scheduler seeded, so the run replays from its seed."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import trio
import trio.testing

from swimactors import Actor, message, open_system
from swimactors.actors.errors import NodeDown
from swimactors.membership.types import format_address
from swimactors.sim import LinkModel, address_for
from swimactors.sim.trio_engine import SimNet, deterministic_scheduling


@message
class Bump:
    n: int


class Counter(Actor):
    def __init__(self) -> None:
        self.value = 0

    async def receive(self, msg: Any, ctx: Any) -> Any:
        match msg:
            case Bump(n=n):
                self.value += n
                return self.value
        return None


async def counter_app(seed: int) -> tuple[str, list[str]]:
    """n2 holds a public counter; n0 finds it by name and bumps it; n2 crashes."""
    net = SimNet(seed, LinkModel(loss=0.01, jitter=0.001))
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.serve)
        async with AsyncExitStack() as stack:
            systems = [
                await stack.enter_async_context(open_system(
                    name=f"n{i}",
                    bind=format_address(address_for(i)),
                    seeds=[format_address(address_for(0))] if i else [],
                    environment=net.environment(f"n{i}", address_for(i)),
                    shutdown_timeout=1.0,
                ))
                for i in range(3)
            ]
            await systems[2].spawn(Counter(), name="counter", public=True)
            ref = None
            while ref is None:
                await trio.sleep(0.25)
                ref = await systems[0].find("counter")
            log.append(f"found at {trio.current_time():.6f} on {ref.node}")
            for n in range(1, 6):
                log.append(f"{trio.current_time():.6f} -> {await ref.ask(Bump(n), timeout=2.0)}")
            net.crash("n2")
            try:
                await ref.ask(Bump(100), timeout=30.0)
                log.append("answered after the crash")
            except NodeDown:
                log.append(f"{trio.current_time():.6f} NodeDown")
            while await systems[0].find("counter") is not None:  # pruned once n2 is DOWN
                await trio.sleep(0.25)
            log.append(f"{trio.current_time():.6f} name gone")
            errors = [s.cluster.transport.counters["connection_errors"]
                      for s in systems if s.cluster is not None]
            log.append(f"connection errors {errors}")  # broken streams are no internal errors
        nursery.cancel_scope.cancel()
    return net.trace_hash, log


def run(seed: int) -> tuple[str, list[str]]:
    with deterministic_scheduling(seed):
        return trio.run(counter_app, seed, clock=trio.testing.MockClock(autojump_threshold=0))


def test_an_actor_application_runs_on_the_simulated_network() -> None:
    _, log = run(1)
    assert log[0].endswith("on n2")
    assert [line.split(" -> ")[1] for line in log[1:6]] == ["1", "3", "6", "10", "15"]
    assert log[6].endswith("NodeDown") and log[7].endswith("name gone")
    assert log[8] == "connection errors [0, 0, 0]"


def test_an_actor_application_replays_from_its_seed() -> None:
    first, again, other = run(2), run(2), run(3)
    assert first == again
    assert other[0] != first[0]
