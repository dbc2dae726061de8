"""LWW map tombstone pruning: it never changes a value, and replicas that prune tombstones
every replica already holds (no older write of their keys still in flight, the time bound
the store relies on) converge to exactly what they would have held without pruning."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from swimactors.ddata import LWWMap, Writer
from swimactors.ddata.store import DataStore

from .histories import NODES, _map, histories, operations, run

_late_op = st.tuples(
    st.sampled_from(["update", "update", "deliver", "sync"]),
    st.integers(0, 2),
    st.integers(0, 1000),
    st.integers(0, 1000),
)


def _exchange(replicas: list[LWWMap]) -> None:
    """Every replica merges every other one (full push/pull all round)."""
    for replica in replicas:
        for other in replicas:
            replica.merge(other)


def _continue(replicas: list[LWWMap], ops: list[tuple[str, int, int, int]], start: float) -> None:
    """More updates, deliveries of their deltas and syncs, with clocks after ``start``."""
    deltas: list[LWWMap] = []
    for step, (op, i, a, b) in enumerate(ops):
        now = start + step * 0.001 + (b % 3) * 0.0005
        if op == "update":
            deltas.append(_map(replicas[i], Writer(NODES[i], 1, now), a))
        elif op == "deliver" and deltas:
            replicas[i].merge(deltas[a % len(deltas)])
        elif op == "sync":
            replicas[i].merge(replicas[a % 3])


@given(history=histories("lwwmap"), horizon=st.integers(0, 2**40))
def test_pruning_never_changes_a_value(history: object, horizon: int) -> None:
    for state in history.states + history.deltas:  # type: ignore[attr-defined]
        pruned = state.copy()
        pruned.prune(horizon)
        assert pruned.value == state.value
        assert all(w.present or w.clock >= horizon for w in pruned.writes.values())


@given(
    first=operations,
    then=st.lists(_late_op, max_size=30),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
)
def test_replicas_that_prune_held_tombstones_converge_as_if_they_had_not(
    first: list[tuple[str, int, int, int]],
    then: list[tuple[str, int, int, int]],
    cuts: list[float],
) -> None:
    history = run("lwwmap", first)
    everything = LWWMap()
    for state in history.states:
        everything.merge(state)
    latest = max((w.clock for w in everything.writes.values()), default=0)
    reference = [everything.copy() for _ in NODES]
    pruned = [everything.copy() for _ in NODES]
    for replica, cut in zip(pruned, cuts, strict=True):  # each at its own horizon
        replica.prune(int(cut * (latest + 1)))
    assert [r.value for r in pruned] == [r.value for r in reference]
    start = (latest + 1) / 1_000_000 + 1.0
    for replicas in (reference, pruned):
        _continue(replicas, then, start)
        _exchange(replicas)
    assert [r.value for r in pruned] == [r.value for r in reference]
    assert all(r.value == pruned[0].value for r in pruned)


def test_a_replica_cut_off_past_the_bound_brings_a_removed_key_back() -> None:
    """The documented cost of the time bound (docs/ddata.md): pruning before every
    replica heard of a removal lets a stale copy resurrect the key."""
    stale = LWWMap()
    stale.set(Writer("n0", 1, 1.0), "k", "old")
    current = stale.copy()
    current.remove(Writer("n1", 1, 2.0), "k")
    assert current.prune(3_000_000) == 1 and current.writes == {}
    current.merge(stale)
    assert current.value == {"k": "old"}


def test_the_store_prunes_only_map_tombstones_older_than_the_horizon() -> None:
    store = DataStore("n0", 1)
    store.update("m", LWWMap, lambda m, w: m.set(w, "a", 1), now=1.0)
    store.update("m", LWWMap, lambda m, w: m.set(w, "b", 2), now=1.0)
    store.update("m", LWWMap, lambda m, w: m.remove(w, "a"), now=2.0)
    store.update("m", LWWMap, lambda m, w: m.remove(w, "b"), now=5.0)
    assert store.prune_tombstones(3.0) == 1
    kept = store.get("m")
    assert isinstance(kept, LWWMap) and list(kept.writes) == ["b"] and kept.value == {}
    assert store.counters["tombstones_pruned"] == 1
