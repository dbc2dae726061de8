"""The registry layer: lookups, conflicts, losers, node failures, restarts, the change stream."""

from __future__ import annotations

import pytest

from swimactors.registry import (
    NameAdded,
    NameChanged,
    NameLost,
    NameRemoved,
    Registry,
    RegistryError,
    encode,
)


def _sync(*registries: Registry) -> None:
    """Full-state exchange between every pair."""
    states = [r.state() for r in registries]
    for registry in registries:
        for state in states:
            registry.merge(state)


def test_register_lookup_unregister() -> None:
    a, b = Registry("a", 10), Registry("b", 20)
    delta = a.register("counter", "actor-1", b"meta")
    assert len(encode(delta)) < 64
    b.merge(delta)
    found = b.lookup("counter")
    assert found is not None
    assert (found.name, found.node, found.incarnation, found.actor_id, found.meta) == (
        "counter",
        "a",
        10,
        "actor-1",
        b"meta",
    )
    assert b.names() == ["counter"] and b.lookup_all("counter") == [found]
    b.merge(a.unregister("counter"))
    assert b.lookup("counter") is None and b.names() == [] and b.lookup_all("counter") == []


def test_unregister_touches_only_this_nodes_claim() -> None:
    a, b = Registry("a", 1), Registry("b", 1)
    b.merge(a.register("x", "a1"))
    b.merge(b.unregister("x"))
    assert b.lookup("x") is not None and b.lookup("x").node == "a"  # type: ignore[union-attr]


def test_concurrent_registrations_resolve_to_one_winner_and_the_loser_is_told() -> None:
    a, b, c = Registry("a", 1), Registry("b", 1), Registry("c", 1)
    da, db = a.register("x", "on-a"), b.register("x", "on-b")
    for registry in (a, b, c):
        registry.take_changes()
    c.merge(db)
    c.merge(da)
    a.merge(db)
    b.merge(da)
    winners = {r.lookup("x") for r in (a, b, c)}
    assert len(winners) == 1
    (winner,) = winners
    assert winner is not None and winner.node == "a"  # equal clocks: the smaller node name
    assert [type(ch) for ch in a.take_changes()] == []
    lost = [ch for ch in b.take_changes() if isinstance(ch, NameLost)]
    assert lost == [NameLost("x", b.lookup_all("x")[1], winner)]
    assert not any(isinstance(ch, NameLost) for ch in c.take_changes())
    _sync(a, b, c)
    assert b.take_changes() == []  # told once, not on every merge


def test_an_existing_holder_beats_a_later_registration() -> None:
    a, b = Registry("z-late-in-alphabet", 1), Registry("b", 1)
    b.merge(a.register("x", "first"))
    a.merge(b.register("x", "second"))
    assert a.lookup("x") == b.lookup("x")
    assert b.lookup("x").actor_id == "first"  # type: ignore[union-attr]
    assert any(isinstance(ch, NameLost) for ch in b.take_changes())


def test_updating_an_own_registration_keeps_its_place() -> None:
    a, b = Registry("a", 1), Registry("b", 1)
    b.merge(a.register("x", "v1"))
    a.merge(b.register("x", "b1"))
    b.merge(a.register("x", "v2"))  # a re-registers: must not fall behind b's claim
    assert b.lookup("x").actor_id == "v2"  # type: ignore[union-attr]
    assert [r.node for r in b.lookup_all("x")] == ["a", "b"]


def test_node_down_drops_its_names_whatever_the_order() -> None:
    a, b = Registry("a", 1), Registry("b", 5)
    late = b.register("x", "bx")
    a.node_down("b", 5)
    a.merge(late)  # a delta overtaken by the DOWN never brings the name back
    assert a.lookup("x") is None
    c = Registry("c", 1)
    c.merge(late)
    c.node_down("b", 5)
    c.node_down("b", 5)  # idempotent
    assert c.lookup("x") is None and a.state() != c.state()
    _sync(a, c)
    assert a.names() == c.names() == []


def test_node_down_spares_a_newer_incarnation() -> None:
    a, b = Registry("a", 1), Registry("b", 9)
    a.merge(b.register("x", "bx"))
    a.node_down("b", 8)  # the DOWN of an older process of b
    assert a.lookup("x") is not None


def test_a_restarted_node_never_sees_its_previous_names_return() -> None:
    observer = Registry("o", 1)
    old = Registry("b", 100)
    observer.merge(old.register("x", "old-x"))
    stale = old.register("y", "old-y")
    new = Registry("b", 200)  # the same node, restarted later: a higher incarnation
    observer.merge(new.register("y", "new-y"))
    observer.merge(stale)  # a stale delta of the dead process, arriving late
    observer.merge(old.state())
    assert observer.names() == ["y"]
    assert observer.lookup("y").actor_id == "new-y"  # type: ignore[union-attr]


def test_refutation_bumps_keep_a_live_nodes_names() -> None:
    a, b = Registry("a", 1), Registry("b", 5)
    a.merge(b.register("x", "bx"))
    assert b.set_incarnation(6) is None and b.set_incarnation(7) is None
    assert b.incarnation == 5
    b.merge(a.state())
    assert a.lookup("x") == b.lookup("x") is not None


def test_a_node_declared_dead_by_mistake_re_registers_after_refuting() -> None:
    a, b = Registry("a", 1), Registry("b", 5)
    a.merge(b.register("x", "bx"))
    a.merge(b.register("y", "by"))
    a.node_down("b", 6)  # declared DOWN at the incarnation b had refuted to
    a.merge(a.register("x", "ax"))  # a takes x over meanwhile
    b.merge(a.state())
    assert b.lookup("y") is None  # b knows its names were dropped
    assert b.set_incarnation(6) is None  # not above the floor yet
    b.take_changes()
    delta = b.set_incarnation(7)
    assert delta is not None and b.incarnation == 7
    a.merge(delta)
    assert a.lookup("y").incarnation == 7  # type: ignore[union-attr]
    assert a.lookup("x").node == "a"  # type: ignore[union-attr]  # the takeover keeps x
    assert [type(ch) for ch in b.take_changes()] == [NameLost, NameAdded]
    assert b.set_incarnation(8) is None  # only once


def test_registering_while_declared_dead_is_held_until_refuted() -> None:
    b = Registry("b", 5)
    b.node_down("b", 5)
    b.register("z", "bz")
    assert b.lookup("z") is None
    delta = b.set_incarnation(6)
    assert delta is not None and b.lookup("z") is not None


def test_the_change_stream() -> None:
    a, b = Registry("a", 1), Registry("b", 1)
    r1 = a.register("x", "1")
    assert a.take_changes() == [NameAdded("x", a.lookup("x"))]  # type: ignore[arg-type]
    old = a.lookup("x")
    a.register("x", "2")
    new = a.lookup("x")
    a.unregister("x")
    assert a.take_changes() == [NameChanged("x", old, new), NameRemoved("x", new)]  # type: ignore[arg-type]
    assert a.take_changes() == []
    b.merge(r1)
    assert [type(ch) for ch in b.take_changes()] == [NameAdded]


def test_the_change_stream_is_bounded() -> None:
    a = Registry("a", 1, max_changes=3)
    for i in range(5):
        a.register(f"n{i}", "x")
    assert [ch.name for ch in a.take_changes()] == ["n2", "n3", "n4"]
    assert a.changes_dropped == 2


def test_register_all_claims_like_one_register_each_in_one_delta() -> None:
    taken = Registry("b", 1).register("taken", "on-b")
    batch, single = Registry("a", 1), Registry("a", 1)
    for registry in (batch, single):
        registry.merge(taken)
        registry.register("mine", "old")
        registry.take_changes()
    claims = [("new", "n1", b""), ("mine", "m2", b"meta"), ("taken", "on-a", b"")]
    delta = batch.register_all(claims)
    for claim in claims:
        single.register(*claim)
    names = ["new", "mine", "taken"]
    assert (
        [(batch.lookup(n).node, batch.lookup(n).actor_id) for n in names]
        == [  # type: ignore[union-attr]
            (single.lookup(n).node, single.lookup(n).actor_id)  # type: ignore[union-attr]
            for n in names
        ]
        == [("a", "n1"), ("a", "m2"), ("b", "on-b")]
    )
    assert [type(c) for c in batch.take_changes()] == [NameChanged, NameAdded, NameLost]
    assert len(delta.entries) == 3
    other = Registry("c", 1)
    other.merge(delta)
    assert {n: other.lookup(n).actor_id for n in names} == {  # type: ignore[union-attr]
        "new": "n1",
        "mine": "m2",
        "taken": "on-a",
    }


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.register("", "x"),
        lambda r: r.register("x" * 1025, "x"),
        lambda r: r.register("x", ""),
        lambda r: r.register("x", 7),
        lambda r: r.register("x", "a", "not bytes"),
        lambda r: r.register("x", "a", b"m" * 5000),
        lambda r: r.register_all([("x", "a", b""), ("", "b", b"")]),
        lambda r: r.node_down("b", -1),
        lambda r: r.node_down("b", True),
        lambda r: r.set_incarnation(2**63),
        lambda r: Registry("", 1),
        lambda r: Registry("a", -1),
    ],
)
def test_bad_arguments_get_a_registry_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RegistryError):
        call(Registry("a", 1))


def test_on_change_is_called_for_every_queued_change() -> None:
    """A driver can wait for this instead of polling take_changes()."""
    registry = Registry("n1", 1)
    calls: list[int] = []
    registry.on_change = lambda: calls.append(len(registry.take_changes()))
    registry.register("a", "actor-1")
    registry.register("b", "actor-2")
    assert calls == [1, 1]


def test_winners_and_counts_by_node_filter_before_building() -> None:
    """``winners`` yields each name's winner by name, only under ``prefix`` and, with
    ``with_meta``, only winners carrying meta; ``count_by_node`` counts the winners."""
    a, b = Registry("a", 1), Registry("b", 1)
    b.merge(a.register_all([("g/1", "x#1", b""), ("g/2", "y#1", b"s"), ("other", "z#1", b"")]))
    a.merge(b.register_all([("g/3", "w#1", b""), ("g/1", "v#1", b"late")]))
    a.merge(b.state())
    assert [(n, r.node, r.actor_id) for n, r in a.winners()] == [
        ("g/1", "a", "x#1"),
        ("g/2", "a", "y#1"),
        ("g/3", "b", "w#1"),
        ("other", "a", "z#1"),
    ]
    assert [n for n, _ in a.winners(prefix="g/")] == ["g/1", "g/2", "g/3"]
    assert [(n, r.meta) for n, r in a.winners(with_meta=True)] == [("g/2", b"s")]
    assert a.count_by_node("g/") == {"a": 2, "b": 1} and a.count_by_node() == {"a": 3, "b": 1}
    assert [r for _, r in a.winners()] == [a.lookup(n) for n in a.names()]


def test_lookup_builds_a_name_s_registration_again_only_when_its_winner_changed() -> None:
    """The registry stores tuples; ``lookup`` keeps what it built lately for a name
    looked up again (a bounded number of them) and builds anew once the winner changed."""
    a, b = Registry("a", 1), Registry("b", 1)
    a.register("x", "one#1")
    first = a.lookup("x")
    assert first is a.lookup("x") and first is not None and first.actor_id == "one#1"
    a.register("x", "two#1")
    second = a.lookup("x")
    assert second is not None and second.actor_id == "two#1" and second.clock == first.clock
    b.merge(a.state())
    a.merge(b.register("y", "three#1"))
    a.register_all([(f"n{i}", "many#1", b"") for i in range(3000)])
    for i in range(3000):
        a.lookup(f"n{i}")
    assert len(a._built) <= 1024
    assert a.lookup("x") == second and a.lookup("y") == b.lookup("y")
    a.unregister("x")
    assert a.lookup("x") is None
