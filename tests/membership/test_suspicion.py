"""Mechanism 3, part two: Lifeguard's dynamic suspicion timeout, then DOWN.

min = suspicion_mult * max(1, log10 n) * probe_interval, max = suspicion_max_timeout_mult
* min; a suspicion starts at max and shrinks towards min with each independent
confirmation, ``timeout(c) = max(min, max - (max - min) * log(c + 1) / log(k + 1))`` with
``k = suspicion_mult - 2`` expected confirmations (0 when n - 2 < k).
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors.membership import Config, MemberDown, Status
from swimactors.membership.messages import Alive, Dead, Suspect
from swimactors.membership.suspicion import suspicion_timeout

from .util import (
    CONFIG,
    acking,
    add_peers,
    addr,
    deliver,
    make_core,
    member,
    messages,
    next_deadline,
    run,
    sent,
)

LAN, WAN, LOCAL = Config.lan(), Config.wan(), Config.local()


@pytest.mark.parametrize(
    ("config", "n", "low", "high"),
    [
        (LAN, 1, 4.0, 24.0),
        (LAN, 3, 4.0, 24.0),
        (LAN, 10, 4.0, 24.0),
        (LAN, 100, 8.0, 48.0),
        (LAN, 1000, 12.0, 72.0),
        (LAN, 31, 4 * math.log10(31), 24 * math.log10(31)),
        (WAN, 10, 30.0, 180.0),
        (WAN, 100, 60.0, 360.0),
        (LOCAL, 10, 3.0, 18.0),
        (LOCAL, 1000, 9.0, 54.0),
    ],
)
def test_suspicion_timeouts_formula(config: Config, n: int, low: float, high: float) -> None:
    assert config.suspicion_timeouts(n) == pytest.approx((low, high))


@pytest.mark.parametrize(
    ("confirmations", "expected", "timeout"),
    [
        (0, 2, 24.0),
        (1, 2, 24.0 - 20.0 * math.log(2) / math.log(3)),
        (2, 2, 4.0),
        (3, 2, 4.0),  # never below the minimum
        (0, 0, 4.0),  # nobody to confirm: the minimum at once
        (0, 4, 24.0),
        (1, 4, 24.0 - 20.0 * math.log(2) / math.log(5)),
        (3, 4, 24.0 - 20.0 * math.log(4) / math.log(5)),
        (4, 4, 4.0),
    ],
)
def test_suspicion_timeout_after_confirmations(
    confirmations: int, expected: int, timeout: float
) -> None:
    assert suspicion_timeout(4.0, 24.0, confirmations, expected) == pytest.approx(timeout)


@given(
    low=st.floats(0.01, 100.0),
    mult=st.integers(1, 10),
    expected=st.integers(0, 10),
)
def test_suspicion_timeout_shrinks_monotonically_from_max_to_min(
    low: float, mult: int, expected: int
) -> None:
    high = low * mult
    timeouts = [suspicion_timeout(low, high, c, expected) for c in range(expected + 2)]
    assert all(b <= a for a, b in itertools.pairwise(timeouts))
    assert timeouts[-1] == pytest.approx(low)
    if expected:
        assert timeouts[0] == pytest.approx(high)


def time_to_down(peers: int, confirm_at: list[tuple[float, str]], start: float = 10.0) -> float:
    """A core with ``peers`` peers (all answering probes) hears p2 suspect p1 at ``start``,
    then the confirmations ``(time, source)``; returns when it declares p1 DOWN."""
    core = make_core()
    add_peers(core, peers)
    respond = acking()
    run(core, start, respond)
    deliver(core, start, "p2", Suspect("p1", 1, "p2"))
    for when, source in confirm_at:
        run(core, when, respond)
        deliver(core, when, source, Suspect("p1", 1, source))
    run(core, start + 200.0, respond)
    downs = [e for e in core.take_events() if isinstance(e, MemberDown)]
    assert [e.member.name for e in downs] == ["p1"]
    assert member(core, "p1").status is Status.DOWN
    return downs[0].time - start


@pytest.mark.parametrize("peers", [5, 20, 99])
def test_an_unconfirmed_suspicion_runs_the_maximum_timeout(peers: int) -> None:
    _, high = CONFIG.suspicion_timeouts(peers + 1)
    assert time_to_down(peers, []) == pytest.approx(high, abs=1e-6)


def test_independent_confirmations_shorten_the_time_to_down() -> None:
    low, high = CONFIG.suspicion_timeouts(6)
    one = high - (high - low) * math.log(2) / math.log(3)
    assert time_to_down(5, []) == pytest.approx(high)
    assert time_to_down(5, [(11.0, "p3")]) == pytest.approx(one)
    assert time_to_down(5, [(11.0, "p3"), (12.0, "p4")]) == pytest.approx(low)
    # a confirmation that arrives after the shortened deadline has passed fires at once
    assert time_to_down(5, [(11.0, "p3"), (17.0, "p4")]) == pytest.approx(7.0)


def test_repeated_suspicion_from_the_same_source_is_not_a_confirmation() -> None:
    _, high = CONFIG.suspicion_timeouts(6)
    assert time_to_down(5, [(11.0, "p2"), (12.0, "p2")]) == pytest.approx(high)


def test_in_a_small_cluster_no_confirmations_are_expected_and_min_applies() -> None:
    low, _ = CONFIG.suspicion_timeouts(3)
    assert time_to_down(2, []) == pytest.approx(low)


def test_confirmations_are_regossiped_once_and_expiry_spreads_dead() -> None:
    core = make_core()
    add_peers(core, 5)
    respond = acking()
    deliver(core, 0.0, "p2", Suspect("p1", 1, "p2"))
    deliver(core, 0.5, "p3", Suspect("p1", 1, "p3"))
    deliver(core, 0.6, "p3", Suspect("p1", 1, "p3"))  # a duplicate: not news
    log = [p for _, p in run(core, 3.0, respond)]
    spread = {m.source for m in messages(log, Suspect) if m.name == "p1"}
    assert spread <= {"p2", "p3", "n0"} and "p3" in spread  # n0: the buddy system's
    log = [p for _, p in run(core, 30.0, respond)]
    assert Dead("p1", 1, "n0") in messages(log, Dead)


def test_a_refutation_cancels_the_suspicion() -> None:

    core = make_core()
    add_peers(core, 5)
    respond = acking()
    deliver(core, 0.0, "p2", Suspect("p1", 1, "p2"))
    run(core, 5.0, respond)
    deliver(core, 5.0, "p1", Alive("p1", addr(1), 2))
    run(core, 100.0, respond)
    assert member(core, "p1").status is Status.UP
    assert not [e for e in core.take_events() if isinstance(e, MemberDown)]


def test_our_own_failed_probe_confirming_a_late_suspicion_fires_in_the_same_tick() -> None:
    """p2 suspects p1; our own probe of p1 fails after the shortened deadline has already
    passed, so p1 must go DOWN in that very tick, leaving no deadline in the past."""
    config = CONFIG.replace(indirect_checks=0, suspicion_mult=3)  # one confirmation expected
    core = make_core(config=config)
    add_peers(core, 5)
    deliver(core, 0.0, "p2", Suspect("p1", 1, "p2"))
    low, high = config.suspicion_timeouts(6)
    downs: list[float] = []
    now = 0.0
    while not downs:
        now = max(now, next_deadline(core))
        core.tick(now)
        assert next_deadline(core) > now
        responder = acking() if now < low + 1.0 else acking(lambda name: name != "p1")
        responder(core, now, sent(core))
        downs = [e.time for e in core.take_events() if isinstance(e, MemberDown)]
    assert low + 1.0 <= downs[0] < high  # at our own failed probe, well before the maximum
