"""A push/pull merge is the precedence rules applied to each entry: a differential test
against the same news sent as messages (so the merge's shortcut for entries that change
nothing can never skip a confirmation, a conflict or a refutation)."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from swimactors.membership import Status
from swimactors.membership.messages import Alive, Left, MemberState, PushPull, Suspect

from .util import CONFIG, HOME, addr, deliver, make_core

NAMES = ["p1", "p2", "p3", "n0"]
SENDERS = ["p1", "p2", "p3"]


def address_of(name: str, moved: bool) -> tuple[str, int]:
    if name == "n0":
        return ("10.0.0.9", 7000) if moved else HOME
    return addr(int(name[1:]) + (50 if moved else 0))


entries = st.tuples(
    st.sampled_from(NAMES),
    st.booleans(),
    st.integers(0, 3),
    st.sampled_from(list(Status)),
    st.sampled_from([b"", b"m"]),
)


def as_messages(sender: str, state: MemberState) -> list[Any]:
    """The news a push/pull entry stands for (see Swim._merge_state)."""
    status = state.status
    if status is Status.LEFT:
        return [Left(state.name, state.incarnation)]
    news: list[Any] = []
    if status is not Status.DOWN:
        news.append(Alive(state.name, state.address, state.incarnation, state.meta))
    if status is not Status.UP:
        source = sender if status is Status.SUSPECT else "n0"
        news.append(Suspect(state.name, state.incarnation, source))
    return news


@settings(max_examples=400, deadline=None)
@example(  # a suspicion already held, confirmed by a push/pull from another member
    history=[
        ("p1", ("p3", False, 1, Status.UP, b"")),
        ("p1", ("p2", False, 1, Status.SUSPECT, b"")),
    ],
    last=("p3", [("p2", False, 1, Status.SUSPECT, b"")]),
)
@example(  # a rejoin at a new address, then the old address: a conflict (the second
    # entry looked stale against the record before the packet)
    history=[
        ("p1", ("p1", False, 0, Status.UP, b"")),
        ("p1", ("p1", False, 0, Status.LEFT, b"")),
    ],
    last=("p1", [("p1", True, 1, Status.UP, b""), ("p1", False, 0, Status.UP, b"")]),
)
@example(  # our own record at our incarnation with other metadata: refuted
    history=[],
    last=("p1", [("n0", False, 0, Status.UP, b"m")]),
)
@given(
    history=st.lists(st.tuples(st.sampled_from(SENDERS), entries), max_size=10),
    last=st.tuples(st.sampled_from(SENDERS), st.lists(entries, max_size=5)),
)
def test_a_push_pull_does_what_its_entries_sent_as_news_do(
    history: list[tuple[str, tuple[Any, ...]]], last: tuple[str, list[tuple[Any, ...]]]
) -> None:
    config = CONFIG.replace(suspicion_mult=3)  # one confirmation counts from 3 members on
    merged, sent = make_core(config, seed=3), make_core(config, seed=3)
    now = 1.0
    for sender, (name, moved, inc, status, meta) in history:  # the same past for both
        state = MemberState.of(name, address_of(name, moved), inc, status, meta)
        for core in (merged, sent):
            deliver(core, now, sender, *as_messages(sender, state))
        now += 0.1
    for core in (merged, sent):
        core.take_events()
    sender, rows = last
    states = [
        MemberState.of(n, address_of(n, moved), inc, status, meta)
        for n, moved, inc, status, meta in rows
    ]
    deliver(merged, now, sender, PushPull(False, True, tuple(states)), reliable=True)
    for state in states:
        deliver(sent, now, sender, *as_messages(sender, state))
    assert merged.members() == sent.members()
    assert merged.take_events() == sent.take_events()
    assert merged.incarnation == sent.incarnation
    assert merged.counters["name_conflicts"] == sent.counters["name_conflicts"]
    assert merged._suspicions == sent._suspicions
