"""Every decoder that reads bytes from the network, with valid messages to start from.

A decoder passes when it returns or raises :class:`swimactors.wire.WireError` (or a
subclass), and nothing else, for any input.  Shared by the hypothesis tests in
tests/security/ and the atheris targets in this package.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Callable
from typing import cast

import attrs

from swimactors import wire
from swimactors.actors import protocol
from swimactors.actors.message import MESSAGES
from swimactors.actors.protocol import Kind
from swimactors.agent import events
from swimactors.cluster.ddata import DataRead, DataWrite
from swimactors.cluster.grain_leases import GrainLease
from swimactors.cluster.grains import GrainProbe
from swimactors.cluster.groups import TopicDelivery
from swimactors.cluster.singletons import SingletonBook, retirement
from swimactors.cluster.system import SpawnRequest
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
from swimactors.membership.keys import KeyGossip
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
from swimactors.quorum import QuorumTracker, keep_majority
from swimactors.registry import codec as registry_codec
from swimactors.registry.crdt import State
from swimactors.security import HandshakeError, Keyring, StreamHandshake
from swimactors.security.packets import PacketSealer

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
    if isinstance(frame, protocol.TellRun):
        values = protocol.run_values(frame)[len(protocol.decode_run(frame)) :]
    elif isinstance(frame, protocol.Tell | protocol.StreamItem):
        values = frame.values
    elif isinstance(frame, protocol.Ask | protocol.Reply | protocol.StreamOpen):
        values = [frame.value]
    else:
        return frame
    for value in values:
        if not (type(value) is list and value and value[0] == 2):  # refs need a live system
            protocol.decode_value(value)
    return frame


_SYSTEM_REQUESTS = (
    GrainProbe("counter", "alice", 7, "b", 3),
    GrainLease("b", ["counter"], [["a", "b"]]),
    DataWrite(b"\x80", "majority"),
    DataRead("kv/1", "all"),
    TopicDelivery("news", protocol.encode_value("hi"), ["/user/x#1"]),
    SpawnRequest("echo", [1, "two"], "named"),
)
"""The requests a node's system answers itself (their types registered by importing)."""


def _actor_seeds() -> tuple[bytes, ...]:
    value = protocol.encode_value
    burst = [value(n) for n in range(protocol.TELL_VALUES)]
    probe = list(attrs.astuple(cast(attrs.AttrsInstance, _SYSTEM_REQUESTS[0]), recurse=False))
    run = [MESSAGES.tag_of(GrainProbe), len(probe), *probe, *probe]
    lease = list(attrs.astuple(cast(attrs.AttrsInstance, _SYSTEM_REQUESTS[1]), recurse=False))
    nested_run = [MESSAGES.tag_of(GrainLease), len(lease), *lease, *lease]  # list fields
    system = [
        [Kind.ASK, corr, "$system", 0, None, value(request)]
        for corr, request in enumerate(_SYSTEM_REQUESTS, 20)
    ]
    return tuple(
        wire.dumps(frame)
        for frame in (
            [Kind.HELLO, "a", 1, 64, protocol.VERSION, protocol.OLDEST_VERSION],
            [Kind.HELLO, "a", 1, 64],  # from code before versions
            [Kind.TELL, "/user/x", 1, None, value({"k": [1, 2.5, b"x"]})],
            [Kind.TELL, "/user/x", 1, None, value(1), value("two")],
            [Kind.TELL, "/user/x", 1, ["b", "/user/y", 3], *burst],
            [Kind.RUN, "/user/x", 1, None, *run],
            [Kind.RUN, "/user/x", 1, None, *nested_run],
            *system,
            [Kind.ASK, 5, "/user/x", 2, ["b", "/user/y", 3], value("hi")],
            [Kind.REPLY, 5, value([None, True])],
            [Kind.ERROR, 5, "failed", "ValueError", "boom", ""],
            [Kind.CREDIT, 8],
            [Kind.TERMINATED, "/user/x", 1, None],
            [Kind.STREAM, 6, "/user/x", 2, None, value(["count", 10]), 64],
            [Kind.ITEM, 6, value({"i": 1})],
            [Kind.ITEM, 6, value(1), value("two"), value([3])],
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


_LONE_ADDRESS = protocol.wire_address("/user/x", 2, ["b", "/user/y", 3])
"""The address of the request before, kept by the connection (an ASK to it is taken
straight)."""


def _actor_lone(data: bytes) -> object:
    """A read offered as the transport offers every read: to the straight paths of asks
    in a row first (``lone_reply`` for the pending ask 5, ``lone_ask`` to
    :data:`_LONE_ADDRESS`), else to the usual path; on a session past its HELLO."""
    session = protocol.PeerSession[str]("b", 1, 4, 1 << 16, peer="a")
    session.receive_data(wire.encode_frame(_actor_seeds()[0]), 0.0)
    session.next_event()
    session.expect(5, "token")
    try:
        reply = session.lone_reply(data, 5, 0.0)
        ask = None if reply is not None else session.lone_ask(data, _LONE_ADDRESS, 0.0)
        if reply is not None or ask is not None:
            return reply, ask
        session.receive_data(data, 0.0)
        return list(iter(session.next_event, None))
    except protocol.ProtocolViolation as exc:
        raise wire.WireError(str(exc)) from None


def _lone_seeds() -> tuple[bytes, ...]:
    value = protocol.encode_value
    return tuple(
        wire.encode_frame(wire.dumps(frame))
        for frame in (
            [Kind.REPLY, 5, value([None, True])],
            [Kind.ASK, 300, "/user/x", 2, ["b", "/user/y", 3], value("hi")],
            [Kind.ASK, 2**40, "/user/x", 2, ["b", "/user/y", 3], value(1)],
        )
    )


def _session_seeds() -> tuple[bytes, ...]:
    frames = [wire.encode_frame(seed) for seed in _actor_seeds()]
    hello, streams = frames[0], frames[-5:]
    return (b"".join([hello, *streams]), b"".join([hello, streams[1], streams[1], streams[3]]))


def _registry_seeds() -> tuple[bytes, ...]:
    state = State()
    state.floors["b"] = 3
    return (registry_codec.encode(state), wire.dumps([1, [["n", 1, 1, [], []]], {"n": 1}]))


def _registry_part_seeds() -> tuple[bytes, ...]:
    """A full state's parts: one that opens the order, one that starts inside a process
    (its piece) and ends inside the next."""
    entry = [[3, 1, "x", "/user/x#1", b""]]
    return (
        wire.dumps([2, None, ["n", 1, 3], [["n", 1, 2, [], []]], {"n": 0}]),
        wire.dumps(
            [2, ["n", 1, 3], ["o", 2, 5], [["n", 1, 4, [9], entry], ["o", 2, 4, [], []]], {}]
        ),
    )


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


_KEY = b"K" * 32
_LABEL = "fuzz"
_WALL = 1_733_000_000.0


def _handshake_seeds() -> tuple[bytes, ...]:
    """A key holder's hello and proof for the responder of :func:`_handshake`."""
    initiator = StreamHandshake(Keyring(_KEY), _LABEL, "a", initiator=True, nonce=b"i" * 32)
    proof = initiator.on_hello(_responder().hello())
    return (initiator.hello() + proof,)


def _responder() -> StreamHandshake:
    return StreamHandshake(Keyring(_KEY), _LABEL, "b", initiator=False, nonce=b"r" * 32)


def _handshake(data: bytes) -> object:
    """The actor port's key handshake on a stranger's bytes: a hello (its length from its
    name-length byte), then a proof; a refusal is a WireError."""
    responder = _responder()
    end = 39 + data[38] if len(data) > 38 else len(data)
    try:
        responder.on_hello(data[:end])
        return responder.on_proof(data[end:])
    except HandshakeError as exc:
        raise wire.WireError(str(exc)) from None


def _sealed_seeds() -> tuple[bytes, ...]:
    sealer = PacketSealer(Keyring(_KEY), _LABEL, session=b"s" * 12)
    return tuple(sealer.seal(seed, _WALL) for seed in _packet_seeds())


def _sealed_packet(data: bytes) -> object:
    """A datagram opened with the cluster key (never decoded unless it opens), then read."""
    opened = PacketSealer(Keyring(_KEY), _LABEL).open(data, _WALL)
    return opened if not isinstance(opened, bytes) else _packet(opened)


def _quorum(data: bytes) -> object:
    """A split-brain announcement: malformed ones are counted, never raised."""
    tracker = QuorumTracker("a", keep_majority())
    tracker.receive(0.0, data)
    return tracker.counters


def _quorum_seeds() -> tuple[bytes, ...]:
    return (wire.dumps(["b", b"12345678", 1_733_000_000_000, 4, 120, ["c"]]),)


def _singleton(data: bytes) -> object:
    """A singleton's retirement notice heard on gossip: malformed ones are counted."""
    book = SingletonBook(lambda name: False, Counter())
    book.notify_message(data, 0.0)
    return book.counters


def _keys(data: bytes) -> object:
    """A keyring heard from a peer (sealed gossip): malformed ones are counted."""
    gossip = KeyGossip(Keyring(_KEY), lambda payload: None)
    gossip.notify_message(data, 0.0)
    return gossip.counters


def _keys_seeds() -> tuple[bytes, ...]:
    return (wire.dumps([3, b"N" * 32, [_KEY, b"N" * 32]]),)


def _user_event(data: bytes) -> object:
    """An agent's user event or query heard on gossip, tag patterns included: a pattern
    accepted is matched at once against a long tag (slow ones show as atheris timeouts)."""
    with contextlib.suppress(wire.WireError, ValueError):
        return events._decode_event(data)
    try:
        query = events._decode_query(data)
    except ValueError as exc:  # a WireError, or an EventError for a refused pattern
        raise wire.WireError(str(exc)) from None
    tag = "a" * 120 + "!"
    for _key, pattern in query.tags:
        re.fullmatch(pattern, tag)
    return query


def _user_event_seeds() -> tuple[bytes, ...]:
    return (
        wire.dumps(["a", 7, "deploy", b"v1.2"]),
        wire.dumps(["a", 8, "whoami", b"", ["a", "/user/q", 2], ["b"], [["role", "web.*"]], 5]),
    )


def _frames(data: bytes) -> object:
    return wire.FrameDecoder(max_frame=1 << 16).feed(data)


_EACH = (
    Decoder("packet", _packet, _packet_seeds()),
    Decoder("actor_frame", _actor_frame, _actor_seeds()),
    Decoder("actor_session", _actor_session, _session_seeds()),
    Decoder("actor_lone", _actor_lone, _lone_seeds()),
    Decoder("registry", registry_codec.decode, _registry_seeds()),
    Decoder("registry_part", registry_codec.decode_part, _registry_part_seeds()),
    Decoder("ddata", _ddata, _ddata_seeds()),
    Decoder("meta", _meta, (encode_meta({"role": "web", "dc": "eu"}),)),
    Decoder("handshake", _handshake, _handshake_seeds()),
    Decoder("sealed_packet", _sealed_packet, _sealed_seeds()),
    Decoder("quorum", _quorum, _quorum_seeds()),
    Decoder("singleton", _singleton, (retirement("counter", "n4", "/user/counter#7"),)),
    Decoder("keys", _keys, _keys_seeds()),
    Decoder("user_event", _user_event, _user_event_seeds()),
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
