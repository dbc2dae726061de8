"""SWIM wire messages and the packet envelope that carries several of them.

A packet is the CBOR array ``[version, label, sender, [message, ...]]``, plus the sender's
own address as a fifth item on the reliable channel (where the transport's source port is
an ephemeral one and cannot be answered).  Each message is ``[tag, field, ...]``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Container, Sequence
from typing import Any, NamedTuple

import attrs

from .. import wire
from .types import Address, Status

__all__ = [
    "MAX_INCARNATION",
    "MAX_META",
    "MAX_NAME",
    "PROTOCOL_VERSION",
    "Ack",
    "Alive",
    "Dead",
    "Envelope",
    "Left",
    "MemberState",
    "Nack",
    "OutOfRange",
    "Oversized",
    "Ping",
    "PingReq",
    "PushPull",
    "Suspect",
    "UnprintableName",
    "UserMessage",
    "ack_item",
    "datagram_head",
    "decode_packet",
    "decode_value",
    "encode_packet",
    "kind_and_bytes",
    "load_packet",
    "ping_item",
    "probe_exchange",
    "valid_host",
]

PROTOCOL_VERSION = 1
MAX_NAME = 128
"""Longest node name, in bytes of UTF-8."""
MAX_META = 512
"""Largest metadata blob (memberlist's ``MetaMaxSize``)."""
MAX_INCARNATION = 2**44 - 1
"""Largest incarnation on the wire.  A node starts at the wall clock in milliseconds (so
a restarted process outbids its old life) and climbs by one per refutation or metadata
change; 2**44 ms is the year 2527.  News beyond it is forged or broken and is refused, so
``incarnation + 1`` stays representable for whoever must outbid news about itself (a
forged ``Dead(c, 2**63 - 1)`` made c's own refutation overflow)."""


class OutOfRange(wire.WireError):
    """A protocol value (an incarnation) beyond its maximum: the packet is dropped."""

    reason = "out_of_range"


class UnprintableName(wire.WireError):
    """A node or channel name with control or other unprintable characters (``str.isprintable``):
    names reach logs and terminals, so the packet carrying one is dropped."""

    reason = "unprintable_name"


SWIM = wire.TypeRegistry[int]("swim")


def _name(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not 0 < len(value.encode()) <= MAX_NAME:
        raise ValueError(f"{attribute.name} must be 1..{MAX_NAME} bytes of UTF-8")
    if not value.isprintable():
        raise UnprintableName(f"{attribute.name} {value!r} has unprintable characters")


def _optional_name(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if len(value.encode()) > MAX_NAME:
        raise ValueError(f"{attribute.name} must be at most {MAX_NAME} bytes of UTF-8")
    if not value.isprintable():
        raise UnprintableName(f"{attribute.name} {value!r} has unprintable characters")


_HOST = re.compile(r"(?:[0-9A-Za-z_:%-]{1,63}\.)*[0-9A-Za-z_:%-]{1,63}\.?")
"""An IP literal or an ASCII host name (labels of 1..63 characters; ``xn--`` for others):
what a resolver can be asked.  Anything else (``x..y``, a 64-character label, non-ASCII)
made the host-name lookup raise ``UnicodeError`` on the node that sent to it."""


_VALID_HOSTS: set[str] = set()
"""Hosts found valid lately (at most 4,096): most addresses on the wire repeat."""


def valid_host(host: str) -> bool:
    """Whether ``host`` can be a member's host: at most 253 characters, see :data:`_HOST`."""
    if type(host) is not str:
        return False
    if host in _VALID_HOSTS:
        return True
    if len(host) > 253 or _HOST.fullmatch(host) is None:
        return False
    if len(_VALID_HOSTS) >= 4096:
        _VALID_HOSTS.clear()
    _VALID_HOSTS.add(host)
    return True


def _address(instance: Any, attribute: attrs.Attribute[Any], value: Address) -> None:
    host, port = value
    if not valid_host(host) or not 0 < port <= 65535:
        raise ValueError(
            f"{attribute.name} must be (host, port): an IP or ASCII host name, a port in 1..65535"
        )


def _counter(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value < 2**63:
        raise ValueError(f"{attribute.name} must be in 0..2**63-1")


def _incarnation(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= MAX_INCARNATION:
        raise OutOfRange(f"{attribute.name} {value} outside 0..{MAX_INCARNATION}")


def _meta(instance: Any, attribute: attrs.Attribute[Any], value: bytes) -> None:
    if len(value) > MAX_META:
        raise ValueError(f"{attribute.name} exceeds {MAX_META} bytes")


# -- failure detection ---------------------------------------------------------------------


@SWIM.register(0)
@attrs.frozen
class Ping:
    """Are you alive?  ``target`` names the node meant ("" when unknown, as for seeds)."""

    seq: int = attrs.field(validator=_counter)
    target: str = attrs.field(validator=_optional_name)


@SWIM.register(1)
@attrs.frozen
class Ack:
    """Yes: the answer to the ping (or ping-req) with this sequence number."""

    seq: int = attrs.field(validator=_counter)


@SWIM.register(2)
@attrs.frozen
class PingReq:
    """Please ping ``target`` for me and relay its ack (Lifeguard: or a nack)."""

    seq: int = attrs.field(validator=_counter)
    target: str = attrs.field(validator=_name)
    address: Address = attrs.field(validator=_address)


@SWIM.register(3)
@attrs.frozen
class Nack:
    """Sent by a ping-req intermediary that got no ack: "I tried, and heard nothing"."""

    seq: int = attrs.field(validator=_counter)


# -- membership updates (disseminated by piggybacking) -------------------------------------


@SWIM.register(4)
@attrs.frozen
class Alive:
    """``name`` is alive at ``incarnation``, reachable at ``address``, with ``meta``."""

    name: str = attrs.field(validator=_name)
    address: Address = attrs.field(validator=_address)
    incarnation: int = attrs.field(validator=_incarnation)
    meta: bytes = attrs.field(default=b"", validator=_meta)


@SWIM.register(5)
@attrs.frozen
class Suspect:
    """``source`` suspects ``name`` at ``incarnation``."""

    name: str = attrs.field(validator=_name)
    incarnation: int = attrs.field(validator=_incarnation)
    source: str = attrs.field(validator=_name)


@SWIM.register(6)
@attrs.frozen
class Dead:
    """``source`` declares ``name`` failed at ``incarnation``."""

    name: str = attrs.field(validator=_name)
    incarnation: int = attrs.field(validator=_incarnation)
    source: str = attrs.field(validator=_name)


@SWIM.register(7)
@attrs.frozen
class Left:
    """``name`` leaves the cluster gracefully at ``incarnation``."""

    name: str = attrs.field(validator=_name)
    incarnation: int = attrs.field(validator=_incarnation)


@SWIM.register(8)
@attrs.frozen
class UserMessage:
    """A payload piggybacked for a layer above (the registry, or a user's own)."""

    channel: str = attrs.field(validator=_name)
    payload: bytes


# -- full-state sync (reliable channel) ----------------------------------------------------

_STATUS_CODES = {Status.UP: 0, Status.SUSPECT: 1, Status.DOWN: 2, Status.LEFT: 3}
_CODE_STATUS = {code: status for status, code in _STATUS_CODES.items()}


def _status_code(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value not in _CODE_STATUS:
        raise ValueError(f"{attribute.name} must be a status code 0..3")


@attrs.frozen(cache_hash=True)  # hashed as the key of its cached encoding
class MemberState:
    """One member's full state inside a push/pull."""

    name: str = attrs.field(validator=_name)
    address: Address = attrs.field(validator=_address)
    incarnation: int = attrs.field(validator=_incarnation)
    status_code: int = attrs.field(validator=_status_code)
    meta: bytes = attrs.field(default=b"", validator=_meta)

    @property
    def status(self) -> Status:
        """The member's status."""
        return _CODE_STATUS[self.status_code]

    @classmethod
    def of(
        cls, name: str, address: Address, incarnation: int, status: Status, meta: bytes
    ) -> MemberState:
        """A member's state with its status as the wire's code."""
        return cls(name, address, incarnation, _STATUS_CODES[status], meta)


@SWIM.register(9)
@attrs.frozen
class PushPull:
    """Full membership state plus each channel's user state; answered in kind unless
    ``reply`` is set.  ``join`` marks the exchange a newcomer starts."""

    join: bool
    reply: bool
    members: tuple[MemberState, ...]
    user_state: dict[str, bytes] = attrs.field(factory=dict)


# -- the envelope --------------------------------------------------------------------------


class Envelope(NamedTuple):
    """A decoded packet: who sent it, where they can be answered, and its messages (a
    named tuple: one is built per packet received)."""

    sender: str
    messages: tuple[Any, ...]
    sender_address: Address | None = None
    stale_alives: int = 0
    """Well-formed Alive messages left undecoded because ``stale_alive`` said they
    change nothing (see :func:`decode_packet`)."""


StaleAlive = Callable[[str, str, int, int], bool]
"""``(name, host, port, incarnation)``: would an Alive with these fields change nothing?"""


def encode_packet(
    label: str,
    sender: str,
    messages: Sequence[bytes],
    sender_address: Address | None = None,
) -> bytes:
    """Assemble already-encoded messages into one packet, without re-encoding them."""
    count = len(messages)
    head = _SHORT_ARRAY_HEADS[count] if count < 24 else wire.cbor_array_header(count)
    parts = [_packet_head(label, sender, sender_address is not None), head, *messages]
    if sender_address is not None:
        parts.append(wire.dumps(list(sender_address)))
    return b"".join(parts)


_SHORT_ARRAY_HEADS = tuple(map(wire.cbor_array_header, range(24)))
"""The head of a packet's array of messages, for the usual few (one byte, made once)."""


@functools.lru_cache(maxsize=64)
def _packet_head(label: str, sender: str, reliable: bool) -> bytes:
    """``[version, label, sender, ...`` encoded once per sender (a node sends as itself)."""
    head = wire.cbor_array_header(5 if reliable else 4)
    return head + wire.dumps(PROTOCOL_VERSION) + wire.dumps(label) + wire.dumps(sender)


def packet_overhead(label: str, sender: str, sender_address: Address | None = None) -> int:
    """Bytes a packet spends besides its messages (array headers counted at their max)."""
    return len(encode_packet(label, sender, [], sender_address)) + 4


class Oversized(wire.WireError):
    """A datagram longer than the cluster's packet budget (refused before decoding)."""

    reason = "oversized"


_DATAGRAM_HEAD = wire.cbor_array_header(4)


def decode_packet(
    data: bytes,
    label: str,
    stale_alive: StaleAlive | None = None,
    packet_budget: int = wire.DEFAULT_PACKET_BUDGET,
    loads: Callable[[bytes], Any] = wire.loads,
    known: Container[str] = frozenset(),
) -> Envelope:
    """Decode a packet for the cluster called ``label``; :class:`wire.WireError` if not.

    A datagram (the 4-item envelope) longer than ``packet_budget`` is refused before any
    decoding (:class:`Oversized`); a reliable-channel packet gets a stream frame's limits.
    A message of a newer, unknown type is skipped (forward compatibility); a malformed
    message of a known type rejects the whole packet.  A well-formed Alive for which
    ``stale_alive`` returns True is counted, not decoded: while a cluster forms, most
    messages are such repeats of news already applied. ``stale_alive`` judges against the
    record before the packet, so a member the packet names twice is always decoded (an
    earlier entry may move it, making a later one a conflict).  A sender in ``known`` (the
    members a core knows: their names were checked when it learnt them) is not checked again.
    """
    return decode_value(load_packet(data, packet_budget, loads), label, stale_alive, known)


def load_packet(
    data: bytes,
    packet_budget: int = wire.DEFAULT_PACKET_BUDGET,
    loads: Callable[[bytes], Any] = wire.loads,
) -> Any:
    """The CBOR value of a packet (:func:`decode_packet`'s first step): a datagram longer
    than ``packet_budget`` is refused before any decoding (:class:`Oversized`)."""
    if len(data) > packet_budget and data[:1] == _DATAGRAM_HEAD:
        raise Oversized(f"datagram of {len(data)} bytes over the {packet_budget}-byte budget")
    return loads(data)


def decode_value(
    value: Any,
    label: str,
    stale_alive: StaleAlive | None = None,
    known: Container[str] = frozenset(),
) -> Envelope:
    """:func:`decode_packet` of a packet :func:`load_packet` has loaded."""
    if not isinstance(value, list) or len(value) not in (4, 5):
        raise wire.WireError("a packet must be an array of 4 or 5 items")
    version, packet_label, sender, raw_messages = value[:4]
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(f"protocol version {version!r}, this node speaks {PROTOCOL_VERSION}")
    if packet_label != label:
        raise LabelMismatch(f"packet labelled {packet_label!r}, this cluster is {label!r}")
    if type(sender) is not str:
        raise wire.WireError("bad sender name")
    if sender not in known:
        if not 0 < len(sender.encode()) <= MAX_NAME:
            raise wire.WireError("bad sender name")
        if not sender.isprintable():
            raise UnprintableName(f"sender {sender!r} has unprintable characters")
    if not isinstance(raw_messages, list):
        raise wire.WireError("messages must be an array")
    messages = []
    stale = 0
    named: set[object] = set()  # a member named twice is looked at from then on
    builders = SWIM.builders
    for raw in raw_messages:
        tag = raw[0] if type(raw) is list and raw else None
        if stale_alive is not None:  # only an Alive or a push/pull can be stale
            if tag == _ALIVE_TAG and _is_stale_alive(raw, stale_alive, named):
                stale += 1
                continue
            if tag == _PUSH_PULL_TAG:
                raw = _without_stale_rows(raw, stale_alive, named)
        build = builders.get(tag) if type(tag) is int else None  # (a bool is no tag)
        message = build(raw) if build is not None else SWIM.from_data_if_known(raw)
        if message is not None:  # (None: a newer message type, skipped)
            messages.append(message)
    address: Address | None = None
    if len(value) == 5:
        raw_address = value[4]
        if (
            not isinstance(raw_address, list)
            or len(raw_address) != 2
            or not isinstance(raw_address[0], str)
            or not valid_host(raw_address[0])
            or type(raw_address[1]) is not int
            or not 0 < raw_address[1] <= 65535
        ):
            raise wire.WireError("bad sender address")
        address = (raw_address[0], raw_address[1])
    return Envelope(sender, tuple(messages), address, stale)


_PING_TAG = SWIM.tag_of(Ping)
_ACK_TAG = SWIM.tag_of(Ack)
_ACK_HEAD = wire.cbor_array_header(2) + wire.dumps(_ACK_TAG)
_PING_HEAD = wire.cbor_array_header(3) + wire.dumps(_PING_TAG)


def datagram_head(label: str) -> bytes:
    """How every datagram of ``label`` at this protocol version starts: ``[version,
    label, ...`` (what :func:`probe_exchange` looks for)."""
    return _DATAGRAM_HEAD + wire.dumps(PROTOCOL_VERSION) + wire.dumps(label)


_LONE_PING = wire.cbor_array_header(1) + _PING_HEAD
_LONE_ACK = wire.cbor_array_header(1) + _ACK_HEAD
"""``[[tag, ...``: one message, a Ping (three items) or an Ack (two)."""
_TEXT, _TEXT_1 = 0x60, 0x78
"""Initial bytes of a text string: 0x60 + a length below 24, or 0x78 and one length byte."""
_UINT_SIZE = (0,) * 24 + (1, 2, 4, 8)
"""Bytes after a CBOR unsigned integer's initial byte (0..27)."""
_NOBODY = wire.dumps("")


def probe_exchange(data: bytes, head: bytes, me: bytes) -> tuple[str, int, bool] | None:
    """``(sender, seq, is_ping)`` when ``data`` is a datagram starting with ``head`` (its
    :func:`datagram_head`) that carries one Ping for ``me`` (this node's name, encoded)
    or for whoever (a seed's), or one Ack, and nothing else: most of what a node
    receives, which ``Swim.receive`` handles without decoding CBOR or building message
    objects.  Read from the bytes: None for anything else or encoded otherwise (left to
    :func:`load_packet` and :func:`decode_value`, to which what this accepts is the same
    lone ``Ping`` or ``Ack``)."""
    at, end = len(head), len(data)
    if end <= at or not data.startswith(head):
        return None
    initial = data[at]
    if _TEXT <= initial < _TEXT_1:  # the sender's name
        start = at + 1
        at = start + initial - _TEXT
    elif initial == _TEXT_1 and end > at + 1:
        start = at + 2
        at = start + data[at + 1]
    else:
        return None
    shape = data[at : at + 3]
    ping = shape == _LONE_PING
    if (not ping and shape != _LONE_ACK) or end <= at + 3:
        return None
    initial = data[at + 3]  # the sequence number's
    if initial > 27:
        return None
    size = _UINT_SIZE[initial]
    at += 4 + size
    seq = initial if not size else int.from_bytes(data[at - size : at], "big")
    if ping:
        target = data[at:]
        if target != _NOBODY and target != me:
            return None
    elif at != end:
        return None
    if seq >= 2**63:  # (Ping's and Ack's validator: 0 <= seq < 2**63)
        return None
    try:
        return data[start : at - 4 - size].decode(), seq, ping
    except UnicodeDecodeError:
        return None


def ack_item(seq: int) -> tuple[str, bytes]:
    """``kind_and_bytes(Ack(seq))``, without building the ``Ack``."""
    return "ack", _ACK_HEAD + wire.dumps(seq)


def ping_item(seq: int, target: str) -> tuple[str, bytes]:
    """``kind_and_bytes(Ping(seq, target))``, without building the ``Ping``."""
    return "ping", _PING_HEAD + wire.dumps(seq) + wire.dumps(target)


_ALIVE_TAG = SWIM.tag_of(Alive)


_PUSH_PULL_TAG = SWIM.tag_of(PushPull)
_PUSH_PULL_HEAD = {
    (join, reply): wire.cbor_array_header(5) + wire.dumps([_PUSH_PULL_TAG, join, reply])[1:]
    for join in (False, True)
    for reply in (False, True)
}
"""``[tag, join, reply, ...`` of a push/pull's array, for the four flag pairs."""
_UP_CODE = _STATUS_CODES[Status.UP]


def _is_stale_alive(raw: Any, stale_alive: StaleAlive, named: set[object]) -> bool:
    """``raw`` is an Alive that would decode, of a member not ``named`` before in the
    packet, and that ``stale_alive`` says changes nothing."""
    if type(raw) is not list or len(raw) not in (4, 5) or type(raw[0]) is not int:
        return False
    if raw[0] != _ALIVE_TAG or _named_again(raw[1], named):
        return False
    return _stale_fields(raw[1], raw[2], raw[3], raw[4] if len(raw) == 5 else b"", stale_alive)


def _named_again(name: Any, named: set[object]) -> bool:
    """Whether the packet named ``name`` before (recording it if not)."""
    if type(name) is not str:
        return False
    if name in named:
        return True
    named.add(name)
    return False


def _without_stale_rows(raw: Any, stale_alive: StaleAlive, named: set[object]) -> Any:
    """A push/pull's ``raw`` without the UP entries that would decode and that
    ``stale_alive`` says change nothing (the merge applies an UP entry as an Alive):
    in a formed cluster that is nearly all of them."""
    if (
        type(raw) is not list
        or len(raw) < 4
        or type(raw[0]) is not int
        or raw[0] != _PUSH_PULL_TAG
        or type(raw[3]) is not list
    ):
        return raw
    rows = [
        row
        for row in raw[3]
        if not (
            type(row) is list
            and len(row) in (4, 5)
            and not _named_again(row[0], named)
            and type(row[3]) is int
            and row[3] == _UP_CODE
            and _stale_fields(row[0], row[1], row[2], row[4] if len(row) == 5 else b"", stale_alive)
        )
    ]
    return [*raw[:3], rows, *raw[4:]]


def _stale_fields(
    name: Any, address: Any, incarnation: Any, meta: Any, stale_alive: StaleAlive
) -> bool:
    """The fields pass the checks an Alive's (and a push/pull entry's) validators make,
    and ``stale_alive`` says an Alive with them changes nothing."""
    return (
        type(name) is str
        and 0 < len(name.encode()) <= MAX_NAME
        and name.isprintable()
        and type(address) is list
        and len(address) == 2
        and valid_host(address[0])
        and type(address[1]) is int
        and 0 < address[1] <= 65535
        and type(incarnation) is int
        and 0 <= incarnation <= MAX_INCARNATION
        and type(meta) is bytes
        and len(meta) <= MAX_META
        and stale_alive(name, address[0], address[1], incarnation)
    )


class LabelMismatch(wire.WireError):
    """The packet belongs to another cluster (its label differs)."""

    reason = "label"


class VersionMismatch(wire.WireError):
    """The packet is of another protocol version (a node on other code)."""

    reason = "version"


def encode_message(message: Any) -> bytes:
    """A message's CBOR bytes.  A push/pull reuses each entry's bytes: a full state is
    mostly entries unchanged since the last one, and encoding them is most of its cost."""
    encode = _ENCODERS.get(type(message))
    return SWIM.encode(message) if encode is None else encode(message)


def _encode_push_pull(message: PushPull) -> bytes:
    """``SWIM.encode(message)``, byte for byte (a test holds the two together)."""
    return b"".join(
        (
            _PUSH_PULL_HEAD[message.join, message.reply],
            wire.cbor_array_header(len(message.members)),
            *map(_entry_bytes, message.members),
            wire.dumps(message.user_state),
        )
    )


_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    **{
        cls: SWIM.encoder(cls) or SWIM.encode
        for cls in (Ping, Ack, PingReq, Nack, Alive, Suspect, Dead, Left, UserMessage)
    },
    PushPull: _encode_push_pull,
}
"""Each message type's encoder (the registry's compiled ones; a push/pull's own), found by
one look-up per message."""
_CODECS = {cls: (cls.__name__.lower(), encode) for cls, encode in _ENCODERS.items()}
"""Each message type's kind (as :func:`message_kind` names it) and encoder."""


@functools.lru_cache(maxsize=1 << 17)
def _entry_bytes(state: MemberState) -> bytes:
    return wire.dumps([state.name, state.address, state.incarnation, state.status_code, state.meta])


def kind_and_bytes(message: Any) -> tuple[str, bytes]:
    """:func:`message_kind` and :func:`encode_message` of ``message`` in one look-up (what
    a sender counts and sends, per message)."""
    codec = _CODECS.get(type(message))
    if codec is None:
        return message_kind(message), encode_message(message)
    kind, encode = codec
    return kind, encode(message)


def message_kind(message: Any) -> str:
    """Short lowercase name of a message's type, used in counters and metrics."""
    return type(message).__name__.lower()
