"""Whole actor applications on the trio engine: ``open_system`` nodes on a simulated
network under MockClock with trio's scheduler seeded (for tests of applications, and
``python -m sims.grains``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
import trio.testing

from ..cluster.system import System, open_system
from ..membership.types import format_address
from .network import LinkModel
from .trio_engine import SimNet, deterministic_scheduling
from .world import address_for

__all__ = ["replay", "simulated_systems"]


@asynccontextmanager
async def simulated_systems(net: SimNet, count: int, **options: Any) -> AsyncIterator[list[System]]:
    """``count`` systems n0..n{count-1} on ``net``, joined through n0."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.serve)
        async with AsyncExitStack() as stack:
            yield [
                await stack.enter_async_context(
                    open_system(
                        name=f"n{i}",
                        bind=format_address(address_for(i)),
                        seeds=[format_address(address_for(0))] if i else [],
                        environment=net.environment(f"n{i}", address_for(i), incarnation=1000 + i),
                        shutdown_timeout=1.0,
                        **options,
                    )
                )
                for i in range(count)
            ]
        nursery.cancel_scope.cancel()


def replay(app: Callable[[SimNet], Awaitable[list[str]]], seed: int) -> tuple[str, list[str]]:
    """Run ``app(net)`` under MockClock with trio's scheduler seeded: (trace hash, log)."""

    net = SimNet(seed, LinkModel(loss=0.01, jitter=0.001))
    with deterministic_scheduling(seed):
        log = trio.run(app, net, clock=trio.testing.MockClock(autojump_threshold=0))
    return net.trace_hash, log
