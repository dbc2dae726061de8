"""Singletons across a step-down, on five whole systems on the simulated network (trio
engine, MockClock, replayable from the seed): a holder that stops serving for a moment
while its side keeps winning gets its singleton back, on one node; a singleton its
user stopped stays stopped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

import swimactors
from sims.scenarios.singleton_faults import (
    NAME,
    RULE,
    STABLE_AFTER,
    Counter,
    running,
    stall_quorum,
    until,
)
from swimactors import System
from swimactors.membership.types import format_address
from swimactors.sim.systems import replay, simulated_systems
from swimactors.sim.trio_engine import SimNet
from swimactors.sim.world import address_for

BOUND = STABLE_AFTER + 3.0
"""Seconds from the holder's return to service until the singleton runs again: the
host's wait of ``stable_after`` (a deliberate stop's notice has arrived by then) and
a few gossip rounds."""


def registered(systems: list[System]) -> set[str | None]:
    """Where each node's registry says NAME lives (None: not registered)."""
    found: set[str | None] = set()
    for system in systems:
        assert system.cluster is not None
        registration = system.cluster.names.registration(NAME)
        found.add(None if registration is None else registration.node)
    return found


def states(systems: list[System]) -> list[str]:
    return [s.quorum_state for s in systems]


class Watch:
    """Samples every 50 ms who runs the singleton and the host's quorum state."""

    def __init__(self, systems: list[System], host: System) -> None:
        self.systems, self.host = systems, host
        self.most_running = 0
        self.host_states: set[str] = set()

    async def run(self) -> None:
        while True:
            self.most_running = max(self.most_running, len(running(self.systems)))
            self.host_states.add(self.host.quorum_state)
            await trio.sleep(0.05)


async def settled_with_singleton_on(systems: list[System], holder: System) -> None:
    for system in systems:
        system.register_spawnable("counter", Counter)
    assert await until(lambda: states(systems) == ["ok"] * 5, 60.0)
    await holder.spawn("counter", name=NAME, singleton=True)
    assert await until(lambda: registered(systems) == {holder.name}, 10.0)


def step_down_app(holder_index: int) -> Callable[[SimNet], Awaitable[list[str]]]:
    """n{holder_index} holds the singleton and steps down on a lease for a moment."""

    async def app(net: SimNet) -> list[str]:
        log: list[str] = []
        async with simulated_systems(net, 5, split_brain=RULE) as systems:
            holder, host = systems[holder_index], systems[0]
            await settled_with_singleton_on(systems, holder)
            async with trio.open_nursery() as nursery:
                watch = Watch(systems, host)
                nursery.start_soon(watch.run)
                stall = trio.current_time()
                nursery.start_soon(stall_quorum, holder, STABLE_AFTER + 1.0)
                assert await until(lambda: holder.quorum_state == "lost", 10.0)
                log.append(f"holder lost quorum {trio.current_time() - stall:.2f} s in")
                assert await until(lambda: not running(systems), 5.0)
                assert await until(lambda: holder.quorum_state == "ok", 30.0)
                back = trio.current_time()
                log.append(f"holder back {back - stall:.2f} s in")
                if await until(lambda: len(running(systems)) == 1, BOUND):
                    later = trio.current_time() - back
                    log.append(f"running on {running(systems)} {later:.2f} s later")
                else:
                    log.append("not running")
                await until(lambda: len(registered(systems)) == 1, 5.0)
                log.append(f"registered {sorted(map(str, registered(systems)))}")
                await trio.sleep(3 * STABLE_AFTER)  # nothing more happens
                log.append(f"at the end running on {running(systems)}")
                log.append(f"at most {watch.most_running} running at once")
                log.append(f"host states {sorted(watch.host_states)}")
                nursery.cancel_scope.cancel()
        return log

    return app


def test_a_singleton_whose_holder_steps_down_for_a_moment_runs_again_on_the_host() -> None:
    """The defect: the host, serving on a confirmed view throughout, saw the name go
    while it reached the holder, took it for a deliberate stop and forgot it."""
    _, log = replay(step_down_app(4), 1)
    assert log[2].startswith("running on ['n0']"), log
    assert log[3:] == [
        "registered ['n0']",
        "at the end running on ['n0']",
        "at most 1 running at once",
        "host states ['ok']",  # the host never stepped down nor went pending
    ], log


def test_a_host_that_steps_down_for_a_moment_runs_its_singleton_again() -> None:
    _, log = replay(step_down_app(0), 2)
    assert log[2].startswith("running on ['n0']"), log
    assert log[3:] == [
        "registered ['n0']",
        "at the end running on ['n0']",
        "at most 1 running at once",
        "host states ['lost', 'ok']",
    ], log


def stop_app(cut_after: float | None) -> Callable[[SimNet], Awaitable[list[str]]]:
    """n4's singleton is stopped by its user; with ``cut_after``, n4 is then cut off and
    the others take over from it (a failover decision on the host)."""

    async def app(net: SimNet) -> list[str]:
        log: list[str] = []
        async with simulated_systems(net, 5, split_brain=RULE) as systems:
            holder, host = systems[4], systems[0]
            await settled_with_singleton_on(systems, holder)
            await holder.stop(holder.children[NAME].ref)
            if cut_after is not None:
                await trio.sleep(cut_after)
                net.partition([s.name for s in systems[:4]], [holder.name])
                assert host.split_brain is not None
                downed = host.split_brain.counters
                assert await until(lambda: downed["members_downed"] == 1, 30.0)
                log.append(f"host took over: {host.quorum_state}")
            await trio.sleep(3 * STABLE_AFTER)
            log.append(f"running on {running(systems)}")
            remembered = [s.split_brain and NAME in s.split_brain.book.remembered for s in systems]
            log.append(f"remembered {remembered}")
            recreated = sum(
                s.split_brain.counters["singletons_recreated"] for s in systems if s.split_brain
            )
            log.append(f"re-created {recreated}")
        return log

    return app


def test_a_singleton_stopped_by_its_user_is_forgotten_everywhere() -> None:
    _, log = replay(stop_app(None), 3)
    assert log == ["running on []", f"remembered {[False] * 5}", "re-created 0"]


def test_a_failover_right_after_a_deliberate_stop_does_not_bring_it_back() -> None:
    """The holder's notice went round before the cut: the host's takeover of the holder
    finds nothing to re-create (before the notice, it re-created any singleton stopped
    less than ``stable_after`` before)."""
    _, log = replay(stop_app(1.0), 4)
    assert log == [
        "host took over: ok",
        "running on []",
        f"remembered {[False] * 5}",
        "re-created 0",
    ]


async def leave_app(net: SimNet) -> list[str]:
    """n4 holds the singleton and shuts down: its stop is no deliberate one, so the host
    re-creates the singleton (as when n4 crashes)."""
    log: list[str] = []
    async with simulated_systems(net, 4, split_brain=RULE) as systems:
        address = format_address(address_for(4))
        async with swimactors.open_system(
            name="n4",
            bind=address,
            seeds=[format_address(address_for(0))],
            environment=net.environment("n4", address_for(4), incarnation=1004),
            shutdown_timeout=1.0,
            split_brain=RULE,
        ) as holder:
            await settled_with_singleton_on([*systems, holder], holder)
        left = trio.current_time()
        if await until(lambda: running(systems) == ["n0"], 2 * BOUND):
            log.append(f"running on n0 {trio.current_time() - left:.2f} s after n4 left")
        await trio.sleep(STABLE_AFTER)
        log.append(f"running on {running(systems)}")
    return log


def test_a_singleton_whose_holder_shuts_down_runs_again_on_the_host() -> None:
    _, log = replay(leave_app, 5)
    assert len(log) == 2 and log[0].startswith("running on n0"), log
    assert log[1] == "running on ['n0']"
