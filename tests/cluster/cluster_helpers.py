"""Helpers for multi-node tests: fast loopback configs and a few systems in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

import swimactors
from swimactors import TransportConfig
from swimactors.cluster.system import Cluster
from swimactors.membership import Config, Status
from swimactors.membership.types import format_address
from tests.network.fast import CONFIG


def cluster_of(system: swimactors.System) -> Cluster:
    """The cluster side of a clustered system."""
    assert system.cluster is not None
    return system.cluster


FAST = CONFIG.replace(suspicion_mult=2, push_pull_interval=1.0)
"""The tests' one fast timing (a DOWN member retried every second, so a heal is quick),
with detection in well under two seconds on loopback (a shorter suspicion) and names
spread by push/pull within a second."""

PROBES = {"probe_interval": 0.5, "probe_timeout": 0.25}
"""Probe timing a loaded 2-core box answers in time (the fronts' tests use it too), for the
failover tests with a split-brain rule.  With 0.1 s timeouts, late answers under load made
members flap SUSPECT after the kill, so the rule saw no stable view within its limit and
downed every node ("quorum lost", the client's asks failing).  A bound on the machine: the
tests still need detection, a confirmed view and the failover."""


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail the test after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not check():
            await trio.sleep(0.02)


@asynccontextmanager
async def open_systems(
    count: int,
    transport: TransportConfig | None = None,
    config: Config = FAST,
    environment: Callable[[str], Awaitable[swimactors.Environment]] | None = None,
    **options: Any,
) -> AsyncIterator[list[swimactors.System]]:
    """``count`` clustered systems n0..n{count-1} on loopback, all seeing each other UP;
    ``environment`` gives each one its own (by name)."""
    async with AsyncExitStack() as stack:
        systems: list[swimactors.System] = []
        for index in range(count):
            name = f"n{index}"
            if environment is not None:
                options["environment"] = await environment(name)
            seeds = [format_address(cluster_of(systems[0]).node.address)] if systems else []
            system = await stack.enter_async_context(
                swimactors.open_system(
                    name,
                    bind="127.0.0.1:0",
                    seeds=seeds,
                    config=config,
                    transport=transport,
                    shutdown_timeout=2.0,
                    **options,
                )
            )
            systems.append(system)

        def all_up() -> bool:
            return all(
                sum(m.status is Status.UP for m in cluster_of(s).node.members()) == count
                for s in systems
            )

        await until(all_up)
        yield systems
