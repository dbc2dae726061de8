"""The warm start: ``World.add_formed`` builds cores from one shared ``FormedCluster``.

Sharing member records between cores is only safe if every change copies first, so
these tests drive the hard paths (suspicion refuted, death, leave, restart, partition)
and then check that the shared records never moved."""

from __future__ import annotations

import pytest

from sims.common import Params
from sims.runner import run_one
from swimactors.membership import Config, FormedCluster, Member, Status, Swim
from swimactors.sim import LinkModel, Metrics, World, address_for
from swimactors.sim.rng import Streams
from swimactors.sim.schedule import Swarm, dumps, random_schedule, run_schedule

from .fakecore import fake_factory


def formed_world(n: int, seed: int = 3, loss: float = 0.0) -> tuple[World, Metrics]:
    world = World(seed, config=Config.lan(), link=LinkModel(loss=loss))
    metrics = Metrics(world)
    world.add_formed(n)
    return world, metrics


def test_a_formed_cluster_is_converged_at_once_and_stays_quiet() -> None:
    world, metrics = formed_world(30)
    assert metrics.converged()
    world.run_until(40.0)
    assert metrics.converged()
    assert metrics.false_suspicions == [] and metrics.false_positives == []
    for node in world.nodes.values():
        assert [m.name for m in node.core.members() if m.status is Status.UP] == sorted(world.nodes)
        assert node.core.take_events() == []


def test_faults_copy_shared_records_instead_of_changing_them() -> None:
    world, metrics = formed_world(12, loss=0.02)
    n1 = world.node("n1").core
    assert isinstance(n1, Swim)
    originals = [
        (s, s.incarnation, s.status, s.address) for s in n1._members.values() if s.name != "n1"
    ]
    world.run_until(5.0)
    world.crash("n5")  # DOWN everywhere
    world.leave("n6")  # LEFT everywhere
    world.pause("n7", 4.0)  # suspected, then refutes with a higher incarnation
    world.partition(["n8", "n9"], [n for n in world.nodes if n not in ("n8", "n9")])
    world.run_until(35.0)
    world.heal()
    world.restart("n5")
    assert world.run_until(metrics.converged, deadline=300.0, poll=1.0)
    for state, incarnation, status, address in originals:
        assert (state.incarnation, state.status, state.address) == (incarnation, status, address)
        assert state.shared
    for name in ("n5", "n6"):  # news about them was applied to copies, in every core
        assert metrics.status("n0", name) in (Status.UP, Status.LEFT)
    refuted = world.node("n0").core.member("n7")
    assert refuted is not None and refuted.incarnation > 0
    assert metrics.false_positives == []


def test_a_crash_in_a_formed_cluster_is_detected_by_everyone() -> None:
    world, metrics = formed_world(40, loss=0.01)
    world.run_until(3.0)
    world.crash("n17")
    assert world.run_until(lambda: metrics.crashes[0].all_down is not None, deadline=40.0)
    crash = metrics.crashes[0]
    assert crash.first_suspect is not None and crash.all_down is not None
    assert crash.first_suspect <= crash.all_down
    assert all(metrics.status(n, "n17") is Status.DOWN for n in world.nodes if n != "n17")
    assert metrics.false_positives == []


def test_formed_runs_replay_from_the_seed() -> None:
    def run(seed: int) -> str:
        world, _ = formed_world(20, seed=seed, loss=0.05)
        world.run_until(4.0)
        world.crash("n3")
        world.run_until(20.0)
        return world.trace_hash

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_a_core_that_started_cannot_assume_a_formed_cluster() -> None:
    formed = FormedCluster([Member("a", address_for(0), 0, Status.UP, b"")], 0.0)
    core = Swim("b", address_for(1))
    core.tick(0.0)
    with pytest.raises(ValueError, match="not started"):
        core.assume_formed(formed, 1.0)


def test_the_engine_starts_any_core_formed() -> None:
    world = World(1, core_factory=fake_factory)
    metrics = Metrics(world)
    world.add_formed(5)
    world.run_until(10.0)
    assert metrics.converged()
    assert len(world.node("n2").core.members()) == 5


def test_the_crash_scenario_runs_from_a_formed_cluster() -> None:
    report = run_one("crash", Params(nodes=25, seed=2, formed=True))
    assert report["start"] == "formed" and report["false_positives"] == 0
    assert 0 < report["first_suspect_s"] <= report["all_down_s"] <= report["detection_bound_s"]
    assert report["phase_wall_s"]["form"] < report["phase_wall_s"]["after_crash"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fault_schedules_from_a_formed_cluster_end_in_agreement(seed: int) -> None:
    streams = Streams(seed)
    swarm = Swarm.draw(streams.get("swarm"))
    steps = random_schedule(streams.get("swarm"), [f"n{i}" for i in range(6)], swarm, 60.0)
    outcome = run_schedule(seed, 6, steps, swarm=swarm, formed=True)
    assert outcome.problems == [], (seed, dumps(steps))
    assert outcome.metrics.coverage["fault_formed"] == 1
