"""Mechanism 6: joining through seeds with a full-state push/pull over the reliable
channel (retried until someone answers), periodic push/pull (stretched for large
clusters, capped), and merging a peer's state by the precedence rules."""

from __future__ import annotations

import itertools

import pytest

from swimactors.membership import Config, Member, MemberUp, Status
from swimactors.membership.messages import Alive, Dead, MemberState, PushPull, Suspect

from .util import HOME, Sent, acking, add_peers, addr, deliver, make_core, member, packet, run, sent

UP, SUSPECT, DOWN, LEFT = Status.UP, Status.SUSPECT, Status.DOWN, Status.LEFT


def push_pulls(log: list[tuple[float, Sent]]) -> list[tuple[float, Sent, PushPull]]:
    return [(t, p, m) for t, p in log for m in p.of(PushPull)]


def state(name: str, index: int, incarnation: int = 1, status: Status = UP) -> MemberState:
    return MemberState.of(name, addr(index), incarnation, status, b"")


def test_join_pushes_our_state_to_every_seed_over_the_reliable_channel() -> None:
    core = make_core(meta=b"m")
    core.join([addr(1), addr(2), HOME, addr(1)], now=0.0)  # ourselves and repeats ignored
    out = sent(core)
    assert [p.destination for p in out] == [addr(1), addr(2)]
    for p in out:
        assert p.reliable
        assert p.messages == (PushPull(True, False, (MemberState.of("n0", HOME, 0, UP, b"m"),)),)


def test_join_retries_with_backoff_until_a_seed_answers() -> None:
    core = make_core()
    core.join([addr(1)], now=0.0)
    sent(core)
    log = push_pulls(run(core, 16.0))
    assert [t for t, _, m in log if m.join] == [1.0, 3.0, 7.0, 15.0]
    reply = PushPull(True, True, (state("p1", 1), state("p2", 2)))
    deliver(core, 16.0, "p1", reply, reliable=True)
    assert sent(core) == []  # a reply is not answered
    assert {m.name for m in core.members() if m.status is UP} == {"n0", "p1", "p2"}
    assert [type(e) for e in core.take_events()] == [MemberUp, MemberUp]
    later = push_pulls(run(core, 200.0, acking()))
    assert not [m for _, _, m in later if m.join]  # no more join attempts
    assert later  # but periodic push/pulls go on


def test_join_backoff_is_capped_at_the_reconnect_interval() -> None:
    core = make_core(config=Config.lan().replace(reconnect_interval=5.0))
    core.join([addr(1)], now=0.0)
    sent(core)
    joins = sorted({t for t, _, m in push_pulls(run(core, 40.0)) if m.join})
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(joins)]
    assert max(gaps) <= 5.0  # the backoff (1, 2, 4, 5, 5 ...) or a reconnect
    assert len(joins) >= 8


def test_join_contacts_the_seeds_even_when_members_are_already_known() -> None:
    """An explicit join (say, merging with another cluster) is never silently skipped."""
    core = make_core()
    add_peers(core, 1)
    sent(core)
    core.join([addr(5)], now=1.0)
    assert [(p.destination, p.reliable) for p in sent(core) if p.of(PushPull)] == [(addr(5), True)]


def test_a_push_pull_is_merged_and_answered_with_our_full_state() -> None:
    core = make_core()
    add_peers(core, 1)
    core.take_events()
    sent(core)
    ephemeral = ("10.0.0.2", 40000)
    deliver(core, 1.0, "p2", PushPull(False, False, (state("p2", 2), state("p3", 3, 4))),
            source=ephemeral, reliable=False)  # fmt: skip
    assert member(core, "p3") == Member("p3", addr(3), 4, UP)
    (answer,) = sent(core)
    assert answer.reliable and answer.destination == ephemeral
    (reply,) = answer.of(PushPull)
    assert reply.reply and not reply.join
    assert {s.name for s in reply.members} == {"n0", "p1", "p2", "p3"}


def test_a_reliable_push_pull_is_answered_at_the_advertised_address() -> None:
    core = make_core()
    data_source = ("10.0.0.2", 40000)

    core.receive(0.0, data_source, packet("p2", PushPull(True, False, ()), reply_to=addr(2)))
    (answer,) = sent(core)
    assert answer.destination == addr(2) and answer.of(PushPull)[0].join


@pytest.mark.parametrize(
    ("remote", "local_before", "local_after"),
    [
        (state("m", 1, 3, UP), None, (UP, 3)),
        (state("m", 1, 3, SUSPECT), None, (SUSPECT, 3)),
        (state("m", 1, 3, SUSPECT), (UP, 3), (SUSPECT, 3)),
        (state("m", 1, 3, DOWN), (UP, 3), (SUSPECT, 3)),  # verify before declaring death
        (state("m", 1, 3, DOWN), None, None),  # a stranger's death is no news to us
        (state("m", 1, 3, LEFT), (UP, 3), (LEFT, 3)),
        (state("m", 1, 2, UP), (SUSPECT, 3), (SUSPECT, 3)),
        (state("m", 1, 4, UP), (SUSPECT, 3), (UP, 4)),
        (state("m", 1, 4, UP), (DOWN, 3), (UP, 4)),
    ],
)
def test_push_pull_merges_by_the_precedence_rules(
    remote: MemberState,
    local_before: tuple[Status, int] | None,
    local_after: tuple[Status, int] | None,
) -> None:

    core = make_core()
    add_peers(core, 3, first=2)
    if local_before is not None:
        status, incarnation = local_before
        deliver(core, 0.0, "p2", Alive("m", addr(1), incarnation))
        if status is SUSPECT:
            deliver(core, 0.0, "p2", Suspect("m", incarnation, "p2"))
        if status is DOWN:
            deliver(core, 0.0, "p2", Dead("m", incarnation, "p2"))
    deliver(core, 1.0, "p3", PushPull(False, True, (remote,)), reliable=True)
    seen = core.member("m")
    assert (None if seen is None else (seen.status, seen.incarnation)) == local_after


def test_periodic_push_pull_goes_to_one_random_member_every_interval() -> None:
    core = make_core()
    add_peers(core, 5)
    log = push_pulls(run(core, 200.0, acking()))
    periodic = [(t, p.destination) for t, p, m in log if not m.join and not m.reply]
    times = [t for t, _ in periodic]
    assert len(times) >= 5
    assert {round(b - a, 6) for a, b in itertools.pairwise(times)} == {30.0}
    assert len({d for _, d in periodic}) > 1
    assert all(p.reliable for _, p, _ in log)


@pytest.mark.parametrize(
    ("n", "period"),
    [(1, 30.0), (32, 30.0), (33, 60.0), (64, 60.0), (65, 90.0), (128, 90.0), (129, 120.0),
     (100_000, 120.0)],
)  # fmt: skip
def test_push_pull_period_scales_with_the_cluster_but_is_capped(n: int, period: float) -> None:
    assert Config.lan().push_pull_period(n) == period


def test_a_large_cluster_pushes_and_pulls_less_often() -> None:
    core = make_core()
    add_peers(core, 40)  # 41 members: past the scale threshold of 32
    log = push_pulls(run(core, 400.0, acking()))
    times = [t for t, _, m in log if not m.join and not m.reply]
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
    assert gaps == {Config.lan().push_pull_period(41)} == {60.0}
