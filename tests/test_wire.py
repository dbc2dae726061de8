"""The CBOR wire: SWIM messages and the packet envelope round-trip, TypeRegistry decodes
strictly by annotation, every decoder is total (bad input is a WireError, never a crash),
and FrameDecoder reassembles frames split anywhere."""

from __future__ import annotations

import contextlib
import random
import string
from typing import Any

import attrs
import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors import wire
from swimactors.membership import Status, Swim
from swimactors.membership.messages import (
    MAX_INCARNATION,
    SWIM,
    Ack,
    Alive,
    Dead,
    Envelope,
    Left,
    MemberState,
    Nack,
    Ping,
    PingReq,
    PushPull,
    Suspect,
    UserMessage,
    decode_packet,
    encode_message,
    encode_packet,
    valid_host,
)

# -- strategies for SWIM messages ----------------------------------------------------------

names = st.text(min_size=1, max_size=24).filter(
    lambda s: len(s.encode()) <= 128 and s.isprintable()
)
hosts = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.:%", min_size=1, max_size=40
).filter(valid_host)
addresses = st.tuples(hosts, st.integers(1, 65535))
counters = st.integers(0, 2**63 - 1)
incarnations = st.integers(0, MAX_INCARNATION)
metas = st.binary(max_size=512)
statuses = st.sampled_from(list(Status))
member_states = st.builds(MemberState.of, names, addresses, incarnations, statuses, metas)

swim_messages = st.one_of(
    st.builds(Ping, counters, st.one_of(st.just(""), names)),
    st.builds(Ack, counters),
    st.builds(PingReq, counters, names, addresses),
    st.builds(Nack, counters),
    st.builds(Alive, names, addresses, incarnations, metas),
    st.builds(Suspect, names, incarnations, names),
    st.builds(Dead, names, incarnations, names),
    st.builds(Left, names, incarnations),
    st.builds(UserMessage, names, st.binary(max_size=2000)),
    st.builds(
        PushPull,
        st.booleans(),
        st.booleans(),
        st.lists(member_states, max_size=5).map(tuple),
        st.dictionaries(names, st.binary(max_size=100), max_size=3),
    ),
)


@given(swim_messages)
def test_every_swim_message_round_trips(message: Any) -> None:
    data = encode_message(message)
    assert data == SWIM.encode(message)  # the push/pull shortcut writes the same bytes
    assert SWIM.decode(data) == message


@given(
    label=st.text(max_size=20),
    sender=names,
    messages=st.lists(swim_messages, max_size=6),
    reply_to=st.one_of(st.none(), addresses),
)
def test_the_packet_envelope_round_trips(
    label: str, sender: str, messages: list[Any], reply_to: tuple[str, int] | None
) -> None:
    data = encode_packet(label, sender, [encode_message(m) for m in messages], reply_to)
    assert decode_packet(data, label) == Envelope(sender, tuple(messages), reply_to)


def test_an_unknown_message_tag_is_skipped_for_forward_compatibility() -> None:
    data = encode_packet("", "p1", [cbor2.dumps([99, "future"]), encode_message(Ack(3))])
    assert decode_packet(data, "").messages == (Ack(3),)


@pytest.mark.parametrize(
    "raw",
    [
        [0, 5],  # a Ping without its target
        [0, "5", "x"],
        [1, True],
        [1, -1],
        [1, 2**63],
        [4, "", ["h", 1], 1, b""],
        [4, "n", ["h", 0], 1, b""],
        [4, "n", ["h", 1], 1, b"m" * 513],
        [5, "n", 1, ""],
        [9, True, False, [[("n")]], {}],
    ],
)
def test_malformed_known_messages_reject_the_packet(raw: list[Any]) -> None:
    data = encode_packet("", "p", [cbor2.dumps(raw)])
    with pytest.raises(wire.WireError):
        decode_packet(data, "")
    with pytest.raises(wire.WireError):  # even when every Alive would be stale news
        decode_packet(data, "", stale_alive=lambda *fields: True)


near_alive = st.lists(
    st.one_of(
        st.integers(-1, 2**64),
        st.booleans(),
        st.text(max_size=3),
        st.binary(max_size=600),
        st.lists(st.one_of(st.text(max_size=2), st.integers(-1, 70000), st.booleans()), max_size=3),
    ),
    max_size=4,
).map(lambda fields: [4, *fields])


@settings(max_examples=500)
@given(
    raw=st.one_of(
        near_alive,
        st.builds(
            lambda name, host, port, inc, meta: [4, name, [host, port], inc, *meta],
            st.text(max_size=3),
            st.text(max_size=3),
            st.integers(0, 70000),
            st.integers(-1, 2**64),
            st.lists(st.binary(max_size=600), max_size=1),
        ),
    )
)
def test_only_alives_that_would_decode_are_left_undecoded_as_stale(raw: list[Any]) -> None:
    """Skipping a stale Alive must never let a malformed one through: whatever is
    skipped decodes to an Alive with the same fields."""
    data = encode_packet("", "p", [cbor2.dumps(raw)])
    seen: list[tuple[Any, ...]] = []
    try:
        envelope = decode_packet(data, "", stale_alive=lambda *fields: not seen.append(fields))
    except wire.WireError:
        envelope = None
    if envelope is not None and envelope.stale_alives:
        alive = decode_packet(data, "").messages[0]
        assert seen == [(alive.name, *alive.address, alive.incarnation)]
    else:
        with contextlib.suppress(wire.WireError):
            assert not any(isinstance(m, Alive) for m in decode_packet(data, "").messages)


# -- TypeRegistry ------------------------------------------------------------------------------

REG = wire.TypeRegistry[str]("test")


@attrs.frozen
class Point:  # an unregistered attrs value: travels as a bare array
    x: int
    y: float


@REG.register("leaf")
@attrs.frozen
class Leaf:
    name: str
    data: bytes = b""


@REG.register("tree")
@attrs.frozen
class Tree:
    leaf: Leaf
    point: Point
    maybe: int | None
    pair: tuple[int, str]
    many: tuple[Leaf, ...]
    table: dict[str, list[int]]
    anything: Any
    flag: bool = False
    extra: Leaf | None = None


keys = st.text(max_size=4)
wire_ints = st.integers(-(2**64), 2**64 - 1)  # CBOR's own integers; bignum tags are refused
plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=8)
    | st.binary(max_size=8) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)  # fmt: skip
leaves = st.builds(Leaf, st.text(max_size=10), st.binary(max_size=10))
trees = st.builds(
    Tree,
    leaves,
    st.builds(Point, wire_ints, st.floats(allow_nan=False, allow_infinity=False)),
    st.one_of(st.none(), wire_ints),
    st.tuples(wire_ints, st.text(max_size=5)),
    st.lists(leaves, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=5), st.lists(wire_ints, max_size=3), max_size=3),
    plain,
    st.booleans(),
    st.one_of(st.none(), leaves),
)


@given(trees)
def test_type_registry_round_trips_nested_optional_tuple_and_dict_fields(tree: Tree) -> None:
    assert REG.decode(REG.encode(tree)) == tree


def test_trailing_defaulted_fields_may_be_omitted() -> None:
    data: list[Any] = ["tree", ["leaf", "a"], [1, 2.0], None, [1, "x"], [], {}, None]
    assert REG.from_data(data) == Tree(Leaf("a"), Point(1, 2.0), None, (1, "x"), (), {}, None)


@pytest.mark.parametrize(
    "data",
    [
        ["nope", 1],
        [],
        "tree",
        ["leaf"],  # missing a required field
        ["leaf", "a", b"", "too many"],
        ["leaf", 5],  # int for str
        ["leaf", "a", "not bytes"],
        ["tree", ["tree"], [1, 2.0], None, [1, "x"], [], {}, None],  # wrong nested tag
        ["tree", ["leaf", "a"], [1, "2"], None, [1, "x"], [], {}, None],  # str for float
        ["tree", ["leaf", "a"], [True, 2.0], None, [1, "x"], [], {}, None],  # bool for int
        ["tree", ["leaf", "a"], [1, float("inf")], None, [1, "x"], [], {}, None],
        ["tree", ["leaf", "a"], [1, 2.0], None, [1], [], {}, None],  # short tuple
        ["tree", ["leaf", "a"], [1, 2.0], None, [1, "x"], {}, {}, None],
        ["tree", ["leaf", "a"], [1, 2.0], None, [1, "x"], [], [], None],
        ["tree", ["leaf", "a"], [1, 2.0], None, [1, "x"], [], {}, cbor2.CBORTag(1, 0)],
    ],
)
def test_type_registry_refuses_anything_not_matching_the_annotations(data: Any) -> None:
    with pytest.raises(wire.WireError):
        REG.from_data(data)


@REG.register("reading")
@attrs.frozen
class Reading:  # every field a scalar: built straight from the decoded list when it fits
    sensor: str
    value: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    unit: str = "C"


@given(st.lists(plain, max_size=4))
def test_an_all_scalar_message_is_built_only_from_fields_of_its_exact_types(
    fields: list[Any],
) -> None:
    kinds = (str, int, str)
    fits = 1 <= len(fields) <= 3 and all(type(f) is k for f, k in zip(fields, kinds, strict=False))
    if fits and (len(fields) < 2 or fields[1] >= 0):
        assert REG.from_data(["reading", *fields]) == Reading(*fields)
    else:
        with pytest.raises(wire.WireError):
            REG.from_data(["reading", *fields])


def test_type_registry_refuses_unregistered_types_and_reused_tags() -> None:
    with pytest.raises(TypeError):
        REG.encode(Point(1, 2.0))
    with pytest.raises(ValueError, match="leaf"):
        REG.add("leaf", Point)
    with pytest.raises(TypeError):
        REG.add("plain", dict)


def test_free_form_values_are_bounded_in_depth() -> None:
    deep: Any = 0
    for _ in range(wire.MAX_PLAIN_DEPTH + 2):
        deep = [deep]
    with pytest.raises(wire.WireError, match="deep"):
        wire.check_plain(deep)


# -- total decoders ----------------------------------------------------------------------------

cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10)
    | st.binary(max_size=10) | st.integers(0, 12),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(keys, inner, max_size=3)
    | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 28, 29, 258, 260, 1000]), inner),
    max_leaves=25,
)  # fmt: skip
packet_shaped = st.builds(
    lambda label, sender, msgs, tail: [1, label, sender, msgs, *tail],
    st.sampled_from(["", "x"]),
    st.one_of(names, cbor_values),
    st.lists(cbor_values | st.tuples(st.integers(0, 10), st.lists(cbor_values, max_size=5)).map(
        lambda t: [t[0], *t[1]]), max_size=4),
    st.lists(cbor_values, max_size=2),
)  # fmt: skip


def fresh_core() -> Swim:
    core = Swim("n0", ("10.0.0.1", 7000), rng=random.Random(0))
    core.tick(0.0)
    return core


def assert_total(data: bytes) -> None:
    with contextlib.suppress(wire.WireError):  # and nothing else
        decode_packet(data, "")
    core = fresh_core()
    core.receive(1.0, ("10.0.0.2", 7001), data)  # never raises
    core.tick(2.0)
    assert core.counters["packets_received"] == 1


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_wire_error(data: bytes) -> None:
    assert_total(data)


@settings(max_examples=300)
@given(st.one_of(cbor_values, packet_shaped))
def test_arbitrary_cbor_values_never_raise_anything_but_wire_error(value: Any) -> None:
    try:
        data = cbor2.dumps(value)
    except (ValueError, TypeError, cbor2.CBOREncodeError):
        return
    assert_total(data)


@given(st.data())
def test_corrupted_real_packets_never_raise(data: st.DataObject) -> None:
    messages = data.draw(st.lists(swim_messages, min_size=1, max_size=4))
    packet = bytearray(encode_packet("", "p1", [encode_message(m) for m in messages]))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(packet) - 1))
        packet[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(packet)))
    assert_total(bytes(packet[:cut]))


# -- stream framing ----------------------------------------------------------------------------


@given(
    frames=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(0, 3000), max_size=12),
)
def test_frame_decoder_reassembles_frames_split_at_any_point(
    frames: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(wire.encode_frame(f) for f in frames)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    decoder = wire.FrameDecoder(max_frame=1000)
    out: list[bytes] = []
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        out += decoder.feed(stream[start:end])
    assert out == frames
    assert decoder.buffered == 0 and decoder.error is None


def test_frame_decoder_delivers_frames_one_byte_at_a_time() -> None:
    stream = wire.encode_frame(b"abc") + wire.encode_frame(b"") + wire.encode_frame(b"z" * 70)
    decoder = wire.FrameDecoder()
    out = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert out == [b"abc", b"", b"z" * 70]


@given(
    before=st.lists(st.binary(max_size=50), max_size=3),
    excess=st.integers(1, 2**31),
    split=st.integers(0, 3),
)
def test_frame_decoder_poisons_on_an_oversized_header(
    before: list[bytes], excess: int, split: int
) -> None:
    decoder = wire.FrameDecoder(max_frame=100)
    good = b"".join(wire.encode_frame(f) for f in before)
    header = (100 + excess).to_bytes(4, "big")
    out = decoder.feed(good + header[:split])
    out += decoder.feed(header[split:] + b"x" * 10)
    assert out == before
    assert decoder.error is not None and "100" in decoder.error
    assert decoder.feed(wire.encode_frame(b"ok")) == []  # poisoned for good
    assert decoder.buffered == 0


def test_a_frame_of_exactly_max_frame_is_accepted() -> None:
    decoder = wire.FrameDecoder(max_frame=10)
    assert decoder.feed(wire.encode_frame(b"x" * 10)) == [b"x" * 10]
    assert decoder.error is None


@settings(max_examples=500)
@given(
    row=st.one_of(
        near_alive.map(lambda raw: [*raw[1:], 0]),  # near-entries, status code UP
        st.builds(
            lambda name, host, port, inc, code, meta: [name, [host, port], inc, code, *meta],
            st.text(max_size=3),
            st.text(max_size=3),
            st.integers(0, 70000),
            st.integers(-1, 2**64),
            st.sampled_from([0, 1, 2, 3, 4, False]),
            st.lists(st.binary(max_size=600), max_size=1),
        ),
    )
)
def test_only_push_pull_entries_that_would_decode_as_up_are_left_out_as_stale(
    row: list[Any],
) -> None:
    data = encode_packet("", "p", [cbor2.dumps([9, False, True, [row], {}])])
    try:
        skipped = decode_packet(data, "", stale_alive=lambda *fields: True)
    except wire.WireError:
        skipped = None
    if skipped is not None and skipped.messages[0].members == ():
        (entry,) = decode_packet(data, "").messages[0].members
        assert entry.status is Status.UP
    else:
        with contextlib.suppress(wire.WireError):
            members = decode_packet(data, "").messages[0].members
            assert all(m.status is not Status.UP for m in members)
