"""A known member's name claimed from another address (a restart on a new IP or port):
``rules.may_move`` is the rule, ``Config.dead_node_reclaim_time`` its one knob.

- UP or SUSPECT: refused, reported as ``MemberConflict`` (``name_conflicts``): two
  processes claim one name, and the holder keeps it until it is declared DOWN;
- LEFT: taken at once (it said it was going);
- DOWN: taken once it has been DOWN ``dead_node_reclaim_time`` (0, the default: at once);
  before that refused as a conflict (memberlist's ``DeadNodeReclaimTime``);
- in every case the incarnation must still win: a stale Alive from an address the member
  held before never brings it back.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors.membership import Config, Member, MemberConflict, MemberUp, Status, rules
from swimactors.membership.messages import Alive, Dead, Left, Suspect

from .util import HOME, addr, deliver, make_core, member, messages, next_deadline, run

UP, SUSPECT, DOWN, LEFT = Status.UP, Status.SUSPECT, Status.DOWN, Status.LEFT
OLD, NEW = addr(1), addr(9)


def core_holding(status: Status, reclaim: float, at: float = 0.0) -> Any:
    """A core holding ``p1`` at ``OLD``, incarnation 5, with ``status`` since ``at``."""
    core = make_core(config=Config.lan().replace(dead_node_reclaim_time=reclaim))
    deliver(core, 0.0, "p2", Alive("p2", addr(2), 1))
    deliver(core, 0.0, "p2", Alive("p1", OLD, 5))
    news = {
        SUSPECT: Suspect("p1", 5, "p2"),
        DOWN: Dead("p1", 5, "p2"),
        LEFT: Left("p1", 5),
    }.get(status)
    if news is not None:
        deliver(core, at, "p2", news)
    assert core.member("p1") == Member("p1", OLD, 5, status)
    core.take_events()
    return core


def test_a_down_members_name_is_taken_from_another_address_only_after_the_reclaim_time() -> None:
    core = core_holding(DOWN, reclaim=10.0, at=1.0)
    deliver(core, 6.0, "p2", Alive("p1", NEW, 6, b"new"))
    assert member(core, "p1") == Member("p1", OLD, 5, DOWN)
    (event,) = core.take_events()
    assert isinstance(event, MemberConflict) and event.other == NEW and event.time == 6.0
    assert core.counters["name_conflicts"] == 1
    assert Alive("p1", NEW, 6, b"new") not in messages([p for _, p in run(core, 8.0)], Alive)
    deliver(core, 11.0, "p2", Alive("p1", NEW, 7, b"new"))
    assert member(core, "p1") == Member("p1", NEW, 7, UP, b"new")
    assert [type(e) for e in core.take_events() if e.member.name == "p1"] == [MemberUp]
    assert Alive("p1", NEW, 7, b"new") in messages([p for _, p in run(core, 13.0)], Alive)


def test_memberlists_conflict_scenario() -> None:
    """memberlist's TestMemberList_AliveNode_Conflict: refused while alive (nothing
    queued), taken after death and the reclaim time."""
    core = core_holding(UP, reclaim=0.01)
    deliver(core, 1.0, "p2", Alive("p1", NEW, 6, b"foo"))
    assert member(core, "p1") == Member("p1", OLD, 5, UP)
    assert Alive("p1", NEW, 6, b"foo") not in messages([p for _, p in run(core, 2.0)], Alive)
    deliver(core, 2.0, "p2", Dead("p1", 6, "p2"))
    assert member(core, "p1").status is DOWN
    deliver(core, 2.02, "p2", Alive("p1", NEW, 7, b"foo"))
    assert member(core, "p1") == Member("p1", NEW, 7, UP, b"foo")


def test_a_left_members_name_is_taken_from_another_address_at_once() -> None:
    core = core_holding(LEFT, reclaim=3600.0, at=1.0)
    deliver(core, 1.5, "p2", Alive("p1", NEW, 6))
    assert member(core, "p1") == Member("p1", NEW, 6, UP)
    assert core.counters["name_conflicts"] == 0


def test_by_default_a_down_members_name_is_taken_from_another_address_at_once() -> None:
    assert Config.lan().dead_node_reclaim_time == 0.0
    core = core_holding(DOWN, reclaim=0.0, at=1.0)
    deliver(core, 1.0, "p2", Alive("p1", NEW, 6))
    assert member(core, "p1") == Member("p1", NEW, 6, UP)


def test_a_stale_alive_from_another_address_never_brings_a_departed_member_back() -> None:
    for status in (DOWN, LEFT):
        core = core_holding(status, reclaim=0.0)
        deliver(core, 1.0, "p2", Alive("p1", NEW, 5))
        deliver(core, 1.0, "p2", Alive("p1", NEW, 4))
        assert member(core, "p1") == Member("p1", OLD, 5, status)


def test_the_reclaim_time_is_validated() -> None:
    for bad in (-1.0, float("nan"), float("inf"), True, "1"):
        try:
            Config.lan().replace(dead_node_reclaim_time=bad)
        except ValueError as exc:
            assert "dead_node_reclaim_time" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(list(Status)),
    reclaim=st.sampled_from([0.0, 5.0, 30.0]),
    elapsed=st.floats(0.0, 60.0),
    moved=st.booleans(),
    delta=st.integers(-1, 2),
)
def test_an_alive_applies_exactly_as_the_rule_says(
    status: Status, reclaim: float, elapsed: float, moved: bool, delta: int
) -> None:
    """Any member state, any time since it changed, the same or another address, any
    incarnation: the view changes, or a conflict is reported, exactly as stated here."""
    core = core_holding(status, reclaim=reclaim, at=1.0)
    address = NEW if moved else OLD
    incarnation = 5 + delta
    now = 1.0 + elapsed
    deliver(core, now, "p2", Alive("p1", address, incarnation, b"m"))
    movable = status is LEFT or (status is DOWN and now - 1.0 >= reclaim)
    assert rules.may_move(status, now - 1.0, reclaim) is movable
    allowed = not moved or movable
    conflicts = [e for e in core.take_events() if isinstance(e, MemberConflict)]
    assert len(conflicts) == (0 if allowed else 1)
    if allowed and incarnation > 5:
        assert member(core, "p1") == Member("p1", address, incarnation, UP, b"m")
    else:
        assert member(core, "p1") == Member("p1", OLD, 5, status)


def test_a_member_advertising_our_own_address_is_taken_and_fails_its_probes_here() -> None:
    """Two nodes advertising one address (behind NAT, each must advertise its own): as in
    memberlist, the other is a member like any, but what is sent to it reaches this node,
    which drops every packet in its own name (``rejected_own_name``): the member is
    suspected and declared DOWN here, and nothing sent to it is answered in its name."""
    core = make_core()
    deliver(core, 0.0, "p1", Alive("twin", HOME, 1))
    assert member(core, "twin") == Member("twin", HOME, 1, UP)
    now = 0.0
    while member(core, "twin").status is not DOWN and now < 60.0:
        now = next_deadline(core)
        core.tick(now)
        for packet in core.take_outgoing():
            if packet.destination == HOME:  # it comes back to us
                core.receive(now, HOME, packet.data)
    assert member(core, "twin").status is DOWN
    assert core.counters["rejected_own_name"] > 0
    assert core.counters["received_ack"] == 0
    assert member(core, "n0").status is UP and core.counters["refutations"] == 0
