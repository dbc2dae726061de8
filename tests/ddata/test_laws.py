"""The join laws of every replicated data type, on full states and on deltas."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from .histories import MODELS, History, histories, operations, run

KINDS = sorted(MODELS)


def joined(history: History, *values: Any) -> Any:
    result = history.kind()
    for value in values:
        result.merge(value)
    return result


def _pick(history: History, data: st.DataObject, count: int) -> list[Any]:
    pool = history.states + history.deltas
    return [data.draw(st.sampled_from(pool)) for _ in range(count)]


@pytest.mark.parametrize("model", KINDS)
@given(data=st.data())
def test_merge_is_commutative_associative_idempotent(model: str, data: st.DataObject) -> None:
    history = data.draw(histories(model))
    a, b, c = _pick(history, data, 3)
    assert joined(history, a, b) == joined(history, b, a)
    assert joined(history, joined(history, a, b), c) == joined(history, a, joined(history, b, c))
    assert joined(history, a, a) == joined(history, a) == a


@pytest.mark.parametrize("model", KINDS)
@given(data=st.data())
def test_merge_is_inflationary(model: str, data: st.DataObject) -> None:
    """Joining never loses what either side knew: a ⊔ b absorbs both a and b."""
    history = data.draw(histories(model))
    a, b = _pick(history, data, 2)
    both = joined(history, a, b)
    assert joined(history, both, a) == both
    assert joined(history, both, b) == both


@pytest.mark.parametrize("model", KINDS)
@given(data=st.data(), rng=st.randoms(use_true_random=False))
def test_deltas_in_any_order_with_duplicates_equal_the_full_states(
    model: str, data: st.DataObject, rng: random.Random
) -> None:
    """Delta merge == full merge: every delta, shuffled and duplicated, gives the join of
    the states of the processes that made them."""
    history = data.draw(histories(model))
    deliveries = history.deltas + [rng.choice(history.deltas or [history.kind()])] * 3
    rng.shuffle(deliveries)
    from_deltas = joined(history, *deliveries)
    assert from_deltas == joined(history, *history.deltas)
    everything = joined(history, *history.states)
    assert joined(history, everything, *history.deltas) == everything


@pytest.mark.parametrize("model", KINDS)
@given(data=st.data(), rng=st.randoms(use_true_random=False))
def test_lost_deltas_are_repaired_by_a_full_state_merge(
    model: str, data: st.DataObject, rng: random.Random
) -> None:
    history = data.draw(histories(model))
    receiver = history.kind()
    for delta in history.deltas:
        if rng.random() < 0.6:
            receiver.merge(delta)
    for state in rng.sample(history.states, len(history.states)):
        receiver.merge(state)
    assert receiver == joined(history, *history.states)


TWO_SUCCESSORS_FOLD_ONE_PREDECESSOR = [
    ("update", 0, 0, 0),
    ("update", 0, 0, 0),
    ("update", 0, 0, 0),
    ("update", 2, 1, 0),
    ("deliver", 0, 3, 0),
    ("update", 0, 0, 0),
    ("update", 0, 0, 0),
    ("update", 0, 0, 0),
    ("restart", 2, 0, 0),
    ("deliver", 2, 276, 0),
    ("update", 2, 0, 0),
    ("adopt", 2, 0, 0),
    ("update", 2, 0, 0),
]
"""n2's process 2 folds process 1's slot; process 3 adopts n0's copy of that slot and folds
it again without having heard of process 2: both folds counted process 1's increment."""


@pytest.mark.parametrize("model", ["gcounter", "pncounter"])
@given(ops=operations)
@example(ops=TWO_SUCCESSORS_FOLD_ONE_PREDECESSOR)
def test_a_counter_counts_every_increment_and_never_more(
    model: str, ops: list[tuple[str, int, int, int]]
) -> None:
    """With every delta seen the value is the sum of all increments; a restarted process's
    fold can lose only its predecessor's increments it had not seen, and never adds any."""
    history = run(model, ops)
    value = joined(history, *history.states, *history.deltas).value
    restarts = sum(history.incarnations) > len(history.incarnations)
    if model == "gcounter":
        assert value <= history.total
    if not restarts:
        assert value == history.total
