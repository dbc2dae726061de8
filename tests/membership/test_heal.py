"""After a heal: a member held DOWN that speaks is told so, and answers with its Alive, so a
node that missed the gossip of its return does not hold it DOWN until a push/pull."""

from __future__ import annotations

import pytest

from sims.scenarios.split_heal import run_seed as split_heal
from swimactors.membership import Status
from swimactors.membership.messages import Ack, Alive, Dead, Ping

from .util import (
    CONFIG,
    Sent,
    acking,
    add_peers,
    addr,
    deliver,
    make_core,
    member,
    run,
    sent,
)


def told(packets: list[Sent]) -> list[tuple[tuple[str, int], Dead]]:
    """The Dead news this node sent on its own word (gossip relays others')."""
    return [(p.destination, m) for p in packets for m in p.of(Dead) if m.source == "n0"]


def test_a_member_held_down_that_speaks_is_told_so_at_most_once_per_probe_interval() -> None:
    core = make_core()
    add_peers(core, 3)
    deliver(core, 0.0, "p2", Dead("p1", 1, "p2"))
    sent(core)
    deliver(core, 1.0, "p1", Ping(7, "n0"))
    out = sent(core)
    assert [(p.destination, p.of(Ack)) for p in out if p.of(Ack)] == [(addr(1), [Ack(7)])]
    assert told(out) == [(addr(1), Dead("p1", 1, "n0"))]
    deliver(core, 1.0 + CONFIG.probe_interval / 2, "p1", Ping(8, "n0"))
    assert not told(sent(core))
    deliver(core, 1.0 + CONFIG.probe_interval, "p1", Ping(9, "n0"))
    assert told(sent(core)) == [(addr(1), Dead("p1", 1, "n0"))]
    assert core.counters["told_down"] == 2


def test_a_forged_packet_from_a_crashed_member_brings_nothing_back() -> None:
    """The news goes to the address on record, not to the packet's source; a crashed
    member there does not answer, so it stays DOWN."""
    core = make_core()
    add_peers(core, 3)
    deliver(core, 0.0, "p2", Dead("p1", 1, "p2"))
    sent(core)
    deliver(core, 1.0, "p1", Alive("p2", addr(2), 1), source=("10.66.0.1", 9999))
    assert told(sent(core)) == [(addr(1), Dead("p1", 1, "n0"))]
    run(core, 30.0, acking(lambda name: name != "p1"))
    assert member(core, "p1").status is Status.DOWN


def test_news_of_our_death_is_answered_to_its_sender_with_our_alive() -> None:
    """Our current life goes back directly: refuted when the news is about it, as it is
    when the news is of an earlier life (no new incarnation then)."""
    core = make_core()
    add_peers(core, 3)
    deliver(core, 1.0, "p2", Dead("n0", 0, "p2"))
    assert core.incarnation == 1
    answers = [m for p in sent(core) if p.destination == addr(2) for m in p.of(Alive)]
    assert Alive("n0", core.address, 1) in answers
    deliver(core, 2.0, "p3", Dead("n0", 0, "p3"))
    assert core.incarnation == 1
    answers = [m for p in sent(core) if p.destination == addr(3) for m in p.of(Alive)]
    assert Alive("n0", core.address, 1) in answers


def test_a_member_held_down_is_up_again_one_round_trip_after_it_speaks() -> None:
    """p1 came back (Alive at incarnation 2) while this node missed the news: p1's ping
    brings it the news of its death, p1 answers with its Alive, and it is UP."""
    core = make_core()
    add_peers(core, 3)
    deliver(core, 0.0, "p2", Dead("p1", 1, "p2"))
    sent(core)
    deliver(core, 1.0, "p1", Ping(7, "n0"))
    assert told(sent(core)) == [(addr(1), Dead("p1", 1, "n0"))]
    deliver(core, 1.01, "p1", Alive("p1", addr(1), 2))
    assert member(core, "p1").status is Status.UP


def test_a_member_that_left_is_not_told_anything() -> None:
    core = make_core()
    add_peers(core, 3)
    deliver(core, 0.0, "p1", Alive("p2", addr(2), 1))
    deliver(core, 0.0, "p2", Dead("p1", 1, "p2"))
    assert core.force_leave("p1", 0.5)
    sent(core)
    deliver(core, 1.0, "p1", Ping(7, "n0"))
    assert not told(sent(core))


@pytest.mark.parametrize("seeds", [range(0, 15), range(15, 30)])
def test_after_a_heal_the_views_agree_soon_after_the_first_packet_across(
    seeds: range,
) -> None:
    """A 3|2 cut held 60 s, healed (sims.scenarios.split_heal): once one packet crosses,
    every member is UP everywhere within a few round trips; a node that missed the
    gossip of a member's return used to hold it DOWN until a push/pull (up to 16 s)."""
    for seed in seeds:
        heal = split_heal(seed)
        assert heal.contact_s is not None and heal.converged_s is not None
        assert heal.converged_s - heal.contact_s <= 0.5, seed
