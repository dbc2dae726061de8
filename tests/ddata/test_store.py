"""The keyed store: updates as deltas, merges from peers, typed errors, change events."""

from __future__ import annotations

import pytest

from swimactors.ddata import (
    DataError,
    DataStore,
    DataTypeError,
    GCounter,
    KeyChanged,
    LWWMap,
    ORSet,
    PNCounter,
)
from swimactors.ddata.base import MAX_VALUE_BYTES


def test_updates_return_deltas_that_bring_a_peer_to_the_same_values() -> None:
    a, b = DataStore("a", 1), DataStore("b", 1)
    deltas = [
        a.update("hits", GCounter, lambda c, w: c.increment(w, 3), now=1.0),
        b.update("hits", GCounter, lambda c, w: c.increment(w, 4), now=1.0),
        a.update("users", ORSet, lambda s, w: s.add(w, "alice"), now=2.0),
        b.update("users", ORSet, lambda s, w: s.add(w, "bob"), now=2.0),
        a.update("users", ORSet, lambda s, w: s.remove(w, "alice"), now=3.0),
        b.update("conf", LWWMap, lambda m, w: m.set(w, "mode", "fast"), now=3.0),
        a.update("stock", PNCounter, lambda c, w: c.decrement(w, 2), now=4.0),
    ]
    for delta in deltas:
        a.merge(delta)
        b.merge(delta)
    for store in (a, b):
        assert store.value("hits") == 7
        assert store.value("users") == {"bob"}
        assert store.value("conf") == {"mode": "fast"}
        assert store.value("stock") == -2
    assert a.state() == b.state()
    assert a.value("missing", 0) == 0 and a.get("missing") is None


def test_a_peer_that_missed_every_delta_catches_up_from_one_full_state() -> None:
    a, c = DataStore("a", 1), DataStore("c", 1)
    for i in range(50):
        a.update(f"k{i}", GCounter, lambda g, w: g.increment(w, 2), now=float(i))
    assert c.merge(a.state()) == sorted(f"k{i}" for i in range(50))
    assert c.merge(a.state()) == []
    assert all(c.value(f"k{i}") == 2 for i in range(50))


def test_changes_report_each_new_value_once() -> None:
    a, b = DataStore("a", 1), DataStore("b", 1)
    woken = []
    b.on_change = lambda: woken.append(True)
    delta = a.update("hits", GCounter, lambda c, w: c.increment(w), now=1.0)
    assert a.take_changes() == [KeyChanged("hits", 1)]
    b.merge(delta)
    b.merge(delta)
    assert b.take_changes() == [KeyChanged("hits", 1)] and woken == [True]
    assert b.take_changes() == []


def test_bad_updates_raise_typed_errors_and_change_nothing() -> None:
    store = DataStore("a", 1)
    store.update("hits", GCounter, lambda c, w: c.increment(w), now=1.0)
    with pytest.raises(DataTypeError, match="holds a GCounter"):
        store.update("hits", ORSet, lambda s, w: s.add(w, "x"), now=1.0)
    with pytest.raises(DataError, match="integer in 0"):
        store.update("hits", GCounter, lambda c, w: c.increment(w, -1), now=1.0)
    with pytest.raises(DataError, match="key"):
        store.update("", GCounter, lambda c, w: c.increment(w), now=1.0)
    with pytest.raises(DataError, match="limit"):
        store.update("m", LWWMap, lambda m, w: m.set(w, "k", b"x" * MAX_VALUE_BYTES), now=1.0)
    with pytest.raises(DataError, match="plain CBOR"):
        store.update("m", LWWMap, lambda m, w: m.set(w, "k", object()), now=1.0)
    with pytest.raises(DataError, match="element"):
        store.update("s", ORSet, lambda s, w: s.add(w, 1.5), now=1.0)  # type: ignore[arg-type]
    assert store.value("hits") == 1 and store.keys() == ["hits"]


def test_a_merge_of_another_type_under_a_key_is_counted_and_ignored() -> None:
    a, b = DataStore("a", 1), DataStore("b", 1)
    a.update("k", GCounter, lambda c, w: c.increment(w), now=1.0)
    b.update("k", ORSet, lambda s, w: s.add(w, "x"), now=1.0)
    assert a.merge(b.state()) == []
    assert a.counters["type_conflicts"] == 1 and a.value("k") == 1


def test_a_restarted_process_folds_its_predecessors_counts_into_one_slot() -> None:
    old = DataStore("a", 1)
    delta = old.update("hits", GCounter, lambda c, w: c.increment(w, 5), now=1.0)
    new = DataStore("a", 7)
    new.merge(delta)
    folded = new.update("hits", GCounter, lambda c, w: c.increment(w, 1), now=2.0)
    peer = DataStore("b", 1)
    peer.merge(delta)
    peer.merge(folded)
    peer.merge(delta)  # a stale copy of the dead process's slot stays dropped
    counter = peer.get("hits")
    assert isinstance(counter, GCounter)
    assert counter.value == 6 and list(counter.slots) == [("a", 7)]


def test_a_restarted_process_keeps_its_predecessors_elements_under_its_own_dots() -> None:
    old = DataStore("a", 1)
    delta = old.update("s", ORSet, lambda s, w: s.add(w, "x"), now=1.0)
    new = DataStore("a", 3)
    new.merge(delta)
    folded = new.update("s", ORSet, lambda s, w: s.add(w, "y"), now=2.0)
    peer = DataStore("b", 1)
    peer.merge(delta)
    peer.merge(folded)
    orset = peer.get("s")
    assert isinstance(orset, ORSet)
    assert orset.value == {"x", "y"}
    assert {dot[:2] for dot in orset.entries} == {("a", 3)}
    assert orset.context.replicas() == {("a", 3)} and orset.floors == {"a": 2}
