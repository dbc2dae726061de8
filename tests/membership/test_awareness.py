"""Mechanism 4: Lifeguard local health awareness.  Missed acks, missed nacks and refuting
raise the score; successful probes lower it; the probe interval and timeout stretch by
``score + 1``, capped at ``awareness_max_multiplier``."""

from __future__ import annotations

import itertools

import pytest

from swimactors.membership import Swim
from swimactors.membership.awareness import Awareness
from swimactors.membership.messages import Ack, Dead, Nack, Ping, PingReq, Suspect

from .util import CONFIG, Sent, acking, add_peers, addr, deliver, make_core, run, sent

PATIENT = CONFIG.replace(suspicion_mult=200)  # suspects stay probed for the whole test


def test_awareness_score_saturates_between_zero_and_max_minus_one() -> None:
    awareness = Awareness(max_multiplier=8)
    awareness.apply(-3)
    assert awareness.score == 0 and awareness.scale(0.5) == 0.5
    awareness.apply(100)
    assert awareness.score == 7 and awareness.scale(0.5) == 4.0
    awareness.apply(-1)
    assert awareness.score == 6


def probe_starts(log: list[tuple[float, Sent]]) -> list[float]:
    return [t for t, p in log if not p.reliable and p.of(Ping)]


ONE_PING_A_PROBE = PATIENT.replace(indirect_checks=0, buddy_first=False)
"""No helpers, and no ping to the suspect at the verdict: every datagram ping starts a probe."""


def test_missed_acks_stretch_the_probe_interval_up_to_the_cap() -> None:
    core = make_core(config=ONE_PING_A_PROBE)
    add_peers(core, 4)
    starts = probe_starts(run(core, 80.0))
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    # each failed probe without helpers costs one point; the multiplier stops at 8
    assert gaps[:10] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 8.0, 8.0]
    assert core.awareness == CONFIG.awareness_max_multiplier - 1


def test_the_probe_timeout_stretches_too() -> None:
    core = make_core(config=ONE_PING_A_PROBE)
    add_peers(core, 4)
    log = run(core, 40.0)
    pings = [t for t, p in log if p.of(Ping) and not p.reliable]
    fallbacks = [t for t, p in log if p.of(Ping) and p.reliable]
    # probe k starts with score k: its reliable fallback follows (k + 1) * probe_timeout later
    waits = [round(f - s, 6) for s, f in zip(pings, fallbacks, strict=False)][:5]
    assert waits == [CONFIG.probe_timeout * (k + 1) for k in range(5)]


def fail_one_probe(core: Swim, nacks: int) -> None:
    """Run one probe that nobody acks, with ``nacks`` of the helpers answering Nack."""
    while True:
        now = core.next_deadline()
        assert now is not None
        core.tick(now)
        reqs = [(p.destination, r) for p in sent(core) for r in p.of(PingReq)]
        if reqs:
            break
    for helper, req in reqs[:nacks]:
        deliver(core, now + 0.1, f"p{helper[1] - addr(0)[1]}", Nack(req.seq))
    end = now - CONFIG.probe_timeout + CONFIG.probe_interval  # the probe began earlier
    run(core, end)
    assert core.counters["probe_failures"] == 1


@pytest.mark.parametrize(("nacks", "penalty"), [(0, 3), (1, 2), (2, 1), (3, 0)])
def test_each_missing_nack_costs_a_point(nacks: int, penalty: int) -> None:
    core = make_core(config=PATIENT)
    add_peers(core, 5)
    fail_one_probe(core, nacks)
    assert core.awareness == penalty


def test_refuting_a_suspicion_costs_a_point() -> None:
    core = make_core()
    deliver(core, 0.0, "p1", Suspect("n0", 0, "p1"))
    assert core.awareness == 1
    deliver(core, 0.1, "p1", Suspect("n0", 1, "p1"))
    assert core.awareness == 2


def test_successful_probes_lower_the_score_one_at_a_time() -> None:
    core = make_core()
    add_peers(core, 3)
    for inc in range(3):
        deliver(core, 0.0, "p1", Suspect("n0", inc, "p1"))
    assert core.awareness == 3
    respond = acking()
    starts = probe_starts(run(core, 30.0, respond))
    assert core.awareness == 0
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    # each probe's interval is fixed when it starts: 4, then 3, 2, 1 as health returns
    assert gaps[:5] == [4.0, 3.0, 2.0, 1.0, 1.0]


def test_a_healthy_node_keeps_the_base_interval() -> None:
    core = make_core()
    add_peers(core, 3)
    run(core, 20.0, acking())
    assert core.awareness == 0
    deliver(core, 20.0, "p1", Ack(123456))  # a stray ack changes nothing
    assert core.awareness == 0


@pytest.mark.parametrize("seed", range(3))
def test_probing_a_crashed_member_at_the_lan_defaults_counts_the_helpers_nacks(
    seed: int,
) -> None:
    """Healthy helpers nack in time, so a prober whose target crashed stays at awareness 0
    (issue 13: every nack arrived after the period and the score went from 0 to 3)."""
    from swimactors.sim import World

    world = World(seed, config=CONFIG)
    world.add_nodes(6, stagger=0.1)
    world.run_until(20.0)
    world.crash("n5")
    live = [world.node(f"n{i}").core for i in range(5)]
    worst = 0
    while world.now < 40.0:
        world.run_until(world.now + 0.05)
        worst = max(worst, *(core.awareness for core in live))
    assert all(core.member("n5").status.name == "DOWN" for core in live)
    assert worst == 0


def test_a_probe_whose_target_is_declared_dead_meanwhile_costs_nothing() -> None:
    """News of the target's death before the ping-reqs: none are sent, and the silence
    says nothing about us (it cost a point before: a 6-node sim at the LAN defaults hit
    it when the suspicion timed out in the middle of a probe of the crashed member)."""
    core = make_core(config=PATIENT)
    add_peers(core, 5)
    while not (pings := [m for p in sent(core) for m in p.of(Ping)]):
        now = core.next_deadline()
        assert now is not None
        core.tick(now)
    [ping] = pings
    deliver(core, now + 0.1, "p9", Dead(ping.target, 1, "p9"))
    log = run(core, now + CONFIG.probe_interval)
    assert not [p for _, p in log if p.of(PingReq)]
    assert core.awareness == 0 and core.counters["probe_failures"] == 0
