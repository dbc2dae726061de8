"""The ddata wire format: round trips of every reachable value, and a total decoder."""

from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors.ddata import (
    DataDecodeError,
    GCounter,
    LWWMap,
    LWWRegister,
    ORSet,
    Writer,
    decode_data,
    decode_entries,
    encode_data,
    encode_entries,
)
from swimactors.ddata.base import MAX_ENTRIES, MAX_VALUE_BYTES

from .histories import MODELS, histories

KINDS = sorted(MODELS)


@pytest.mark.parametrize("model", KINDS)
@given(data=st.data())
def test_every_reachable_state_and_delta_round_trips(model: str, data: st.DataObject) -> None:
    history = data.draw(histories(model))
    for value in history.states + history.deltas:
        again = decode_data(encode_data(value))
        assert type(again) is type(value) and again == value and again.value == value.value


@given(data=st.data())
def test_a_store_delta_of_every_type_round_trips(data: st.DataObject) -> None:
    entries = {model: data.draw(histories(model)).states[0] for model in KINDS}
    assert decode_entries(encode_entries(entries)) == entries


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_a_decode_error(data: bytes) -> None:
    for decode in (decode_data, decode_entries):
        with contextlib.suppress(DataDecodeError):
            decode(data)


@given(data=st.data())
def test_corrupted_encodings_never_raise_anything_but_a_decode_error(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(KINDS))
    value = data.draw(histories(model)).states[0]
    raw = bytearray(encode_entries({"k": value}))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DataDecodeError):
        decode_entries(bytes(raw))


def _fails(message: list[object], match: str) -> None:
    with pytest.raises(DataDecodeError, match=match):
        decode_data(cbor2.dumps(message))


def test_hostile_values_are_refused_with_a_reason() -> None:
    _fails([1, [["n", 1, 5, 1]]], "covers its own incarnation")
    _fails([1, [["n", 1, 5, -1], ["n", 1, 6, -1]]], "appears twice")
    _fails([1, [["n", 1, -5, -1]]], "out of range")
    _fails([1, [["n", 1, 2**64 - 1, -1]]], "out of range")
    _fails([1, [["", 1, 5, -1]]], "node name")
    _fails([3, [["n", 1, 1, [], [[2, "x"]]]], {}], "outside its causal context")
    _fails([3, [["n", 1, 1, [], [[1, 1.5]]]], {}], "element")
    _fails([3, [["n", 1, 1, [], [[1, True]]]], {}], "element")
    _fails([4, [1, "n", True, "x" * MAX_VALUE_BYTES]], "limit")
    _fails([4, [1, "n", False, "x"]], "removal carries a value")
    _fails([5, {"": [1, "n", True, 1]}], "map key")
    _fails([1, [["n", i, 1, -1] for i in range(MAX_ENTRIES + 1)]], "at most|CBOR items")
    _fails([10, []], "one value was expected")
    with pytest.raises(DataDecodeError, match="appears twice"):
        decode_entries(cbor2.dumps([10, [["k", [6, True]], ["k", [6, True]]]]))
    with pytest.raises(DataDecodeError, match="store delta was expected"):
        decode_entries(cbor2.dumps([6, True]))


def test_the_smallest_updates_fit_a_gossip_packet_with_room_to_spare() -> None:
    writer = Writer("node-a", 1_733_000_000, 1_733_000_000.0)
    deltas = [
        GCounter().increment(writer, 1),
        ORSet().add(writer, "element"),
        LWWRegister().set(writer, "value"),
        LWWMap().set(writer, "key", "value"),
    ]
    assert all(len(encode_entries({"some/key": delta})) < 100 for delta in deltas)
