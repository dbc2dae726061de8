"""The registry codec: round trips, splitting to a packet budget, and a total decoder."""

from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors.registry import Registry, RegistryDecodeError, State, decode, encode, split
from swimactors.registry.codec import MAX_META_BYTES
from swimactors.registry.crdt import joined

from .histories import History, histories


@given(histories)
def test_states_and_deltas_round_trip(history: History) -> None:
    for state in history.states + history.deltas:
        assert decode(encode(state)) == state


def test_registry_exposes_the_codec() -> None:
    registry = Registry("n1", 7)
    delta = registry.register("counter", "actor-1", b"m")
    assert Registry.decode(Registry.encode(delta)) == delta
    assert decode(encode(registry.state())) == registry.state()


@given(histories, st.integers(min_value=60, max_value=400))
def test_split_parts_fit_and_rejoin_to_the_whole(history: History, budget: int) -> None:
    for state in history.states + history.deltas:
        parts, deferred = split(state, budget)
        assert deferred == 0
        assert all(len(part) <= budget for part in parts)
        decoded = [decode(part) for part in parts]
        assert joined(*decoded) == state
        for part in decoded:  # each part alone is a valid piece of the whole
            assert joined(state, part) == state


def test_a_registration_larger_than_the_budget_is_deferred_not_lost() -> None:
    registry = Registry("n1", 1)
    registry.register("small", "a")
    delta = joined(registry.register("big", "b", b"x" * 600), registry.unregister("small"))
    parts, deferred = split(delta, 200)
    assert deferred == 1
    rest = joined(*(decode(p) for p in parts))
    assert "big" not in rest.by_name and len(rest.context.vv) + len(rest.context.cloud) == 1


def test_small_deltas_are_one_part() -> None:
    delta = Registry("n1", 1700000000).register("counter", "actor-1")
    parts, deferred = split(delta, 1000)
    assert (len(parts), deferred) == (1, 0)
    assert len(parts[0]) < 64


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    with contextlib.suppress(RegistryDecodeError):
        decode(data)


_cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=5)
    | st.binary(max_size=5)
    | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)


@given(st.lists(_cbor_values, max_size=4).filter(lambda fields: len(fields) != 2))
def test_well_formed_cbor_with_the_wrong_number_of_fields_is_refused(fields: list[object]) -> None:
    with pytest.raises(RegistryDecodeError):
        decode(cbor2.dumps([1, *fields]))


@given(_cbor_values, _cbor_values)
def test_arbitrary_cbor_fields_are_refused_or_decode_to_a_state_that_encodes_back(
    entries: object, floors: object
) -> None:
    try:
        state = decode(cbor2.dumps([1, entries, floors]))
    except RegistryDecodeError:
        return
    assert decode(encode(state)) == state


@given(histories, st.data())
def test_corrupted_encodings_decode_or_fail_cleanly(history: History, data: st.DataObject) -> None:
    encoded = bytearray(encode(data.draw(st.sampled_from(history.states))))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RegistryDecodeError):
        decode(bytes(encoded))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ([1, [["n", 1, 0, [], [[1, 0, "x", "a", b""]]]], {}], "outside its causal context"),
        ([1, [["n", 1, 1, [], [[1, 0, "x", "a", b""], [1, 0, "y", "a", b""]]]], {}], "twice"),
        ([1, [["n", 1, 1, [], []], ["n", 1, 1, [], []]], {}], "appears twice"),
        ([1, [["n", -1, 1, [], []]], {}], "out of range"),
        ([1, [["n", 1, 2**64 - 1, [], []]], {}], "out of range"),
        ([1, [["n", 1, 1, [0], []]], {}], "out of range"),
        ([1, [["", 1, 1, [], []]], {}], "node name"),
        ([1, [["n", 1, 1, [], [[1, 0, "", "a", b""]]]], {}], "name"),
        ([1, [["n", 1, 1, [], [[1, 0, "x", "a", b"m" * (MAX_META_BYTES + 1)]]]], {}], "meta"),
        ([1, [], {"n": -3}], "floor"),
        ([1, [], {"n": "3"}], "expected int"),
        ([3, [], {}], "unknown message tag"),
        ([2, None, None, [], {}], "a state part where a state or delta"),
        ({"not": "an array"}, "not a registry message"),
        ([[1], [], {}], "not a registry message"),  # an unhashable tag
        ([True, [], {}], "not a registry message"),
    ],
)
def test_inconsistent_states_get_a_typed_error(bad: object, reason: str) -> None:
    with pytest.raises(RegistryDecodeError, match=reason):
        decode(cbor2.dumps(bad))


def test_decoding_applies_floors_to_the_replicas_it_carries() -> None:
    data = cbor2.dumps([1, [["n", 1, 1, [], [[1, 0, "x", "a", b""]]]], {"n": 1}])
    state = decode(data)
    assert state.entries == {} and state.floors == {"n": 1} and state == _floor_only("n", 1)


def _floor_only(node: str, incarnation: int) -> State:
    state = State()
    state.floors[node] = incarnation
    return state
