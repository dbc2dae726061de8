"""The gossip delegate against a recording fake core: splitting, deferral, bad input, events."""

from __future__ import annotations

from swimactors.membership import (
    BroadcastTooLarge,
    Delegate,
    Member,
    MemberDown,
    MemberLeft,
    MemberSuspect,
    Status,
)
from swimactors.registry import NameAdded, NameLost, Registry, decode, encode
from swimactors.registry.codec import MAX_COUNTER
from swimactors.registry.crdt import State, joined
from swimactors.registry.delegate import CHANNEL, RegistryDelegate


class FakeCore:
    """Records broadcasts; refuses payloads over ``max_broadcast_size`` like the real core.
    Membership knows every one-letter node (at incarnation 100, unless ``known`` says
    otherwise) and no other."""

    def __init__(self, incarnation: int = 1, max_broadcast_size: int = 1200) -> None:
        self.incarnation = incarnation
        self.max_broadcast_size = max_broadcast_size
        self.delegates: dict[str, Delegate] = {}
        self.sent: list[bytes] = []
        self.known: dict[str, Member] = {}
        self.syncs = 0

    def member(self, name: str) -> Member | None:
        if name in self.known or len(name) != 1:
            return self.known.get(name)
        return Member(name, ("10.0.0.1", 7946), 100, Status.UP, b"")

    def register_delegate(self, channel: str, delegate: Delegate) -> None:
        self.delegates[channel] = delegate

    def broadcast(self, channel: str, payload: bytes, key: str | None = None) -> None:
        assert channel == CHANNEL
        if len(payload) + 16 > self.max_broadcast_size:
            raise BroadcastTooLarge(f"{len(payload)} bytes")
        self.sent.append(payload)

    def sync_soon(self) -> None:
        self.syncs += 1


def _node(name: str, incarnation: int = 1, room: int = 1200) -> tuple[RegistryDelegate, FakeCore]:
    core = FakeCore(incarnation, room)
    return RegistryDelegate(Registry(name, incarnation), core), core


def test_it_registers_on_the_registry_channel() -> None:
    delegate, core = _node("a")
    assert core.delegates == {CHANNEL: delegate}


def test_a_registration_is_broadcast_as_one_small_delta() -> None:
    delegate, core = _node("a")
    registration = delegate.register("counter", "actor-1")
    assert registration is not None
    assert registration.name == "counter" and registration.node == "a"
    (payload,) = core.sent
    peer = Registry("b", 1)
    peer.merge(decode(payload))
    assert peer.lookup("counter") == registration
    delegate.unregister("counter")
    peer.merge(decode(core.sent[-1]))
    assert peer.lookup("counter") is None


def test_a_name_registered_while_declared_dead_is_held_then_published() -> None:
    """Registering while this node stands declared dead (a spawn or a singleton re-created
    at that moment) must not raise: the name waits for the refutation."""
    delegate, core = _node("a", incarnation=5)
    delegate.on_member_event(MemberDown(Member("a", ("h", 1), 5, Status.DOWN), 1.0))
    assert delegate.register("counter", "actor-1") is None
    assert delegate.registry.lookup("counter") is None
    core.incarnation = 6  # membership refuted the false DOWN
    delegate.merge_remote_state(encode(Registry("z", 1).state()), join=False, now=2.0)
    peer = Registry("b", 1)
    for payload in core.sent:
        peer.merge(decode(payload))
    held = peer.lookup("counter")
    assert held is not None and (held.node, held.actor_id) == ("a", "actor-1")


def test_a_large_delta_is_split_into_parts_that_fit() -> None:
    delegate, core = _node("a", incarnation=5, room=300)
    for i in range(40):
        delegate.register(f"service-{i:03d}", f"actor-{i}")
    core.sent.clear()
    delegate.on_member_event(MemberDown(Member("a", ("h", 1), 5, Status.DOWN), 1.0))
    core.incarnation = 6  # membership refuted the false DOWN
    delegate.notify_message(encode(Registry("z", 1).register("other", "z1")), 2.0)
    assert delegate.counters["reregistrations"] == 0  # waits for a full state
    delegate.merge_remote_state(encode(Registry("z", 1).state()), join=False, now=3.0)
    assert delegate.counters["reregistrations"] == 1
    parts = [decode(p) for p in core.sent[1:]]  # the first is the DOWN floor itself
    assert len(parts) > 1 and all(len(p) + 16 <= 300 for p in core.sent)
    assert len(joined(*parts).entries) == 40
    assert delegate.counters["deferred"] == 0


def test_after_a_false_down_a_takeover_made_meanwhile_keeps_the_name() -> None:
    delegate, core = _node("a", incarnation=5)
    delegate.register("x", "ax")
    other = Registry("b", 1)
    other.merge(delegate.registry.state())
    floor = other.node_down("a", 5)
    other.register("x", "bx")  # b takes x over while a counts as dead
    core.incarnation = 6  # a refuted
    delegate.notify_message(encode(floor), 1.0)  # the gossiped floor arrives first
    assert delegate.registry.lookup("x") is None and delegate.counters["reregistrations"] == 0
    assert core.syncs == 1  # it asks for the full state it re-registers after
    delegate.notify_message(encode(floor), 1.5)  # a duplicate asks for nothing more
    assert core.syncs == 1
    delegate.registry.take_changes()
    delegate.merge_remote_state(encode(other.state()), join=False, now=2.0)
    assert delegate.counters["reregistrations"] == 1
    winner = delegate.registry.lookup("x")
    assert winner is not None and winner.node == "b"
    other.merge(decode(core.sent[-1]))
    assert other.lookup("x") == winner
    assert [type(c) for c in delegate.registry.take_changes()] == [NameAdded, NameLost]


def test_a_floor_learnt_from_a_full_state_is_spread_by_gossip() -> None:
    """After a cut heals, floors raised on the other side arrive by push/pull; gossiped
    on, they reach the floored node itself, which may be alive and must re-register."""
    delegate, core = _node("a")
    delegate.notify_message(encode(Registry("c", 3).register("y", "cy")), 0.0)
    other = Registry("b", 1)  # floors its own incarnation 0: news of nothing held here
    other.node_down("c", 3)
    delegate.merge_remote_state(encode(other.state()), join=False, now=1.0)
    assert delegate.registry.lookup("y") is None
    (payload,) = core.sent
    assert decode(payload).floors == {"c": 3}
    delegate.merge_remote_state(encode(other.state()), join=False, now=2.0)
    assert len(core.sent) == 1  # known already: nothing more to spread


def test_a_registration_too_big_for_any_packet_is_deferred_to_push_pull() -> None:
    delegate, core = _node("a", room=200)
    delegate.register("big", "actor", b"m" * 500)
    assert core.sent == [] and delegate.counters["deferred"] == 1
    other, _ = _node("b")
    other.merge_remote_state(delegate.local_state(join=False), join=False, now=0.0)
    assert other.registry.lookup("big") is not None


def test_full_state_travels_by_push_pull() -> None:
    a, _ = _node("a")
    b, _ = _node("b")
    a.register("x", "ax")
    b.register("y", "by")
    a.merge_remote_state(b.local_state(join=True), join=True, now=0.0)
    b.merge_remote_state(a.local_state(join=True), join=True, now=0.0)
    assert a.registry.names() == b.registry.names() == ["x", "y"]
    assert a.registry.state() == joined(a.registry.state(), b.registry.state())


def test_bad_payloads_are_counted_and_dropped() -> None:
    delegate, _ = _node("a")
    delegate.register("x", "ax")
    before = delegate.registry.state()
    delegate.notify_message(b"\xff\x00garbage", 0.0)
    delegate.merge_remote_state(b"", join=False, now=0.0)
    delegate.notify_message(encode(before)[:-3], 0.0)
    assert delegate.counters["rejected_malformed"] == 3
    assert delegate.registry.state() == before


def test_member_down_and_left_prune_and_spread_a_floor() -> None:
    delegate, core = _node("a")
    peer = Registry("b", 4)
    delegate.notify_message(encode(peer.register("x", "bx")), 0.0)
    peer_c = Registry("c", 2)
    delegate.notify_message(encode(peer_c.register("y", "cy")), 0.0)
    assert delegate.registry.names() == ["x", "y"]
    delegate.on_member_event(MemberDown(Member("b", ("h", 2), 4, Status.DOWN), 1.0))
    delegate.on_member_event(MemberLeft(Member("c", ("h", 3), 3, Status.LEFT), 1.0))
    assert delegate.registry.names() == []
    assert [decode(p).floors for p in core.sent] == [{"b": 4}, {"c": 3}]


def test_suspicion_alone_prunes_nothing() -> None:
    delegate, _ = _node("a")
    delegate.notify_message(encode(Registry("b", 4).register("x", "bx")), 0.0)
    delegate.on_member_event(MemberSuspect(Member("b", ("h", 2), 4, Status.SUSPECT), 1.0))
    assert delegate.registry.names() == ["x"]


def test_a_floor_above_the_incarnation_membership_knows_is_dropped_and_counted() -> None:
    """A forged floor ({"b": huge}) would wipe every name b will ever register."""
    a, core = _node("a")
    b, _ = _node("b", incarnation=7)
    b.register("svc", "actor-1")
    a.merge_remote_state(b.local_state(join=False), join=False, now=0.0)
    core.known["b"] = Member("b", ("10.0.0.2", 7946), 7, Status.UP, b"")
    forged = State()
    forged.floors["b"] = MAX_COUNTER
    forged.floors["unknown"] = 3  # a node membership does not know: cannot be checked
    a.notify_message(encode(forged), now=1.0)
    assert a.registry.lookup("svc") is not None
    assert a.counters["rejected_floors"] == 2
    honest = State()
    honest.floors["b"] = 7  # b seen DOWN at its incarnation
    a.notify_message(encode(honest), now=2.0)
    assert a.registry.lookup("svc") is None
