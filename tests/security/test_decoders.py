"""Every network decoder is total and cheap: for arbitrary bytes, mutations of valid
messages and the hostile CBOR of issue 12 it returns or raises WireError, nothing else,
within a bounded time (hypothesis' deadline)."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.decoders import DECODERS, Decoder
from fuzz.hostile import HOSTILE, sharing_bomb
from swimactors import wire
from swimactors.membership.messages import Oversized, Ping, decode_packet, encode_message
from swimactors.membership.messages import encode_packet as packet

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(milliseconds=250),
    suppress_health_check=[HealthCheck.too_slow],
)
decoders = pytest.mark.parametrize("decoder", DECODERS.values(), ids=DECODERS.keys())


def total(decoder: Decoder, data: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        decoder.decode(data)


@decoders
@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_raise_wire_error(decoder: Decoder, data: bytes) -> None:
    total(decoder, data)


hostile_heads = st.sampled_from([v[:12] for v in HOSTILE.values()] + [b"\xd8\x1c", b"\xd8\x1d\x00"])


@st.composite
def mutations(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A valid message with bytes flipped, cut, duplicated or hostile headers spliced in."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        match draw(st.sampled_from(["flip", "cut", "splice", "repeat", "truncate"])):
            case "flip" if at < len(data):
                data[at] = draw(st.integers(0, 255))
            case "cut":
                del data[at : at + draw(st.integers(1, 8))]
            case "splice":
                data[at:at] = draw(hostile_heads)
            case "repeat":
                data[at:at] = data[at : at + draw(st.integers(1, 16))]
            case "truncate":
                del data[at:]
    return bytes(data)


@decoders
@FUZZ
@given(data=st.data())
def test_mutated_valid_messages_decode_or_raise_wire_error(
    decoder: Decoder, data: st.DataObject
) -> None:
    total(decoder, data.draw(mutations(decoder.seeds)))


@decoders
def test_seeds_are_valid_messages(decoder: Decoder) -> None:
    for seed in decoder.seeds:
        decoder.decode(seed)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_cbor_is_refused_before_it_costs(name: str) -> None:
    data = HOSTILE[name]
    started = time.perf_counter()
    with pytest.raises(wire.WireError):
        wire.loads(data)
    assert time.perf_counter() - started < 0.1
    for decoder in DECODERS.values():  # and inside every decoder's own framing
        total(decoder, data)


DECODER_ONLY = {"int_keys", "float_keys", "array_key", "bad_utf8"}
"""Refused while decoding (key types, UTF-8), not by the header scan: they cost nothing."""


@pytest.mark.parametrize("name", sorted(HOSTILE.keys() - DECODER_ONLY))
def test_the_header_scan_refuses_the_structures_the_decoder_refuses(name: str) -> None:
    with pytest.raises(wire.WireError):
        wire.scan(HOSTILE[name])


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.floats()
    | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=4),
    max_leaves=30,
)  # fmt: skip


@given(plain)
def test_the_header_scan_counts_every_item_of_valid_cbor(value: object) -> None:
    data = cbor2.dumps(value)
    count = wire.scan(data)
    assert count == _items(value)
    assert wire.scan(data, wire.Limits(max_items=count)) == count
    with pytest.raises(wire.WireError, match="items"):
        wire.scan(data, wire.Limits(max_items=count - 1))


def _items(value: object) -> int:
    if isinstance(value, list):
        return 1 + sum(_items(v) for v in value)
    if isinstance(value, dict):
        return 1 + sum(_items(k) + _items(v) for k, v in value.items())
    return 1


def test_a_value_sharing_bomb_is_refused_at_its_first_tag() -> None:
    bomb = sharing_bomb(23)  # resolved and walked: 2**23 paths from 210 bytes
    with pytest.raises(wire.WireError, match="tag"):
        wire.loads(bomb)
    with pytest.raises(wire.WireError, match="tag"):
        wire.scan(bomb)


def test_limits_bound_bytes_items_and_depth() -> None:
    with pytest.raises(wire.WireError, match="byte limit"):
        wire.loads(b"\x41x", wire.Limits(max_bytes=1))
    with pytest.raises(wire.WireError, match="items"):
        wire.loads(cbor2.dumps([0] * 10), wire.Limits(max_items=5))
    with pytest.raises(wire.WireError, match="depth"):
        wire.loads(b"\x81" * 5 + b"\x00", wire.Limits(max_depth=4))
    assert wire.loads(b"\x81" * 4 + b"\x00", wire.Limits(max_depth=4)) == [[[[0]]]]


def test_big_integers_and_non_text_keys_are_refused_at_the_api_boundary() -> None:
    with pytest.raises(wire.WireError, match="64-bit"):
        wire.check_plain([2**64])
    with pytest.raises(wire.WireError, match="keys"):
        wire.check_plain({1: "x"})
    assert wire.check_plain({"k": [-(2**64), 2**64 - 1]}) == {"k": [-(2**64), 2**64 - 1]}


def test_inert_simple_values_never_reach_a_typed_decoder() -> None:
    for data in (b"\xf7", b"\xf8\x20", b"\xe0"):
        with pytest.raises(wire.WireError):
            wire.check_plain(wire.loads(data))


def test_a_datagram_over_the_packet_budget_is_refused_before_decoding() -> None:
    data = packet("", "a", [encode_message(Ping(1, "b"))] * 300)
    assert len(data) > 1400
    with pytest.raises(Oversized):
        decode_packet(data, "", packet_budget=1400)
    assert decode_packet(data, "", packet_budget=len(data)).sender == "a"
    reliable = packet("", "a", [encode_message(Ping(1, "b"))] * 300, ("127.0.0.1", 1))
    assert decode_packet(reliable, "", packet_budget=1400).sender == "a"  # a stream frame
