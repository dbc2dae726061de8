"""The event loop and node faults, driven with a tiny heartbeat core (tests/sim/fakecore.py)
so these tests check the engine, not SWIM."""

from __future__ import annotations

import pytest

from swimactors.membership.types import MemberDown, MemberEvent, MemberLeft, Status
from swimactors.sim import (
    LinkModel,
    Metrics,
    NodeState,
    SimulationError,
    World,
    first_divergence,
)

from .fakecore import LOCAL, FakeCore, fake_factory


def cluster(n: int = 4, seed: int = 1, keep_trace: bool = False, **link: float) -> World:
    world = World(
        seed, config=LOCAL, link=LinkModel(**link), core_factory=fake_factory, keep_trace=keep_trace
    )
    world.add_nodes(n, stagger=0.1)
    return world


def fake(world: World, name: str) -> FakeCore:
    core = world.node(name).core
    assert isinstance(core, FakeCore)
    return core


def run_lossy(seed: int) -> World:
    world = cluster(6, seed, keep_trace=True, loss=0.2, jitter=0.01)
    world.run_until(20.0)
    world.crash("n3")
    world.run_until(30.0)
    return world


def test_same_seed_same_trace_and_other_seed_differs() -> None:
    first, again, other = run_lossy(5), run_lossy(5), run_lossy(6)
    assert first.trace.count > 500
    assert first.trace_hash == again.trace_hash
    assert first.trace.records == again.trace.records
    assert other.trace_hash != first.trace_hash
    index, left, right = first_divergence(first.trace.records, other.trace.records) or (0, "", "")
    assert left != right and index >= 0


def test_join_converges_and_run_until_predicate_stops_early() -> None:
    world = cluster(5)
    metrics = Metrics(world)
    assert world.run_until(metrics.converged, deadline=10.0)
    assert world.now < 3.0
    for node in world.nodes.values():
        assert {m.name for m in node.core.members()} == set(world.nodes)


def test_run_until_predicate_reports_a_missed_deadline() -> None:
    world = cluster(3)
    assert not world.run_until(lambda: False, deadline=4.0)
    assert world.now == 4.0
    with pytest.raises(TypeError):
        world.run_until(lambda: True)


def test_crash_is_detected_and_timed_by_metrics() -> None:
    world = cluster(5)
    metrics = Metrics(world)
    world.run_until(10.0)
    world.crash("n2")
    world.run_until(20.0)
    (crash,) = metrics.crashes
    assert crash.subject == "n2" and crash.time == 10.0
    # the last heartbeat came up to 1 s before the crash; DOWN after 3.5 s of silence,
    # seen at the next 1 s tick: 2.5 .. 4.6 s after the crash
    assert crash.first_down is not None and crash.all_down is not None
    assert 2.5 <= crash.first_down <= crash.all_down <= 4.6
    assert metrics.false_positives == []
    assert world.node("n2").state is NodeState.CRASHED


def test_restart_brings_a_fresh_core_with_a_higher_incarnation() -> None:
    world = cluster(4)
    world.run_until(5.0)
    old = world.node("n1").core
    world.crash("n1")
    world.run_until(12.0)
    node = world.restart("n1")
    assert node.core is not old and node.core.incarnation == 12001
    world.run_until(15.0)
    seen = {m.name: m for m in world.node("n0").core.members()}
    assert seen["n1"].status is Status.UP and seen["n1"].incarnation == 12001
    assert node.counters()["sent_beat"] > fake(world, "n1").counters["sent_beat"]


def test_pause_freezes_timers_and_queues_packets_until_resume() -> None:
    world = cluster(3)
    world.run_until(5.0)
    core = fake(world, "n1")
    received = core.counters["received_beat"]
    world.pause("n1", duration=10.0)
    world.run_until(14.9)
    assert world.node("n1").state is NodeState.PAUSED
    assert all(t <= 5.0 for t in core.ticks)
    assert core.counters["received_beat"] == received
    world.run_until(15.5)
    assert core.counters["received_beat"] >= received + 15  # the queued heartbeats
    assert any(t >= 15.0 for t in core.ticks)


def test_slow_node_timers_fire_late() -> None:
    world = World(1, config=LOCAL, link=LinkModel(jitter=0.0), core_factory=fake_factory)
    world.add_node()
    world.run_until(2.5)
    world.slow("n0", 0.4)
    world.run_until(6.0)
    ticks = fake(world, "n0").ticks
    late = [t for t in ticks if t > 2.5]
    assert late == pytest.approx([3.4, 4.8])  # each 1 s timer 0.4 s late


def test_clock_drift_changes_the_timer_rate_without_a_jump() -> None:
    world = World(1, config=LOCAL, core_factory=fake_factory)
    world.add_node()
    world.run_until(3.5)
    world.drift("n0", 1.0)  # the node's clock now runs twice as fast
    world.run_until(5.5)
    node = world.node("n0")
    assert node.clock.local(3.5) == pytest.approx(3.5)
    fired = [t for t in fake(world, "n0").ticks if t > 3.5]
    assert fired == pytest.approx([4.0, 5.0, 6.0, 7.0])  # local times, 0.5 s of sim apart


def test_leave_stops_the_node_once_its_core_is_done() -> None:
    world = cluster(3)
    events: list[tuple[str, MemberEvent]] = []
    world.on_event(lambda name, event: events.append((name, event)))
    world.run_until(3.0)
    world.leave("n2")
    world.run_until(5.0)
    assert world.node("n2").state is NodeState.LEFT
    assert ("n0", "n2") in {(o, e.member.name) for o, e in events if isinstance(e, MemberLeft)}


def test_partition_deaths_are_excused_but_a_silent_healthy_link_is_not() -> None:
    world = cluster(4)
    metrics = Metrics(world)
    world.run_until(5.0)
    world.partition(["n0", "n1"], ["n2", "n3"])
    world.run_until(15.0)
    world.heal()
    world.run_until(20.0)
    assert metrics.false_positives == []
    assert metrics.coverage["down_of_impaired"] > 0
    world.run_until(15.0 + metrics.grace_seconds())
    world.set_link(LinkModel(loss=1.0), "n0", "n1")  # not a declared fault: a real failure
    world.run_until(world.now + 10.0)
    assert {(o, s) for _, o, s in metrics.false_positives} >= {("n0", "n1"), ("n1", "n0")}


def test_packet_observer_sees_drops_with_their_reason() -> None:
    world = World(1, config=LOCAL, core_factory=lambda s, r, i: FakeCore(s, r, i, padding=1500))
    seen: list[str | None] = []
    world.on_packet(lambda record: seen.append(record.dropped))
    world.add_nodes(2)
    world.run_until(3.0)
    assert "oversize" in seen and world.dropped["oversize"] == seen.count("oversize")
    assert None in seen  # the reliable join frames are larger but get through


def test_misuse_raises_typed_errors() -> None:
    world = cluster(2)
    with pytest.raises(SimulationError, match="already exists"):
        world.add_node("n0")
    with pytest.raises(SimulationError, match="no node"):
        world.crash("nope")
    with pytest.raises(SimulationError, match="still running"):
        world.restart("n0")
    with pytest.raises(ValueError, match="drift"):
        world.drift("n0", -1.0)


def test_crashed_node_gets_nothing_and_down_events_reach_observers() -> None:
    world = cluster(3)
    downs: list[str] = []
    world.on_event(lambda n, e: downs.append(e.member.name) if isinstance(e, MemberDown) else None)
    world.run_until(3.0)
    world.crash("n0")
    world.run_until(10.0)
    assert downs.count("n0") == 2
    assert world.dropped["node_down"] > 0


class StuckCore(FakeCore):
    """A broken core: its deadline never moves past 1.0."""

    def next_deadline(self) -> float | None:
        return 1.0


def test_a_core_whose_deadline_never_moves_is_reported_not_spun_on() -> None:
    world = World(1, config=LOCAL, core_factory=lambda s, r, i: StuckCore(s, r, i))
    world.add_node()
    with pytest.raises(SimulationError, match="n0: next_deadline"):
        world.run_until(5.0)
