"""Distributed data on whole systems on the simulated network (trio engine, MockClock):
majority and all writes and reads over the actor transport, typed errors, subscriptions,
and the split-brain rule: only a serving side takes majority writes."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from swimactors import (
    Actor,
    Consistency,
    ConsistencyError,
    DataChanged,
    QuorumLost,
    SplitBrainConfig,
    System,
)
from swimactors.ddata import GCounter, LWWMap, ORSet
from swimactors.quorum import keep_majority
from swimactors.sim.systems import replay, simulated_systems
from swimactors.sim.trio_engine import SimNet

MAJORITY, ALL = Consistency.MAJORITY, Consistency.ALL


async def _formed(systems: list[System]) -> None:
    while any(len(s.data.replicas()) != len(systems) - 1 for s in systems):
        await trio.sleep(0.1)


def bounded(app: Any) -> Any:
    """``app`` failing after 300 simulated seconds instead of waiting forever."""

    async def run(net: SimNet) -> list[str]:
        with trio.fail_after(300):
            result: list[str] = await app(net)
            return result

    return run


def _run(app: Any, seed: int = 1) -> list[str]:
    return replay(bounded(app), seed)[1]


def test_a_majority_write_is_read_at_majority_on_another_node_at_once() -> None:
    async def app(net: SimNet) -> list[str]:
        log = []
        async with simulated_systems(net, 3) as systems:
            await _formed(systems)
            a, _, c = systems
            net.partition(["n1"], ["n2"])  # gossip n0 -> n2 still flows; n1 -/- n2
            value = await a.data.update(
                "cart", LWWMap, lambda m, w: m.set(w, "apples", 3), write=MAJORITY
            )
            log.append(f"written {value}")
            # n2 may not have the gossip yet; a majority read asks n0 or n1 as well
            log.append(f"read {await c.data.get('cart', read=MAJORITY)}")
        return log

    assert _run(app) == ["written {'apples': 3}", "read {'apples': 3}"]


def test_all_fails_with_a_typed_error_while_a_replica_is_unreachable() -> None:
    async def app(net: SimNet) -> list[str]:
        log = []
        async with simulated_systems(net, 3) as systems:
            await _formed(systems)
            net.crash("n2")
            await systems[0].data.update(
                "hits", GCounter, lambda c, w: c.increment(w, 2), write=MAJORITY
            )
            log.append("majority ok")
            try:
                await systems[0].data.update(
                    "hits", GCounter, lambda c, w: c.increment(w, 1), write=ALL, timeout=1.0
                )
            except ConsistencyError as exc:
                log.append(f"all failed {exc.reached}/{exc.needed}")
            log.append(f"local value {systems[0].data.value('hits')}")
            log.append(f"n1 value {await systems[1].data.get('hits', read=MAJORITY)}")
        return log

    assert _run(app) == ["majority ok", "all failed 2/3", "local value 3", "n1 value 3"]


def test_writes_and_reads_outlive_replicas_briefly_taking_this_node_for_down() -> None:
    """A replica that takes the writer for DOWN (its probe answers late under load) closes
    their connection, failing the request in flight; the writer refutes at once, so the
    request goes again and the call succeeds well within its timeout instead of failing."""

    def closing_on_first_request(system: System) -> None:
        serve, closed = system.data.serve, []

        def serve_after_closing(request: Any) -> Any:
            if not closed:  # the answer is lost with the connection
                closed.append(True)
                assert system.cluster is not None
                system.cluster.transport.node_down("n0", "down")
            return serve(request)

        system.data.serve = serve_after_closing  # type: ignore[method-assign]

    async def app(net: SimNet) -> list[str]:
        log = []
        async with simulated_systems(net, 3) as systems:
            await _formed(systems)
            a, b, c = systems
            for replica in (b, c):
                closing_on_first_request(replica)
            start = trio.current_time()
            await a.data.update("hits", GCounter, lambda g, w: g.increment(w, 2), write=ALL)
            log.append(f"all ok {b.data.value('hits')} {c.data.value('hits')}")
            for replica in (b, c):
                closing_on_first_request(replica)
            log.append(f"read {await a.data.get('hits', read=ALL)}")
            took = trio.current_time() - start
            log.append(f"well within the timeouts: {took < 1.0}")
        return log

    assert _run(app) == ["all ok 2 2", "read 2", "well within the timeouts: True"]


def test_subscribers_are_told_each_change_on_their_node() -> None:
    seen: list[Any] = []

    class Watcher(Actor):
        async def receive(self, msg: Any, ctx: Any) -> None:
            if isinstance(msg, DataChanged):
                seen.append((msg.key, sorted(msg.value)))

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 2) as systems:
            await _formed(systems)
            watcher = await systems[1].spawn(Watcher())
            systems[1].data.subscribe("users", watcher)
            for user in ("alice", "bob"):
                await systems[0].data.update("users", ORSet, lambda s, w, u=user: s.add(w, u))
                await trio.sleep(1.0)
            systems[1].data.unsubscribe("users", watcher)
            await systems[0].data.update("users", ORSet, lambda s, w: s.add(w, "carol"))
            await trio.sleep(1.0)
        return []

    _run(app)
    assert seen == [("users", ["alice"]), ("users", ["alice", "bob"])]


def test_only_a_serving_side_takes_majority_writes() -> None:
    async def app(net: SimNet) -> list[str]:
        log = []
        rule = SplitBrainConfig(strategy=keep_majority(), stable_after=3.0)
        async with simulated_systems(net, 5, split_brain=rule) as systems:
            await _formed(systems)
            names = [s.name for s in systems]
            net.partition(names[:3], names[3:])
            while systems[4].quorum_state != "lost" or len(systems[0].data.replicas()) != 2:
                await trio.sleep(0.1)
            try:
                await systems[4].data.update(
                    "k", GCounter, lambda c, w: c.increment(w), write=MAJORITY
                )
            except QuorumLost:
                log.append("minority refused")
            await systems[4].data.update("k", GCounter, lambda c, w: c.increment(w))
            log.append("minority local ok")
            await systems[0].data.update(
                "k", GCounter, lambda c, w: c.increment(w, 10), write=MAJORITY
            )
            log.append(f"majority ok {await systems[2].data.get('k', read=MAJORITY)}")
            net.heal()
            while any(s.data.value("k") != 11 for s in systems):
                await trio.sleep(0.5)
            log.append("healed 11")
        return log

    assert _run(app) == ["minority refused", "minority local ok", "majority ok 10", "healed 11"]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_runs_replay(seed: int) -> None:
    """Same seed, same trace (the ddata traffic included)."""

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 3) as systems:
            await _formed(systems)
            for i in range(5):
                await systems[i % 3].data.update(
                    "n", GCounter, lambda c, w: c.increment(w), write=MAJORITY
                )
            return [str(s.data.value("n")) for s in systems]

    assert replay(bounded(app), seed) == replay(bounded(app), seed)
