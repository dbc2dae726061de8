"""Suspicion timer maths and the awareness score, checked against the figures other SWIM
implementations assert for the same formulas (Lifeguard's, as memberlist states them).

``remaining = started + timeout(c) - now`` may go negative: a confirmation that arrives
after the shortened deadline fires the suspicion at once, and only once.
"""

from __future__ import annotations

import math

import pytest

from swimactors.membership import MemberDown, Status
from swimactors.membership.awareness import Awareness
from swimactors.membership.messages import Dead, Suspect
from swimactors.membership.suspicion import Suspicion, suspicion_timeout

from .util import CONFIG, acking, add_peers, deliver, make_core, member, run


@pytest.mark.parametrize(
    ("confirmations", "expected", "elapsed", "remaining"),
    [
        (0, 3, 0.0, 30.0),
        (1, 3, 2.0, 14.0),
        (2, 3, 3.0, 30.0 - 28.0 * math.log(3) / math.log(4) - 3.0),  # ~4.81
        (3, 3, 4.0, -2.0),
        (4, 3, 5.0, -3.0),  # more than expected: still the minimum, never below
        (5, 3, 10.0, -8.0),
    ],
)
def test_the_remaining_suspicion_time_goes_negative_past_the_deadline(
    confirmations: int, expected: int, elapsed: float, remaining: float
) -> None:
    timeout = suspicion_timeout(2.0, 30.0, confirmations, expected)
    assert timeout - elapsed == pytest.approx(remaining)


def test_only_new_independent_sources_up_to_the_expected_count_confirm() -> None:
    low, high, k = 0.5, 2.0, 3
    suspicion = Suspicion(1, 0.0, low, high, k, {"me"})
    assert suspicion.deadline == high
    steps = [("me", False), ("foo", True), ("foo", False), ("foo", False)]
    assert [suspicion.confirm(source) for source, _ in steps] == [new for _, new in steps]
    assert suspicion.deadline == pytest.approx(1.25)
    assert suspicion.confirm("bar") and suspicion.deadline == pytest.approx(0.8113, abs=1e-4)
    assert suspicion.confirm("baz") and suspicion.deadline == low
    assert not suspicion.confirm("zoo")  # a fourth source when three were expected
    assert suspicion.confirmations == k and suspicion.deadline == low


def test_with_no_confirmations_expected_none_is_news_and_the_minimum_applies() -> None:
    suspicion = Suspicion(1, 10.0, 0.025, 30.0, 0, {"me"})
    assert not suspicion.confirm("foo")
    assert suspicion.deadline == pytest.approx(10.025)


@pytest.mark.parametrize("late", [Suspect("p1", 1, "p4"), Dead("p1", 1, "p4")])
def test_a_confirmation_after_the_suspect_went_down_fires_nothing_again(
    late: Suspect | Dead,
) -> None:
    core = make_core()
    add_peers(core, 5)
    respond = acking(lambda name: name != "p1")
    deliver(core, 1.0, "p2", Suspect("p1", 1, "p2"))
    _, high = CONFIG.suspicion_timeouts(6)
    run(core, 1.0 + high + 1.0, respond)
    downs = [e for e in core.take_events() if isinstance(e, MemberDown)]
    assert [e.member.name for e in downs] == ["p1"]
    deliver(core, 1.0 + high + 2.0, "p4", late)
    run(core, 1.0 + 2 * high, respond)
    assert not [e for e in core.take_events() if e.member.name == "p1"]
    assert member(core, "p1").status is Status.DOWN


# (delta applied, score after, 1 s scaled) with the default cap of 8
AWARENESS_STEPS = [
    (0, 0, 1.0),
    (-1, 0, 1.0),
    (-10, 0, 1.0),
    (1, 1, 2.0),
    (-1, 0, 1.0),
    (10, 7, 8.0),
    *((-1, score, score + 1.0) for score in range(6, -1, -1)),
    (-1, 0, 1.0),
]


def test_the_awareness_score_walks_up_and_down_within_its_bounds() -> None:
    awareness = Awareness(max_multiplier=CONFIG.awareness_max_multiplier)
    assert CONFIG.awareness_max_multiplier == 8
    for delta, score, scaled in AWARENESS_STEPS:
        awareness.apply(delta)
        assert (awareness.score, awareness.scale(1.0)) == (score, scaled), (delta, score)
