"""The join laws, on full states and on deltas, over randomly generated histories."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from swimactors.registry import NameAdded, NameChanged, NameRemoved, Registry, State
from swimactors.registry.crdt import joined

from .histories import History, histories


def _pool(history: History) -> list[State]:
    return history.states + history.deltas


def _pick(history: History, draw: st.DataObject, count: int) -> list[State]:
    pool = _pool(history)
    return [draw.draw(st.sampled_from(pool)) for _ in range(count)]


@given(histories, st.data())
def test_merge_is_commutative(history: History, data: st.DataObject) -> None:
    a, b = _pick(history, data, 2)
    assert joined(a, b) == joined(b, a)


@given(histories, st.data())
def test_merge_is_associative(history: History, data: st.DataObject) -> None:
    a, b, c = _pick(history, data, 3)
    assert joined(joined(a, b), c) == joined(a, joined(b, c))


@given(histories, st.data())
def test_merge_is_idempotent(history: History, data: st.DataObject) -> None:
    (a,) = _pick(history, data, 1)
    assert joined(a) == a
    assert joined(a, a) == a


@given(histories, st.data())
def test_merge_is_inflationary(history: History, data: st.DataObject) -> None:
    """Joining never loses what either side knew: a ⊔ b absorbs both a and b."""
    a, b = _pick(history, data, 2)
    both = joined(a, b)
    assert joined(both, a) == both
    assert joined(both, b) == both


@given(histories, st.randoms(use_true_random=False))
def test_any_delivery_order_with_duplicates_gives_the_same_state(
    history: History, rng: random.Random
) -> None:
    deltas = history.deltas
    deliveries = deltas + [rng.choice(deltas) for _ in range(len(deltas) // 2)]
    rng.shuffle(deliveries)
    assert joined(*deliveries) == joined(*history.deltas)


@given(histories, st.randoms(use_true_random=False))
def test_lost_deltas_are_repaired_by_a_full_state_merge(
    history: History, rng: random.Random
) -> None:
    deliveries = [d for d in history.deltas if rng.random() < 0.7]
    deliveries += [rng.choice(deliveries) for _ in range(len(deliveries) // 3)]
    rng.shuffle(deliveries)
    receiver = State()
    for delta in deliveries:
        receiver.merge(delta)
    for state in rng.sample(history.states, len(history.states)):
        receiver.merge(state)
    everything = joined(*history.states)
    assert joined(everything, *history.deltas) == everything
    assert receiver == everything


@given(histories, st.randoms(use_true_random=False))
def test_replicas_agree_on_winners_whatever_the_order(history: History, rng: random.Random) -> None:
    first, second = Registry("p", 1), Registry("q", 1)
    for target in (first, second):
        for state in rng.sample(_pool(history), len(_pool(history))):
            target.merge(state)
    assert _view(first) == _view(second)
    assert _view(first) == {
        name: regs[0] for name in first.names() if (regs := first.lookup_all(name))
    }


@given(histories)
def test_after_sync_and_refutation_every_held_name_is_registered(history: History) -> None:
    """Whatever failures were declared, live replicas end up holding exactly their names."""
    replicas = history.replicas
    for _ in range(2):
        for registry in replicas:
            for state in [r.state() for r in replicas]:
                registry.merge(state)
        for registry in replicas:
            registry.set_incarnation(registry.incarnation + 10)
    for registry, held in zip(replicas, history.held, strict=True):
        for observer in (registry, replicas[0]):
            entries = observer.state().registrations_all()
            assert {r.name for r in entries if r.node == registry.node} == held


@given(histories, st.randoms(use_true_random=False))
def test_replaying_the_change_stream_rebuilds_the_view(
    history: History, rng: random.Random
) -> None:
    registry = Registry("watcher", 1)
    table: dict[str, object] = {}
    for state in rng.sample(_pool(history), len(_pool(history))):
        registry.merge(state)
        for change in registry.take_changes():
            if isinstance(change, NameAdded):
                assert change.name not in table
                table[change.name] = change.registration
            elif isinstance(change, NameChanged):
                assert table.pop(change.name) == change.old
                table[change.name] = change.new
            elif isinstance(change, NameRemoved):
                assert table.pop(change.name) == change.old
    assert table == _view(registry)


def _view(registry: Registry) -> dict[str, object]:
    return {name: registry.lookup(name) for name in registry.names()}
