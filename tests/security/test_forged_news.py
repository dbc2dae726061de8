"""Forged protocol values an outsider can send to a plaintext cluster: no value it picks
keeps a member's real news out for good (issue 12, "protocol values that cannot be
weaponised").  Sans-IO: the protocol cores with explicit time."""

from __future__ import annotations

import attrs
import pytest

from swimactors import wire
from swimactors.ddata import DataError, DataStore, Flag, GCounter, LWWRegister, Writer
from swimactors.ddata import store as store_module
from swimactors.ddata.codec import decode_entries, encode_entries
from swimactors.ddata.lww import MAX_AHEAD, Stamped
from swimactors.membership import Member, MemberUp, MemberUpdated, Status
from swimactors.quorum import QuorumTracker, Verdict
from swimactors.quorum.tracker import MAX_STAMP
from swimactors.registry import Registry, encode
from swimactors.registry import registry as registry_module
from swimactors.registry.crdt import Registration, State
from swimactors.registry.delegate import WAITING_DELTAS
from swimactors.registry.registry import (
    MAX_NAMES_PER_PROCESS,
    MAX_REPLICAS_PER_NODE,
    RegistryError,
)
from tests.quorum.test_tracker import advance, cluster, snapshot
from tests.registry.test_delegate import _node as registry_node


def forged_announcement(name: str, digest: bytes, epoch: int, serial: int) -> bytes:
    return wire.dumps([name, digest, epoch, serial, 0, []])


def stops(tracker: QuorumTracker) -> list[str]:
    return [d.reason for d in tracker.take_decisions() if d.verdict is not Verdict.CONFIRMED]


def test_a_forged_serial_does_not_hide_a_member_s_real_announcements() -> None:
    """One forged announcement for b at the largest serial (or a later epoch) made every
    node ignore b's real heartbeats until b restarted: their leases on b ran out and the
    whole cluster stopped serving for good.  Now an epoch or serial past the maximum is
    dropped and counted, and one within it holds b's news back for half a lease at most:
    nobody stops, and b's later view counts."""
    trackers = cluster("abc")
    a, b, c = trackers.values()
    for tracker in (a, c):
        digest = tracker.digest()
        tracker.receive(7.2, forged_announcement("b", digest, 1, 2**63 - 1))
        tracker.receive(7.2, forged_announcement("b", digest, 2**62, 1))
        assert tracker.counters["rejected_announcements"] == 2
        tracker.receive(7.2, forged_announcement("b", digest, MAX_STAMP, MAX_STAMP))
    advance(trackers, 7.5, 30.0)
    assert [t.state for t in trackers.values()] == ["ok", "ok", "ok"]
    assert stops(a) == stops(c) == []
    assert a.counters["announcement_order_reset"] == 1
    # b's own news counts again: a change it announces is heard
    b.observe(30.5, snapshot("ab", suspect="c"))
    advance(trackers, 30.5, 31.0)
    assert a._seen["b"][0] == b.digest() != c.digest()


def test_registry_deltas_from_made_up_nodes_are_held_back_not_kept() -> None:
    """A stream of forged deltas, each under a node membership does not know, grew every
    node's registry without bound, never pruned.  Now a writer membership does not know
    is held back (a bounded queue of gossiped deltas): a made-up one never enters the
    registry, and a real newcomer's delta counts once its membership news arrives."""
    delegate, core = registry_node("a")
    for i in range(2 * WAITING_DELTAS):
        delegate.notify_message(encode(Registry(f"ghost-{i}", 1).register("svc", "x")), 1.0)
    assert delegate.registry.names() == [] and delegate.registry.size() <= 1
    assert len(delegate._waiting) == WAITING_DELTAS
    assert delegate.counters["held_back_dropped"] == WAITING_DELTAS
    # the legitimate race: a new member's delta before the news of the member
    delegate.notify_message(encode(Registry("newcomer", 9).register("web", "n1")), 2.0)
    assert delegate.registry.lookup("web") is None
    member = Member("newcomer", ("10.0.0.9", 7946), 9, Status.UP, b"")
    core.known["newcomer"] = member
    delegate.on_member_event(MemberUp(member, 3.0))
    winner = delegate.registry.lookup("web")
    assert winner is not None and winner.node == "newcomer"
    # a restart's delta (a higher incarnation) likewise waits for its news
    delegate.notify_message(encode(Registry("newcomer", 12).register("api", "n2")), 4.0)
    assert delegate.registry.lookup("api") is None
    core.known["newcomer"] = attrs.evolve(member, incarnation=12)
    delegate.on_member_event(MemberUpdated(core.known["newcomer"], 5.0))
    assert delegate.registry.lookup("api") is not None
    # a mirrored node's member table catches up after the event: the event counts
    delegate.on_member_event(MemberUp(attrs.evolve(member, name="mirrored"), 6.0))
    delegate.notify_message(encode(Registry("mirrored", 9).register("db", "m1")), 6.0)
    assert delegate.registry.lookup("db") is not None


def test_one_peer_cannot_grow_the_registry_past_its_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A known member (or someone speaking as one) may hold at most MAX_NAMES_PER_PROCESS
    names in a process and MAX_REPLICAS_PER_NODE processes; its deltas past them are
    dropped and counted, and this node's own registrations past them are refused."""
    assert MAX_NAMES_PER_PROCESS == 65536
    monkeypatch.setattr(registry_module, "MAX_NAMES_PER_PROCESS", limit := 300)
    delegate, _ = registry_node("a")
    flood = Registry("b", 1)
    batch = [(f"n{i}", "x", b"") for i in range(limit)]
    delegate.merge_remote_state(encode(flood.register_all(batch)), join=False, now=1.0)
    assert len(delegate.registry) == limit
    forged = State()  # what a peer past the limit would send
    forged.add(Registration("one-more", "b", 1, "x", b"", limit + 1, limit + 1))
    delegate.notify_message(encode(forged), 2.0)
    assert delegate.registry.lookup("one-more") is None
    for incarnation in range(2, MAX_REPLICAS_PER_NODE + 5):  # processes nobody floors
        forged = State()
        forged.add(Registration("s", "c", incarnation, "x", b"", 1, 1))
        delegate.notify_message(encode(forged), 3.0)
    held = {i for node, i in delegate.registry.state().context.replicas() if node == "c"}
    assert len(held) == MAX_REPLICAS_PER_NODE
    assert delegate.counters["rejected_over_limit"] == 1 + 3
    own = Registry("a", 1)
    with pytest.raises(RegistryError):
        own.register_all([(f"m{i}", "x", b"") for i in range(limit + 1)])


def test_forged_data_deltas_cannot_grow_a_store_past_its_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Distributed-data deltas from made-up writers were merged without bound: a new
    counter slot per made-up writer, a new key per delta.  Now a store holds at most
    MAX_KEYS keys and MAX_STORE_ENTRIES entries in all; past them a merge is dropped and
    counted, and a local update past them is refused."""
    assert (store_module.MAX_KEYS, store_module.MAX_STORE_ENTRIES) == (65536, 1 << 20)
    monkeypatch.setattr(store_module, "MAX_KEYS", 40)
    monkeypatch.setattr(store_module, "MAX_STORE_ENTRIES", 300)
    store = DataStore("a", 1)
    for i in range(1000):  # one slot of the same counter per made-up writer
        writer = Writer(f"ghost-{i}", 1, 0.0)
        store.merge(decode_entries(encode_entries({"hits": GCounter().increment(writer)})))
    for i in range(1000):  # one key per delta
        writer = Writer(f"ghost-{i}", 1, 0.0)
        store.merge(decode_entries(encode_entries({f"k{i}": Flag().switch_on(writer)})))
    assert len(store) <= 40 and store._entries <= 300
    assert store.counters["rejected_over_limit"] >= 1000
    with pytest.raises(DataError):
        store.update("hits", GCounter, lambda c, w: c.increment(w), 1.0)


def test_a_forged_last_writer_wins_stamp_cannot_freeze_a_key() -> None:
    """A write is stamped one past the stamp it replaces: after a forged stamp at
    2**63-1 no write of that key could ever be stamped again (DataError, for good).
    Now a stamp more than MAX_AHEAD ahead of the local clock is dropped and counted,
    and below it the next write simply goes one past it."""
    now = 1_700_000_000.0
    store = DataStore("a", 1, clock=lambda: now)
    for ahead in (2**63 - 1 - int(now * 1e6), MAX_AHEAD * 1_000_000 + 1):
        forged = LWWRegister(Stamped(int(now * 1e6) + ahead, "ghost", True, "forged"))
        store.merge(decode_entries(encode_entries({"config": forged})))
    assert store.value("config") is None and store.counters["rejected_future"] == 2
    edge = LWWRegister(Stamped(int((now + MAX_AHEAD) * 1e6), "ghost", True, "forged"))
    store.merge(decode_entries(encode_entries({"config": edge})))
    store.update("config", LWWRegister, lambda r, w: r.set(w, "mine"), now)
    assert store.value("config") == "mine"


def test_a_count_or_dot_forged_at_the_maximum_cannot_make_a_node_s_data_undecodable() -> None:
    """A forged delta giving this node's own counter slot the count 2**63-1 (or one of its
    set dots that counter) made its next increment or add go one past it: a delta, and a
    full state, that every peer refuses (`count ... out of range`), so none of its data
    spread again, on any key.  Now a slot stops at the maximum and an add with no dot left
    is refused (DataError); what the node sends still decodes."""
    from swimactors.ddata import ORSet
    from swimactors.ddata.base import MAX_INT

    store = DataStore("a", 5)
    slot = GCounter().increment(Writer("a", 5, 0.0), MAX_INT)
    dot = ORSet()
    dot.insert(("a", 5, MAX_INT), "forged")
    dot.context.add(("a", 5, MAX_INT))
    store.merge(decode_entries(encode_entries({"hits": slot, "tags": dot})))
    store.update("other", GCounter, lambda c, w: c.increment(w), 1.0)
    delta = store.update("hits", GCounter, lambda c, w: c.increment(w, 7), 1.0)
    assert decode_entries(encode_entries(delta))["hits"].value == MAX_INT
    with pytest.raises(DataError, match="no dots left"):
        store.update("tags", ORSet, lambda s, w: s.add(w, "mine"), 1.0)
    state = decode_entries(encode_entries(store.state()))
    assert state["other"].value == 1 and state["tags"].value == {"forged"}
    assert DataStore("a", 6).writer(2.0).replica == ("a", 6)  # a new process: fresh dots
    later = DataStore("a", 6)
    later.merge(state)
    later.update("tags", ORSet, lambda s, w: s.add(w, "mine"), 2.0)
    assert decode_entries(encode_entries(later.state()))["tags"].value == {"forged", "mine"}


def test_a_store_larger_than_one_message_reaches_its_peers_in_parts() -> None:
    """A store's state went whole into every push/pull: past about 26,000 counters it held
    more CBOR items than a decoder accepts (262,144), so every peer refused it, all keys
    with it, and a joiner never got the data (forged deltas within the store's limits
    could bring any node there).  Now each push/pull carries the next part, keys in
    turn, each part under the item limit."""
    from swimactors.ddata.delegate import STATE_PART_BYTES, DataDelegate
    from tests.registry.test_delegate import FakeCore

    store = DataStore("a", 1)
    for i in range(30_000):
        store.update(f"counter:{i:05d}", GCounter, lambda c, w: c.increment(w), 1.0)
    sender = DataDelegate(store, FakeCore())
    receiver = DataDelegate(DataStore("b", 1), FakeCore())
    for exchange in range(6):
        part = sender.local_state(join=exchange == 0)
        assert len(part) <= STATE_PART_BYTES
        receiver.merge_remote_state(part, join=False, now=1.0)
    assert receiver.counters["rejected_malformed"] == 0
    assert len(receiver.store) == 30_000
    assert receiver.store.value("counter:29999") == 1


def test_a_member_forged_left_is_told_when_it_speaks_and_comes_back() -> None:
    """A forged Left for a live member made every node that heard it hold the member LEFT
    (its names and grains dropped) until a push/pull reached it, up to 30 s on `lan`: a
    LEFT member that spoke was not told, as a DOWN one is.  Now it is, and it outbids
    the news at once."""
    from swimactors.membership.config import Config
    from swimactors.membership.core import INCARNATION_HORIZON, Swim
    from swimactors.membership.messages import Alive, Left, Ping, encode_message, encode_packet

    wall = 1_700_000_000_000
    a = Swim("a", ("10.0.0.1", 7946), Config.lan(), incarnation=wall, wall_ms=wall)
    v = Swim("v", ("10.0.0.2", 7946), Config.lan(), incarnation=wall, wall_ms=wall)

    def deliver(sender: Swim, receiver: Swim, now: float) -> None:
        for packet in sender.outgoing:
            if packet.destination == receiver.address:
                receiver.receive(now, sender.address, packet.data)
        sender.outgoing.clear()

    for name, address in (("v", v.address), ("p1", ("10.0.0.3", 7946))):
        alive = encode_message(Alive(name, address, wall, b""))
        a.receive(1.0, address, encode_packet("", name, [alive]))
    v.receive(1.0, a.address, encode_packet("", "a", [encode_message(Alive("a", a.address, wall))]))
    forged = Left("v", wall + INCARNATION_HORIZON - 1)
    a.receive(1.1, ("10.0.0.9", 1), encode_packet("", "p1", [encode_message(forged)]))
    member = a.member("v")
    assert member is not None and member.status is Status.LEFT
    for step in range(100):  # a gossips the news to p1 until it is spent
        a.tick(1.2 + step * 0.2)
        a.outgoing.clear()
    a.receive(22.0, v.address, encode_packet("", "v", [encode_message(Ping(7, "a"))]))
    deliver(a, v, 22.1)  # the ack, and a's word that it holds v LEFT
    assert v.incarnation == forged.incarnation + 1
    v.tick(22.2)
    deliver(v, a, 22.3)
    member = a.member("v")
    assert member is not None and member.status is Status.UP


def test_deltas_that_fit_cannot_merge_into_a_value_no_peer_would_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two set deltas of 40,000 elements each (each within the 65,536 a value may hold on
    the wire) merged into one value of 80,000: kept here, and refused by every peer in
    each push/pull from this node.  Now such a merge is dropped and counted (here with the
    limit scaled down to 300 and deltas of 200)."""
    from swimactors.ddata import ORSet
    from swimactors.ddata import codec as codec_module

    limit = 300
    monkeypatch.setattr(store_module, "MAX_ENTRIES", limit, raising=False)
    monkeypatch.setattr(codec_module, "MAX_ENTRIES", limit)
    store = DataStore("a", 1)
    for writer in ("ghost-1", "ghost-2"):
        delta = ORSet()
        for counter in range(1, 201):
            delta.insert((writer, 1, counter), f"{writer}-{counter}")
            delta.context.add((writer, 1, counter))
        store.merge(decode_entries(encode_entries({"set": delta})))
    assert len(store.value("set")) == 200
    assert store.counters["rejected_over_limit"] == 1
    assert len(decode_entries(encode_entries(store.state()))["set"].value) == 200
