"""Mechanism 9: user broadcasts through a Delegate: payloads piggybacked on the gossip and
spread epidemically (each node delivers one once), a state contributed to and merged
from every push/pull, every membership event seen, and a clear error for oversized
payloads."""

from __future__ import annotations

import pytest

from swimactors.membership import (
    BroadcastTooLarge,
    Config,
    Delegate,
    MemberDown,
    MemberEvent,
    MemberUp,
    Status,
)
from swimactors.membership import core as core_module
from swimactors.membership.messages import Alive, Dead, PushPull, UserMessage

from .loop import Loop
from .util import acking, add_peers, addr, deliver, make_core, messages, run, sent


class Recorder(Delegate):
    def __init__(self, state: bytes = b"") -> None:
        self.state = state
        self.received: list[tuple[bytes, float]] = []
        self.merged: list[tuple[bytes, bool, float]] = []
        self.asked: list[bool] = []
        self.events: list[MemberEvent] = []

    def notify_message(self, payload: bytes, now: float) -> None:
        self.received.append((payload, now))

    def local_state(self, join: bool) -> bytes:
        self.asked.append(join)
        return self.state

    def merge_remote_state(self, data: bytes, join: bool, now: float) -> None:
        self.merged.append((data, join, now))

    def on_member_event(self, event: MemberEvent) -> None:
        self.events.append(event)


def test_a_received_broadcast_is_delivered_once_and_passed_on() -> None:
    core = make_core()
    delegate = Recorder()
    core.register_delegate("chan", delegate)
    add_peers(core, 4)
    deliver(core, 1.0, "p1", UserMessage("chan", b"hello"))
    deliver(core, 1.5, "p2", UserMessage("chan", b"hello"))  # the epidemic comes back
    assert delegate.received == [(b"hello", 1.0)]
    assert core.counters["duplicate_user_messages"] == 1
    spread = messages([p for _, p in run(core, 20.0, acking())], UserMessage)
    assert spread.count(UserMessage("chan", b"hello")) == core.config.retransmit_limit(5)


def test_a_broadcast_on_an_unhandled_channel_is_counted_and_still_passed_on() -> None:
    core = make_core()
    add_peers(core, 2)
    deliver(core, 1.0, "p1", UserMessage("other", b"x"))
    assert core.counters["unhandled_user_messages"] == 1
    assert UserMessage("other", b"x") in messages([p for _, p in run(core, 5.0)], UserMessage)


def test_own_broadcasts_are_sent_not_delivered_locally_and_ignored_when_echoed() -> None:
    core = make_core()
    delegate = Recorder()
    core.register_delegate("chan", delegate)
    add_peers(core, 3)
    core.broadcast("chan", b"mine")
    assert UserMessage("chan", b"mine") in messages([p for _, p in run(core, 2.0)], UserMessage)
    deliver(core, 2.0, "p1", UserMessage("chan", b"mine"))
    assert delegate.received == []


def test_a_keyed_broadcast_replaces_a_queued_one_with_the_same_key() -> None:
    core = make_core()
    add_peers(core, 3)
    core.broadcast("chan", b"v1", key="k")
    core.broadcast("chan", b"v2", key="k")
    core.broadcast("chan", b"other", key="j")
    spread = messages([p for _, p in run(core, 5.0)], UserMessage)
    assert UserMessage("chan", b"v2") in spread and UserMessage("chan", b"other") in spread
    assert UserMessage("chan", b"v1") not in spread


def test_push_pull_carries_and_merges_delegate_state() -> None:
    core = make_core()
    delegate = Recorder(state=b"state-of-n0")
    core.register_delegate("chan", delegate)
    core.register_delegate("quiet", Recorder())  # empty state: left out of the push/pull
    core.join([addr(1)], now=0.0)
    (push,) = [m for p in sent(core) for m in p.of(PushPull)]
    assert push.join and push.user_state == {"chan": b"state-of-n0"}
    assert delegate.asked == [True]
    reply = PushPull(True, True, (), {"chan": b"state-of-p1", "unknown": b"?"})
    deliver(core, 0.1, "p1", reply, reliable=True)
    assert delegate.merged == [(b"state-of-p1", True, 0.1)]
    # a periodic (non-join) push/pull from a peer: merged, and answered with our state
    deliver(core, 5.0, "p2", PushPull(False, False, (), {"chan": b"later"}), reliable=True)
    assert delegate.merged[-1] == (b"later", False, 5.0)
    (answer,) = [m for p in sent(core) for m in p.of(PushPull)]
    assert answer.reply and not answer.join and answer.user_state == {"chan": b"state-of-n0"}


def test_a_delegate_may_ask_for_a_push_pull_now_instead_of_at_the_period() -> None:
    core = make_core()
    add_peers(core, 3)
    periodic = [t for t, p in run(core, 40.0, acking()) for _ in p.of(PushPull)]
    assert len(periodic) == 1  # one period of 30 s
    core.sync_soon()
    ((when, asked),) = [(t, p) for t, p in run(core, 40.5, acking()) if p.of(PushPull)]
    assert when <= 40.0  # at the next tick: now, not 30 s on
    assert asked.destination in {addr(i) for i in (1, 2, 3)}
    later = [t for t, p in run(core, when + 29.0, acking()) for _ in p.of(PushPull)]
    assert later == []  # and the period starts over from there


def test_the_delegate_sees_every_event_as_it_happens() -> None:
    core = make_core()
    delegate = Recorder()
    core.register_delegate("chan", delegate)
    deliver(core, 1.0, "p1", Alive("p1", addr(1), 1))
    deliver(core, 2.0, "p2", Dead("p1", 1, "p2"))
    assert [type(e) for e in delegate.events] == [MemberUp, MemberDown]
    assert delegate.events == core.take_events()


def test_broadcast_size_limit() -> None:
    core = make_core()
    add_peers(core, 3)
    limit = core.max_broadcast_size
    assert 1000 < limit < core.config.packet_budget
    core.broadcast("sixteen-byte-chn", b"x" * limit)  # exactly the limit: accepted
    with pytest.raises(BroadcastTooLarge, match="split"):
        core.broadcast("sixteen-byte-chn", b"x" * (limit + 1))
    with pytest.raises(ValueError):  # BroadcastTooLarge is a ValueError
        core.broadcast("c" * 128, b"x" * limit)  # a long channel leaves less room
    spread = [p for _, p in run(core, 5.0) if not p.reliable and p.of(UserMessage)]
    assert spread and max(p.size for p in spread) <= core.config.packet_budget
    assert UserMessage("sixteen-byte-chn", b"x" * limit) in messages(spread, UserMessage)


def test_register_delegate_refuses_a_bad_channel_name() -> None:
    with pytest.raises(ValueError):
        make_core().register_delegate("", Delegate())


def test_a_broadcast_reaches_every_node_of_a_cluster_exactly_once() -> None:
    loop = Loop(Config.lan(), seed=4)
    delegates = {}
    for i in range(10):
        core = loop.add(f"n{i}")
        delegates[core.name] = Recorder()
        core.register_delegate("chan", delegates[core.name])
    names = {f"n{i}" for i in range(10)}
    loop.run_until(30.0, until=lambda: all(v == names for v in loop.views(Status.UP).values()))
    loop.by_name("n3").broadcast("chan", b"to all")
    loop.run_until(loop.now + 10.0)
    received = {name: [p for p, _ in d.received] for name, d in delegates.items()}
    assert received == {n: ([] if n == "n3" else [b"to all"]) for n in names}


def test_remembered_broadcasts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the latest digests are kept: memory stays bounded, and a message seen long ago
    may be delivered again (delegates must be idempotent)."""
    monkeypatch.setattr(core_module, "SEEN_USER_MESSAGES", 8)
    core = make_core()
    delegate = Recorder()
    core.register_delegate("chan", delegate)
    for i in range(12):
        deliver(core, float(i), "p1", UserMessage("chan", bytes([i])))
    deliver(core, 20.0, "p1", UserMessage("chan", bytes([11])))  # recent: a duplicate
    deliver(core, 21.0, "p1", UserMessage("chan", bytes([0])))  # forgotten: delivered again
    assert [p for p, _ in delegate.received] == [bytes([i]) for i in range(12)] + [b"\x00"]
    assert len(core._seen_user) == 8
