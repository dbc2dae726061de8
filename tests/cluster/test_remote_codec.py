"""The actor frame codec: total on hostile input, exact on every value it accepts."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors import Unsendable, wire
from swimactors.actors import protocol

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.binary(max_size=200))
def test_parse_is_total_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        protocol.parse(data)


@given(st.lists(plain, max_size=7))
def test_parse_is_total_on_arbitrary_cbor_arrays(items: list[Any]) -> None:
    try:
        frame = protocol.parse(cbor2.dumps(items))
    except wire.WireError:
        return
    assert wire.loads(protocol.encode(frame)[4:]) == items


@given(plain)
def test_plain_values_round_trip(value: Any) -> None:
    assert protocol.decode_value(wire.loads(wire.dumps(protocol.encode_value(value)))) == value


@given(st.integers(0, 2**63 - 1), st.text(), st.text(), st.text())
def test_errors_round_trip_typed(corr: int, type_name: str, message: str, tb: str) -> None:
    from swimactors import ActorFailed, ActorStopped

    failed = protocol.parse(
        protocol.encode(protocol.encode_error(corr, ActorFailed(type_name, message, tb)))[4:]
    )
    assert isinstance(failed, protocol.ErrorReply)
    error = protocol.decode_error(failed)
    assert isinstance(error, ActorFailed)
    assert (error.type_name, error.message, error.traceback) == (type_name, message, tb)
    stopped = protocol.decode_error(protocol.encode_error(corr, ActorStopped(message)))
    assert type(stopped) is ActorStopped


def test_values_that_cannot_cross_are_unsendable_a_type_error() -> None:
    with pytest.raises(Unsendable, match="cannot go to another node"):
        protocol.encode_value({1, 2})


@given(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
def test_a_plain_scalar_value_is_the_bytes_of_its_encoding(value: Any) -> None:
    """value_bytes makes a plain scalar's bytes without encode_value: the same bytes,
    and the same refusal of an integer past 64 bits."""
    try:
        expected = wire.dumps(protocol.encode_value(value))
    except Unsendable:
        with pytest.raises(Unsendable):
            protocol.value_bytes(value)
        return
    assert protocol.value_bytes(value) == expected
