"""Mechanism 3, part one: the SWIM precedence rules, as a table.

A member ``m`` stands at incarnation 5 with some status; a message about it arrives at a
lower, equal or higher incarnation.  The rules (SWIM section 4.2, memberlist's
``aliveNode`` / ``suspectNode`` / ``deadNode``):

- Alive(i) overrides UP/SUSPECT/DOWN/LEFT at j < i (a refutation, or a rejoin);
- Suspect(i) overrides UP at j <= i and SUSPECT at j < i; never revives DOWN/LEFT;
- Dead(i) overrides UP/SUSPECT at j <= i; a DOWN or LEFT member stays as it is;
- Left(i) overrides UP/SUSPECT/DOWN at j <= i (a graceful leave is the better news).
"""

from __future__ import annotations

from typing import Any

import pytest

from swimactors.membership import (
    Member,
    MemberAlive,
    MemberDown,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    Status,
    Swim,
    rules,
)
from swimactors.membership.messages import Alive, Dead, Left, Suspect

from .util import HOME, addr, deliver, make_core, member, messages, run

UP, SUSPECT, DOWN, LEFT = Status.UP, Status.SUSPECT, Status.DOWN, Status.LEFT
M = addr(1)


def message(kind: str, incarnation: int) -> Any:
    return {
        "alive": Alive("m", M, incarnation),
        "suspect": Suspect("m", incarnation, "p2"),
        "dead": Dead("m", incarnation, "p2"),
        "left": Left("m", incarnation),
    }[kind]


SETUP = {UP: "alive", SUSPECT: "suspect", DOWN: "dead", LEFT: "left"}


def core_with_m(status: Status) -> Swim:
    """A core that sees ``m`` at incarnation 5 with ``status`` (and two more members)."""
    core = make_core()
    for i in (2, 3):
        deliver(core, 0.0, f"p{i}", Alive(f"p{i}", addr(i), 1))
    deliver(core, 0.0, "p2", Alive("m", M, 5))
    if status is not UP:
        deliver(core, 0.0, "p2", message(SETUP[status], 5))
    assert core.member("m") == Member("m", M, 5, status)
    core.take_events()
    return core


# (message, incarnation relative to 5, status before) -> (status after, incarnation, event)
TABLE: list[tuple[str, int, Status, Status, int, type | None]] = [
    ("alive", 4, UP, UP, 5, None),
    ("alive", 5, UP, UP, 5, None),
    ("alive", 6, UP, UP, 6, None),
    ("alive", 4, SUSPECT, SUSPECT, 5, None),
    ("alive", 5, SUSPECT, SUSPECT, 5, None),
    ("alive", 6, SUSPECT, UP, 6, MemberAlive),
    ("alive", 4, DOWN, DOWN, 5, None),
    ("alive", 5, DOWN, DOWN, 5, None),
    ("alive", 6, DOWN, UP, 6, MemberUp),
    ("alive", 4, LEFT, LEFT, 5, None),
    ("alive", 5, LEFT, LEFT, 5, None),
    ("alive", 6, LEFT, UP, 6, MemberUp),
    ("suspect", 4, UP, UP, 5, None),
    ("suspect", 5, UP, SUSPECT, 5, MemberSuspect),
    ("suspect", 6, UP, SUSPECT, 6, MemberSuspect),
    ("suspect", 4, SUSPECT, SUSPECT, 5, None),
    ("suspect", 5, SUSPECT, SUSPECT, 5, None),
    ("suspect", 6, SUSPECT, SUSPECT, 6, None),
    ("suspect", 4, DOWN, DOWN, 5, None),
    ("suspect", 5, DOWN, DOWN, 5, None),
    ("suspect", 6, DOWN, DOWN, 5, None),
    ("suspect", 4, LEFT, LEFT, 5, None),
    ("suspect", 5, LEFT, LEFT, 5, None),
    ("suspect", 6, LEFT, LEFT, 5, None),
    ("dead", 4, UP, UP, 5, None),
    ("dead", 5, UP, DOWN, 5, MemberDown),
    ("dead", 6, UP, DOWN, 6, MemberDown),
    ("dead", 4, SUSPECT, SUSPECT, 5, None),
    ("dead", 5, SUSPECT, DOWN, 5, MemberDown),
    ("dead", 6, SUSPECT, DOWN, 6, MemberDown),
    ("dead", 4, DOWN, DOWN, 5, None),
    ("dead", 5, DOWN, DOWN, 5, None),
    ("dead", 6, DOWN, DOWN, 5, None),
    ("dead", 4, LEFT, LEFT, 5, None),
    ("dead", 5, LEFT, LEFT, 5, None),
    ("dead", 6, LEFT, LEFT, 5, None),
    ("left", 4, UP, UP, 5, None),
    ("left", 5, UP, LEFT, 5, MemberLeft),
    ("left", 6, UP, LEFT, 6, MemberLeft),
    ("left", 4, SUSPECT, SUSPECT, 5, None),
    ("left", 5, SUSPECT, LEFT, 5, MemberLeft),
    ("left", 6, SUSPECT, LEFT, 6, MemberLeft),
    ("left", 4, DOWN, DOWN, 5, None),
    ("left", 5, DOWN, LEFT, 5, MemberLeft),
    ("left", 6, DOWN, LEFT, 6, MemberLeft),
    ("left", 4, LEFT, LEFT, 5, None),
    ("left", 5, LEFT, LEFT, 5, None),
    ("left", 6, LEFT, LEFT, 5, None),
]


@pytest.mark.parametrize(("kind", "incarnation", "before", "after", "inc_after", "event"), TABLE)
def test_precedence(
    kind: str,
    incarnation: int,
    before: Status,
    after: Status,
    inc_after: int,
    event: type | None,
) -> None:
    core = core_with_m(before)
    deliver(core, 1.0, "p3", message(kind, incarnation))
    assert core.member("m") == Member("m", M, inc_after, after)
    events = core.take_events()
    assert [type(e) for e in events] == ([event] if event else [])
    if event is not None:
        assert events[0].member == core.member("m") and events[0].time == 1.0
    # news that changed our view is passed on; ignored news is not (the setup's own
    # message, still queued, is indistinguishable from an equal one and is skipped)
    news = message(kind, incarnation)
    spread = messages([p for _, p in run(core, 3.0)], type(news))
    if (after, inc_after) != (before, 5):
        assert news in spread, "a change of view must be gossiped"
    elif news != message(SETUP[before], 5):
        assert news not in spread


def test_the_table_covers_every_combination() -> None:
    combos = {(k, i, b) for k, i, b, *_ in TABLE}
    assert len(combos) == len(TABLE) == 4 * 3 * 4


@pytest.mark.parametrize(("kind", "incarnation", "before", "after", "inc_after", "event"), TABLE)
def test_the_rules_module_states_the_table(
    kind: str,
    incarnation: int,
    before: Status,
    after: Status,
    inc_after: int,
    event: type | None,
) -> None:
    """rules.supersedes says yes exactly where the core changes its view, plus the one
    case that changes nothing but counts: a repeated Suspect(j) is one more witness."""
    witness = (kind, incarnation, before) == ("suspect", 5, SUSPECT)
    changed = (after, inc_after) != (before, 5)
    assert rules.supersedes(before, 5, message(kind, incarnation)) is (changed or witness)


# -- news about ourselves --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["suspect", "dead", "left"])
@pytest.mark.parametrize("relative", [-1, 0, 3])
def test_news_of_our_own_death_at_our_incarnation_or_above_is_refuted(
    kind: str, relative: int
) -> None:
    core = make_core(incarnation=5)
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1))
    seen = 5 + relative
    news = {
        "suspect": Suspect("n0", seen, "p1"),
        "dead": Dead("n0", seen, "p1"),
        "left": Left("n0", seen),
    }[kind]
    deliver(core, 1.0, "p1", news)
    assert member(core, "n0").status is UP
    if relative < 0:
        assert core.incarnation == 5 and core.counters["refutations"] == 0
        return
    assert core.incarnation == seen + 1
    assert core.counters["refutations"] == 1
    spread = messages([p for _, p in run(core, 3.0)], Alive)
    assert Alive("n0", HOME, seen + 1) in spread


def test_a_stale_alive_about_ourselves_from_an_older_life_is_outbid() -> None:
    core = make_core(incarnation=0)
    deliver(core, 0.0, "p1", Alive("n0", HOME, 7, b"old meta"))
    assert core.incarnation == 8
    deliver(core, 1.0, "p1", Alive("n0", HOME, 8))  # our own news echoed back: nothing to do
    assert core.incarnation == 8
