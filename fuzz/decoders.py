"""Every decoder that reads bytes from the network, with valid messages to start from.

A decoder passes when it returns or raises :class:`swimactors.wire.WireError` (or a
subclass), and nothing else, for any input.  Shared by the hypothesis tests in
tests/security/ and the atheris targets in this package.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import attrs

from swimactors import wire
from swimactors.actors import protocol
from swimactors.actors.protocol import Kind
from swimactors.ddata import (
    GCounter,
    LWWMap,
    ORSet,
    Writer,
    decode_data,
    decode_entries,
    encode_data,
    encode_entries,
)
from swimactors.membership.messages import (
    Alive,
    Dead,
    MemberState,
    Ping,
    PingReq,
    PushPull,
    Suspect,
    UserMessage,
    decode_packet,
    encode_message,
    encode_packet,
)
from swimactors.membership.meta import decode_meta, encode_meta
from swimactors.membership.types import Status
from swimactors.registry import codec as registry_codec
from swimactors.registry.crdt import State

__all__ = ["DECODERS", "Decoder"]


@attrs.frozen
class Decoder:
    """One network decoder: ``decode`` returns or raises WireError; ``seeds`` are valid."""

    name: str
    decode: Callable[[bytes], object]
    seeds: tuple[bytes, ...]


def _packet(data: bytes) -> object:
    return decode_packet(data, "", stale_alive=lambda *fields: False)


def _packet_seeds() -> tuple[bytes, ...]:
    gossip = [
        encode_message(Ping(7, "b")),
        encode_message(Alive("a", ("127.0.0.1", 7946), 3, encode_meta({"role": "web"}))),
        encode_message(Suspect("b", 2, "a")),
        encode_message(Dead("c", 1, "a")),
        encode_message(PingReq(9, "c", ("10.0.0.3", 7946))),
        encode_message(UserMessage("registry", b"\x83\x01\x80\xa0")),
    ]
    members = tuple(
        MemberState.of(f"n{i}", ("10.0.0.1", 7000 + i), i, Status.UP, b"") for i in range(5)
    )
    push_pull = encode_message(PushPull(False, False, members, {"registry": b"\x80"}))
    return (
        encode_packet("", "a", gossip),
        encode_packet("", "a", [push_pull], ("127.0.0.1", 7946)),
    )


def _actor_frame(data: bytes) -> object:
    frame = protocol.parse(data)
    if isinstance(frame, protocol.StreamEnd):
        protocol.decode_stream_end(frame)
    if isinstance(frame, protocol.Tell):
        values = frame.values
    elif isinstance(
        frame, protocol.Ask | protocol.Reply | protocol.StreamOpen | protocol.StreamItem
    ):
        values = [frame.value]
    else:
        return frame
    for value in values:
        if not (type(value) is list and value and value[0] == 2):  # refs need a live system
            protocol.decode_value(value)
    return frame


def _actor_seeds() -> tuple[bytes, ...]:
    value = protocol.encode_value
    return tuple(
        wire.dumps(frame)
        for frame in (
            [Kind.HELLO, "a", 1, 64],
            [Kind.TELL, "/user/x", 1, None, value({"k": [1, 2.5, b"x"]})],
            [Kind.TELL, "/user/x", 1, None, value(1), value("two")],
            [Kind.ASK, 5, "/user/x", 2, ["b", "/user/y", 3], value("hi")],
            [Kind.REPLY, 5, value([None, True])],
            [Kind.ERROR, 5, "failed", "ValueError", "boom", ""],
            [Kind.CREDIT, 8],
            [Kind.TERMINATED, "/user/x", 1, None],
            [Kind.STREAM, 6, "/user/x", 2, None, value(["count", 10]), 64],
            [Kind.ITEM, 6, value({"i": 1})],
            [Kind.MORE, 6, 32],
            [Kind.END, 6, ["failed", "ValueError", "boom", ""]],
            [Kind.CANCEL, 6],
        )
    )


def _actor_session(data: bytes) -> object:
    """A session's stream rules on a byte stream: a peer past its HELLO, with one stream
    read here (id 1, two items of credit); a protocol violation is a WireError."""
    session = protocol.PeerSession[str]("b", 1, 4, 1 << 16, peer="a")
    session.open_stream(1, 2)
    session.receive_data(data, 0.0)
    events = []
    try:
        while (event := session.next_event()) is not None:
            events.append(event)
    except protocol.ProtocolViolation as exc:
        raise wire.WireError(str(exc)) from None
    return events


def _session_seeds() -> tuple[bytes, ...]:
    frames = [wire.encode_frame(seed) for seed in _actor_seeds()]
    hello, streams = frames[0], frames[-5:]
    return (b"".join([hello, *streams]), b"".join([hello, streams[1], streams[1], streams[3]]))


def _registry_seeds() -> tuple[bytes, ...]:
    state = State()
    state.floors["b"] = 3
    return (registry_codec.encode(state), wire.dumps([1, [["n", 1, 1, [], []]], {"n": 1}]))


def _ddata_seeds() -> tuple[bytes, ...]:
    writer = Writer("node-a", 1_733_000_000, 1_733_000_000.0)
    counter = GCounter().increment(writer, 3)
    names = ORSet().add(writer, "element")
    table = LWWMap().set(writer, "key", "value")
    return (encode_data(counter), encode_entries({"c": counter, "s": names, "m": table}))


def _ddata(data: bytes) -> object:
    """Both replicated-data decoders: one value, and a store delta of keyed values."""
    for decode in (decode_data, decode_entries):
        with contextlib.suppress(wire.WireError):
            decode(data)
    return None


def _meta(data: bytes) -> object:
    return decode_meta(data)


def _frames(data: bytes) -> object:
    return wire.FrameDecoder(max_frame=1 << 16).feed(data)


_EACH = (
    Decoder("packet", _packet, _packet_seeds()),
    Decoder("actor_frame", _actor_frame, _actor_seeds()),
    Decoder("actor_session", _actor_session, _session_seeds()),
    Decoder("registry", registry_codec.decode, _registry_seeds()),
    Decoder("ddata", _ddata, _ddata_seeds()),
    Decoder("meta", _meta, (encode_meta({"role": "web", "dc": "eu"}),)),
    Decoder("frames", _frames, (wire.encode_frame(b"abc") * 3,)),
    Decoder("cbor", wire.loads, (wire.dumps({"a": [1, -2, 2.5, None, True, b"x"]}),)),
)


def _any(data: bytes) -> object:
    """The first byte picks the decoder, the rest is its input: one process for all."""
    if not data:
        return None
    return _EACH[data[0] % len(_EACH)].decode(data[1:])


DECODERS: dict[str, Decoder] = {d.name: d for d in _EACH} | {
    "all": Decoder("all", _any, tuple(bytes([i]) + s for i, d in enumerate(_EACH) for s in d.seeds))
}
"""Every network decoder by name (the atheris target names); ``all`` multiplexes them."""
