"""Mechanism 11: every event type is emitted, carrying the member as it now stands and the
time of the input that caused it."""

from __future__ import annotations

from swimactors.membership import (
    Member,
    MemberAlive,
    MemberConflict,
    MemberDown,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    MemberUpdated,
    Status,
)
from swimactors.membership.messages import Alive, Dead, Left, Suspect

from .util import addr, deliver, make_core

UP, SUSPECT, DOWN, LEFT = Status.UP, Status.SUSPECT, Status.DOWN, Status.LEFT


def test_a_members_life_emits_every_event_type_in_order() -> None:
    core = make_core()
    a = addr(1)
    steps = [
        (Alive("p1", a, 1), MemberUp, Member("p1", a, 1, UP)),
        (Alive("p1", a, 2, b"v2"), MemberUpdated, Member("p1", a, 2, UP, b"v2")),
        (Suspect("p1", 2, "p2"), MemberSuspect, Member("p1", a, 2, SUSPECT, b"v2")),
        (Alive("p1", a, 3, b"v2"), MemberAlive, Member("p1", a, 3, UP, b"v2")),
        (Alive("p1", addr(8), 4), MemberConflict, Member("p1", a, 3, UP, b"v2")),
        (Dead("p1", 3, "p2"), MemberDown, Member("p1", a, 3, DOWN, b"v2")),
        (Alive("p1", addr(7), 4), MemberUp, Member("p1", addr(7), 4, UP)),
        (Left("p1", 4), MemberLeft, Member("p1", addr(7), 4, LEFT)),
    ]
    for step, (message, kind, expected) in enumerate(steps):
        deliver(core, float(step), "p2", message)
        events = core.take_events()
        assert [type(e) for e in events] == [kind], (step, events)
        assert events[0].member == expected and events[0].time == float(step)
        if kind is MemberConflict:
            assert events[0].other == addr(8)  # type: ignore[attr-defined]
        else:
            assert core.member("p1") == expected


def test_a_refutation_that_also_changes_meta_reports_both() -> None:
    core = make_core()
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1))
    deliver(core, 1.0, "p2", Suspect("p1", 1, "p2"))
    core.take_events()
    deliver(core, 2.0, "p1", Alive("p1", addr(1), 2, b"new"))
    assert [type(e) for e in core.take_events()] == [MemberAlive, MemberUpdated]


def test_nothing_is_emitted_for_news_that_changes_nothing() -> None:
    core = make_core()
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1))
    core.take_events()
    deliver(core, 1.0, "p2", Alive("p1", addr(1), 1))
    deliver(core, 1.0, "p2", Alive("p1", addr(1), 2))  # same address and meta
    deliver(core, 1.0, "p2", Suspect("p1", 0, "p2"))
    assert core.take_events() == []
