"""The probe ring: one order of the members shared by every view, walked in step, so that
every member is probed exactly once per period cluster-wide (issue 13: with private
shuffled orders the wait for the first probe of a crashed member had a long tail)."""

from __future__ import annotations

import collections
import itertools
import math
import random

from hypothesis import given
from hypothesis import strategies as st

from swimactors.membership import Swim
from swimactors.membership.messages import Alive, Ping, Suspect
from swimactors.membership.ring import ProbeRing

from .util import CONFIG, Sent, acking, add_peers, addr, deliver, make_core, run

names = st.sets(st.text(min_size=1, max_size=8), min_size=2, max_size=40)


@given(names, st.integers(min_value=0, max_value=10**6))
def test_at_any_turn_every_member_probes_another_and_each_is_probed_once(
    members: set[str], turn: int
) -> None:
    ring = ProbeRing(members)
    targets = [ring.target(name, turn) for name in members]
    assert sorted(targets) == sorted(members)  # type: ignore[type-var]
    assert all(t != name for name, t in zip(members, targets, strict=True))


@given(names, st.integers(min_value=0, max_value=10**6))
def test_one_prober_visits_every_other_member_once_in_n_minus_one_turns(
    members: set[str], start: int
) -> None:
    ring = ProbeRing(members)
    prober = min(members)
    visited = [ring.target(prober, start + k) for k in range(len(members) - 1)]
    assert sorted(visited) == sorted(members - {prober})  # type: ignore[type-var]


def test_the_order_is_the_same_whatever_order_members_were_learnt_in() -> None:
    members = [f"node-{i}" for i in range(20)]
    shuffled = list(members)
    random.Random(3).shuffle(shuffled)
    grown = ProbeRing()
    for name in shuffled:
        grown.add(name)
        grown.add(name)  # twice changes nothing
    ring = ProbeRing(members)
    assert all(grown.target(m, t) == ring.target(m, t) for m in members for t in range(20))
    grown.discard("node-3")
    grown.discard("node-3")
    assert len(grown) == 19 and "node-3" not in {grown.target(m, 0) for m in members}


def test_alone_nobody_is_probed() -> None:
    assert ProbeRing(["a"]).target("a", 7) is None


def test_every_member_is_probed_exactly_once_in_every_period_cluster_wide() -> None:
    """Six cores with the same view, started at random phases: in each whole period of
    the shared clock the six probes go to six different members."""
    names = [f"p{i}" for i in range(6)]
    probed: dict[int, list[str]] = collections.defaultdict(list)
    for i, name in enumerate(names):
        core = Swim(name, addr(i), CONFIG, random.Random(i))
        for j, other in enumerate(names):
            if other != name:
                deliver(core, 0.0, other, Alive(other, addr(j), 1))
        for t, p in run(core, 12.0, acking()):
            for ping in p.of(Ping):
                if not p.reliable:
                    probed[math.floor(t / CONFIG.probe_interval)].append(ping.target)
    assert [sorted(probed[k]) for k in range(1, 12)] == [names] * 11


def test_while_local_health_stretches_the_periods_the_turns_go_one_by_one() -> None:
    """A node probing every 3 s cannot follow the shared period number (it would skip
    two turns in three and might never reach some members): it takes the next turn."""
    core = make_core()
    peers = add_peers(core, 5)
    incarnation = iter(range(100))
    for _ in range(2):
        deliver(core, 0.0, "p1", Suspect("n0", next(incarnation), "p1"))
    acks = acking()

    def respond(core: Swim, now: float, out: list[Sent]) -> None:
        acks(core, now, out)  # an answered probe: -1
        if any(p.of(Ping) and not p.reliable for p in out):
            deliver(core, now, "p1", Suspect("n0", next(incarnation), "p1"))  # a refutation: +1

    log = [
        (t, ping.target)
        for t, p in run(core, 60.0, respond)
        if not p.reliable
        for ping in p.of(Ping)
    ]
    assert core.awareness == 2
    times = [t for t, _ in log]
    assert {round(b - a, 6) for a, b in itertools.pairwise(times)} == {3 * CONFIG.probe_interval}
    ring = ProbeRing([core.name, *peers])
    targets = [name for _, name in log]
    assert any(
        targets == [ring.target(core.name, first + k) for k in range(len(log))]
        for first in range(len(peers))
    )
