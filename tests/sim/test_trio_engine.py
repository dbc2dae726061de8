"""The second engine: real trio membership nodes on the simulated network under
MockClock replay from a seed, whatever order trio runs simultaneous tasks in."""

from __future__ import annotations

from contextlib import AsyncExitStack

import trio
import trio.testing

from swimactors.membership.types import Status
from swimactors.sim import LinkModel, address_for
from swimactors.sim.trio_engine import SimNet, open_sim_node

NODES = 5


async def crash_run(seed: int) -> tuple[str, list[Status | None], bool]:
    net = SimNet(seed, LinkModel(loss=0.01, jitter=0.001))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.serve)
        async with AsyncExitStack() as stack:
            nodes = [
                await stack.enter_async_context(
                    open_sim_node(
                        net,
                        name=f"n{i}",
                        address=address_for(i),
                        seeds=[address_for(0)] if i else [],
                    )
                )
                for i in range(NODES)
            ]
            converged = False
            for _ in range(60):  # gossip, or at worst the 30 s push/pull, fills the views
                await trio.sleep(1.0)
                converged = all(
                    sum(m.status is Status.UP for m in node.members()) == NODES for node in nodes
                )
                if converged:
                    break
            net.crash("n4")
            await trio.sleep(30.0)
            views = [member.status if (member := node.member("n4")) else None for node in nodes[:4]]
        nursery.cancel_scope.cancel()
    return net.trace_hash, views, converged


def run(seed: int) -> tuple[str, list[Status | None], bool]:
    return trio.run(crash_run, seed, clock=trio.testing.MockClock(autojump_threshold=0))


def test_trio_nodes_converge_and_detect_a_crash_on_the_simulated_network() -> None:
    _, views, converged = run(1)
    assert converged
    assert views == [Status.DOWN] * 4


def test_trio_engine_replays_from_a_seed() -> None:
    first, again, other = run(2), run(2), run(3)
    assert first[0] == again[0]
    assert other[0] != first[0]
