"""The actor peer protocol, sans-IO: typed frames, the value codec, and one peer session.

Every frame is one CBOR array whose first item is its :class:`Kind`; :func:`parse` checks
a frame's whole layout against its kind's row in a table (a malformed frame means a
broken or hostile peer: the connection is dropped), and builds the frame's class:

    [HELLO, node, incarnation, window, version, oldest, ...]
                                             first frame on a connection, each way: the
                                             dialler's first, the accepter's in answer
                                             (versions: see below)
    [TELL, path, uid, sender, value, ...]    one or more values (a burst of tells from
                                             one sender to one actor is one frame);
                                             sender: [node, path, uid] or None
    [ASK, corr, path, uid, sender, value]        (+ traceparent when tracing, tracing.py)
    [REPLY, corr, value]
    [ERROR, corr, kind, type_name, message, traceback]
    [CREDIT, n]                              n more requests may be sent (flow control)
    [WATCH, path, uid] / [UNWATCH, path, uid]
    [TERMINATED, path, uid, reason]          the watched actor stopped
    [STREAM, sid, path, uid, sender, value, window]   a request answered by a stream
    [ITEM, sid, value, ...]                  one or more items of the stream ``sid``
                                             (a burst of them is one frame, as for TELL)
    [MORE, sid, n]                           n more items of ``sid`` may be sent
    [END, sid, error]                        ``sid`` is over; error: None or [kind, type,
                                             message, traceback] as in ERROR
    [CANCEL, sid]                            the consumer stopped reading ``sid``
    [RUN, path, uid, sender, tag, width, field, ...]   tells of one message class to one
                                             actor, each message its ``width`` fields
                                             laid end to end (no value around them)

A value is ``[0, plain CBOR]``, ``[1, [tag, field, ...]]`` for a ``@message`` or
``[2, node, path, uid]`` for a bare :class:`ActorRef`; it is decoded separately
(:func:`decode_value`), so a message the receiver cannot decode fails only that message.
A RUN carries ``@message`` instances of a class whose fields are all scalars (at most
:data:`RUN_WIDTH` of them) without their values' two arrays, the most common remote tell:
the receiver builds each straight from its fields; each still counts as one request, and
one that does not build fails alone, as in a TELL (:func:`run_values`).

:class:`PeerSession` is one connection's protocol state, fed bytes and handing back
events and bytes, as h11's ``Connection`` is; it does no I/O, owns no task and reads no
clock.  It keeps the handshake (HELLO each way; an inbound peer is unnamed until its
HELLO), credit (a node may have at most ``window`` requests the peer has not yet put
into a mailbox; the peer returns credit in one CREDIT frame each time half the window has
been delivered, so a request costs no frame of its own), the correlation of asks with
their replies, and the limit on what a peer may have undelivered here.

Versions: a node speaks every protocol version from :data:`OLDEST_VERSION` to
:data:`VERSION` and its HELLO says so; a connection speaks the lower of the two ends'
newest versions, and a pair with no version in common refuses the connection
(``rejected_version``).  A HELLO of four items, without versions, is version 1 (the code
before versions): a node answers one in kind and sends no RUN frame on that connection;
the dialler that gets one in answer to its versioned HELLO knows the peer refuses it and
dials again unversioned (``rejected_unversioned``), sending again what it had sent after
its HELLO, which that peer never read (:meth:`PeerSession.redial_unversioned`).  Items
past ``oldest`` are ignored, so a later version may add some.

Streams: a STREAM is a request (it takes connection credit and goes into the actor's
mailbox like an ASK); its items then flow on their own credit, ``window`` items granted
by the consumer and topped up by MORE as it reads, so a slow consumer stalls only its own
stream.  The session checks each stream's rules (at most :data:`MAX_STREAMS` produced
for one peer, no item beyond the credit granted); a frame for a stream that is already
over (a race with CANCEL or END) is dropped and counted, as :class:`Dropped`.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

import attrs

from .. import wire
from ..errors import RemoteProtocolError
from ..membership.messages import MAX_NAME
from .errors import (
    ActorError,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    NodeDown,
    Unsendable,
)
from .message import MESSAGES, decode_ref, encode_ref
from .ref import MAX_STREAM_WINDOW, ActorRef
from .tracing import MAX_TRACEPARENT

__all__ = [
    "MAX_HELLO_FRAME",
    "MAX_STREAMS",
    "MAX_STREAM_WINDOW",
    "MAX_WINDOW",
    "OLDEST_VERSION",
    "RUN_VERSION",
    "RUN_WIDTH",
    "TELL_BYTES",
    "TELL_VALUES",
    "UNVERSIONED",
    "VERSION",
    "Answered",
    "Ask",
    "Credit",
    "Dropped",
    "ErrorReply",
    "Frame",
    "Hello",
    "Kind",
    "PeerSession",
    "ProtocolViolation",
    "Reply",
    "StreamCancel",
    "StreamEnd",
    "StreamItem",
    "StreamMore",
    "StreamOpen",
    "Tell",
    "TellRun",
    "Terminated",
    "Unwatch",
    "Watch",
    "address",
    "ask_frame",
    "decode_error",
    "decode_run",
    "decode_stream_end",
    "decode_value",
    "decode_values",
    "encode",
    "encode_error",
    "encode_stream",
    "encode_value",
    "flat_encoder",
    "parse",
    "reply_frame",
    "run_address",
    "run_values",
    "stream_error",
    "unsendable",
    "value_bytes",
    "wire_address",
    "wire_ref",
]

T = TypeVar("T")

MAX_WINDOW = 65536
"""The largest window a peer may announce (a bigger one is taken as this)."""

MAX_HELLO_FRAME = 1024
"""Bytes the first frame of a connection, its HELLO, may take (one carries a name of at
most 128 bytes and two integers): a stranger cannot make a node buffer a big frame
before saying who it is."""


VERSION = 2
"""The newest actor protocol version this node speaks (2: HELLO carries versions, RUN)."""

OLDEST_VERSION = 1
"""The oldest version it still speaks (1: the unversioned protocol, without RUN)."""

UNVERSIONED = 1
"""What a HELLO without versions speaks: the protocol before versions (RUN frames, added
late in it, are not sent to such a peer, since most of its releases cannot read them)."""

RUN_VERSION = 2
"""The first version whose peers are sent RUN frames."""


MAX_STREAMS = 1024
"""Streams one peer may have this node produce at once; more are ended at once (full)."""

TELL_VALUES = 251
"""Values one TELL frame carries at most (its one-byte array count: 4 fields + values);
an ITEM frame carries at most 253 items (2 fields + items)."""

RUN_WIDTH = 16
"""The most fields a message class may have to travel in RUN frames (more go in TELLs)."""

TELL_BYTES = 1 << 14
"""A value joins a TELL frame only while the frame stays within this many bytes (and
within the node's ``max_frame``): a burst never makes a frame longer than one tell would."""


class Kind(enum.IntEnum):
    """A frame's first item."""

    HELLO = 0
    TELL = 1
    ASK = 2
    REPLY = 3
    ERROR = 4
    CREDIT = 5
    WATCH = 6
    UNWATCH = 7
    TERMINATED = 8
    STREAM = 9
    ITEM = 10
    MORE = 11
    END = 12
    CANCEL = 13
    RUN = 14


# -- the frames -------------------------------------------------------------------------

# Frames are slotted attrs classes, treated as values; not frozen, because a frozen class
# costs twice as much to build and every received frame is built once.

Sender = list[Any] | None
"""A sender on the wire: ``[node, path, uid]``, or None."""


@attrs.define(weakref_slot=False)
class Hello:
    """A connection's first frame: who is speaking (node, incarnation), how many
    requests it lets the peer have in flight (``window``) and the protocol versions it
    speaks (``oldest`` to ``version``; both :data:`UNVERSIONED`: four items on the wire)."""

    node: str
    incarnation: int
    window: int
    version: int = UNVERSIONED
    oldest: int = UNVERSIONED


@attrs.define(weakref_slot=False)
class Tell:
    """Messages for one actor, with no reply; a burst of tells is one frame."""

    path: str
    uid: int
    sender: Sender
    values: list[Any]
    """One or more messages, in the order they were told."""


@attrs.define(weakref_slot=False)
class TellRun:
    """Messages of one class for one actor, with no reply: a run of tells, each message
    ``width`` of :attr:`fields` in a row."""

    path: str
    uid: int
    sender: Sender
    tag: str | int
    """The class's ``@message`` tag."""
    width: int
    fields: list[Any]
    """The messages' fields, in the order they were told (a multiple of ``width``)."""


@attrs.define(weakref_slot=False)
class Ask:
    """A request for one actor; the answer comes back as a REPLY or ERROR with ``corr``."""

    corr: int
    path: str
    uid: int
    sender: Sender
    value: Any
    trace: str | None = None
    """The asker's W3C traceparent when it traces (see :mod:`.tracing`); a 7th field."""


@attrs.define(weakref_slot=False)
class Reply:
    """The value answering the ask ``corr``."""

    corr: int
    value: Any


@attrs.define(weakref_slot=False)
class ErrorReply:
    """The ask ``corr`` failed: its error's kind, type, message and (in debug mode) the
    remote traceback."""

    corr: int
    kind: str
    type_name: str
    message: str
    traceback: str


@attrs.define(weakref_slot=False)
class Credit:
    """The peer may have ``n`` more requests in flight (flow control)."""

    n: int


@attrs.define(weakref_slot=False)
class Watch:
    """Tell this node when the actor ``path``/``uid`` here terminates."""

    path: str
    uid: int


@attrs.define(weakref_slot=False)
class Unwatch:
    """Forget a WATCH of ``path``/``uid``."""

    path: str
    uid: int


@attrs.define(weakref_slot=False)
class Terminated:
    """A watched actor terminated (``reason`` None for a normal stop)."""

    path: str
    uid: int
    reason: str | None


@attrs.define(weakref_slot=False)
class StreamOpen:
    """A request whose reply is a stream ``sid``; the reader grants ``window`` items."""

    sid: int
    path: str
    uid: int
    sender: Sender
    value: Any
    window: int


@attrs.define(weakref_slot=False)
class StreamItem:
    """Items of the stream ``sid``; a burst of items is one frame."""

    sid: int
    values: list[Any]
    """One or more items, in the order they were produced."""


@attrs.define(weakref_slot=False)
class StreamMore:
    """The reader grants ``n`` more items of the stream ``sid``."""

    sid: int
    n: int


@attrs.define(weakref_slot=False)
class StreamEnd:
    """The stream ``sid`` ended, normally or with an error."""

    sid: int
    error: list[str] | None
    """None when the stream ended normally, else an ERROR frame's last four fields."""


@attrs.define(weakref_slot=False)
class StreamCancel:
    """The reader gave up the stream ``sid``: its producer stops."""

    sid: int


Frame = (
    Hello
    | Tell
    | TellRun
    | Ask
    | Reply
    | ErrorReply
    | Credit
    | Watch
    | Unwatch
    | Terminated
    | StreamOpen
    | StreamItem
    | StreamMore
    | StreamEnd
    | StreamCancel
)


def _uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _node(value: Any) -> bool:
    """A node name as membership has them: 1..128 bytes, printable (names reach logs)."""
    return type(value) is str and 0 < len(value.encode()) <= MAX_NAME and value.isprintable()


def _ref(value: Any) -> bool:
    return value is None or (
        type(value) is list
        and len(value) == 3
        and _node(value[0])
        and type(value[1]) is str
        and _uint(value[2])
    )


def wire_ref(node: Any, path: Any, uid: Any) -> bool:
    """Whether ``(node, path, uid)`` is a ref as frames carry it: a ref made from anything
    else (a negative or 64-bit uid, an unprintable node) makes a peer drop the frame's
    connection as malformed, so refs from outside the actor protocol are checked first."""
    return _ref([node, path, uid])


def _address(f: list[Any], at: int) -> bool:
    return type(f[at]) is str and _uint(f[at + 1])


def _ask_layout(f: list[Any]) -> bool:
    """An ASK's layout; with REPLY's, the frames of every ask, so checked without helper
    calls (what :func:`_uint` and :func:`_address` check, written out)."""
    return (
        (len(f) == 6 or (len(f) == 7 and type(f[6]) is str and len(f[6]) <= MAX_TRACEPARENT))
        and type(f[1]) is int
        and 0 <= f[1] < 2**63
        and type(f[2]) is str
        and type(f[3]) is int
        and 0 <= f[3] < 2**63
        and (f[4] is None or _ref(f[4]))
    )


def _grant(value: Any) -> bool:
    return type(value) is int and 0 < value <= MAX_STREAM_WINDOW


def _error(value: Any) -> bool:
    return value is None or (
        type(value) is list and len(value) == 4 and all(type(v) is str for v in value)
    )


def _hello(
    node: str,
    incarnation: int,
    window: int,
    version: int = UNVERSIONED,
    oldest: int = UNVERSIONED,
    *later: Any,
) -> Hello:
    """A HELLO; items a later version adds (``later``) are ignored."""
    return Hello(node, incarnation, window, version, oldest)


def _hello_layout(f: list[Any]) -> bool:
    return (
        (len(f) == 4 or (len(f) >= 6 and _uint(f[4]) and _uint(f[5]) and 0 < f[5] <= f[4]))
        and _node(f[1])
        and _uint(f[2])
        and _uint(f[3])
    )


def _tell(path: str, uid: int, sender: Sender, *values: Any) -> Tell:
    return Tell(path, uid, sender, list(values))


def _items(sid: int, *values: Any) -> StreamItem:
    return StreamItem(sid, list(values))


def _run(path: str, uid: int, sender: Sender, tag: str | int, width: int, *fields: Any) -> TellRun:
    return TellRun(path, uid, sender, tag, width, list(fields))


def _run_layout(f: list[Any]) -> bool:
    return (
        len(f) >= 7
        and _address(f, 1)
        and _ref(f[3])
        and (type(f[4]) is str or type(f[4]) is int)
        and type(f[5]) is int
        and 0 < f[5] <= RUN_WIDTH
        and (len(f) - 6) % f[5] == 0
    )


_LAYOUTS: dict[int, tuple[Callable[..., Frame], Callable[[list[Any]], bool]]] = {
    Kind.HELLO: (_hello, _hello_layout),
    Kind.TELL: (_tell, lambda f: len(f) >= 5 and _address(f, 1) and _ref(f[3])),
    Kind.ASK: (Ask, _ask_layout),
    Kind.REPLY: (Reply, lambda f: len(f) == 3 and type(f[1]) is int and 0 <= f[1] < 2**63),
    Kind.ERROR: (
        ErrorReply,
        lambda f: len(f) == 6 and _uint(f[1]) and all(type(v) is str for v in f[2:]),
    ),
    Kind.CREDIT: (Credit, lambda f: len(f) == 2 and _uint(f[1])),
    Kind.WATCH: (Watch, lambda f: len(f) == 3 and _address(f, 1)),
    Kind.UNWATCH: (Unwatch, lambda f: len(f) == 3 and _address(f, 1)),
    Kind.TERMINATED: (
        Terminated,
        lambda f: len(f) == 4 and _address(f, 1) and (f[3] is None or type(f[3]) is str),
    ),
    Kind.STREAM: (
        StreamOpen,
        lambda f: len(f) == 7 and _uint(f[1]) and _address(f, 2) and _ref(f[4]) and _grant(f[6]),
    ),
    Kind.ITEM: (_items, lambda f: len(f) >= 3 and _uint(f[1])),
    Kind.MORE: (StreamMore, lambda f: len(f) == 3 and _uint(f[1]) and _grant(f[2])),
    Kind.END: (StreamEnd, lambda f: len(f) == 3 and _uint(f[1]) and _error(f[2])),
    Kind.CANCEL: (StreamCancel, lambda f: len(f) == 2 and _uint(f[1])),
    Kind.RUN: (_run, _run_layout),
}
"""Each kind's builder (its class, but for TELL's values) and layout check (see the
module docstring)."""

_KINDS: dict[type, Kind] = {
    Hello: Kind.HELLO,
    Tell: Kind.TELL,
    Ask: Kind.ASK,
    Reply: Kind.REPLY,
    ErrorReply: Kind.ERROR,
    Credit: Kind.CREDIT,
    Watch: Kind.WATCH,
    Unwatch: Kind.UNWATCH,
    Terminated: Kind.TERMINATED,
    StreamOpen: Kind.STREAM,
    StreamItem: Kind.ITEM,
    StreamMore: Kind.MORE,
    StreamEnd: Kind.END,
    StreamCancel: Kind.CANCEL,
    TellRun: Kind.RUN,
}


_VALUE_FRAMES: Final = frozenset({Tell, TellRun, Ask, Reply, StreamOpen, StreamItem})
"""The frames that carry values (a value that does not decode fails alone)."""


def parse(frame: bytes, loads: Callable[[bytes], Any] = wire.loads) -> Frame:
    """One frame, checked against its kind's layout; :class:`wire.WireError` if not."""
    items = loads(frame)
    if type(items) is list and items and type(items[0]) is int:
        layout = _LAYOUTS.get(items[0])
        if layout is not None and layout[1](items):
            return layout[0](*items[1:])
    raise wire.WireError("malformed actor frame")


def encode(frame: Frame) -> bytes:
    """A frame as length-prefixed bytes for the stream."""
    items = [_KINDS[type(frame)], *attrs.astuple(frame, recurse=False)]
    if isinstance(frame, Ask) and frame.trace is None:
        items.pop()  # an untraced ASK has six fields
    elif isinstance(frame, Tell):
        items[4:] = frame.values
    elif isinstance(frame, StreamItem):
        items[2:] = frame.values
    elif isinstance(frame, TellRun):
        items[6:] = frame.fields
    elif isinstance(frame, Hello) and frame.version == UNVERSIONED:
        del items[4:]  # as the code before versions sends and reads it
    return wire.encode_frame(wire.dumps(items))


_LENGTH = struct.Struct(">I")


# The hot frames are built from bytes: their heads made once, a request's address
# (path, uid, sender) cached by its caller, the value encoded with one ``dumps``.
_TELL_HEAD = b"\x98\x04" + wire.cbor_uint(Kind.TELL)
"""A TELL's array head before its values, in its two-byte form, so the count grows in
place as a burst's values join the frame (CBOR allows a longer head than needed)."""
_ITEM_HEAD = b"\x98\x02" + wire.cbor_uint(Kind.ITEM)
"""An ITEM's, likewise: a burst of items of one stream is one frame."""
_RUN_HEAD = b"\x98\x06" + wire.cbor_uint(Kind.RUN)
"""A RUN's, likewise (its address: path, uid, sender, tag, width)."""
_BURST_COUNT = 255
"""The most items a burst frame's one-byte array count holds (kind, address, values)."""
_ITEMS_PER_FRAME = _BURST_COUNT - _ITEM_HEAD[1]
"""The most items one ITEM frame holds (its one-byte array count less kind and sid)."""
_NO_LENGTH = bytes(4)
_ASK_HEAD = wire.cbor_array_header(6) + wire.cbor_uint(Kind.ASK)
_UINT_SIZES = {**dict.fromkeys(range(24), 0), 24: 1, 25: 2, 26: 4, 27: 8}
"""How many bytes follow a CBOR unsigned integer's first byte, by that byte."""
_NOT_LONE: Final = object()
_TRACED_ASK_HEAD = wire.cbor_array_header(7) + wire.cbor_uint(Kind.ASK)
_REPLY_HEAD = wire.cbor_array_header(3) + wire.cbor_uint(Kind.REPLY)


def address(path: str, uid: int, sender: ActorRef | None) -> bytes:
    """The CBOR of a request's ``path, uid, sender`` (callers cache it per target and
    sender, since a sender usually talks to one target many times)."""
    return wire_address(path, uid, None if sender is None else encode_ref(sender))


def wire_address(path: str, uid: int, sender: Sender) -> bytes:
    """:func:`address` with the sender as the wire has it."""
    return b"".join(map(wire.dumps, (path, uid, sender)))


def run_address(address: bytes, tag: str | int, width: int) -> bytes:
    """The CBOR of a RUN's ``path, uid, sender, tag, width`` from the :func:`address` of
    its actor and sender (callers cache it per target, sender and class)."""
    return address + wire.dumps(tag) + wire.cbor_uint(width)


def flat_encoder(cls: type) -> tuple[str | int, int, Callable[[Any], bytes]] | None:
    """How tells of ``cls`` go in a RUN: its tag, its width and what encodes an
    instance's fields; None for a class that cannot (its tells go in TELLs)."""
    flat = MESSAGES.flat_encoder(cls, RUN_WIDTH)
    return None if flat is None else (MESSAGES.tag_of(cls), *flat)


def encode_stream(
    sid: int, path: str, uid: int, sender: Sender, value: list[Any], window: int
) -> bytes:
    """A STREAM frame (a request answered by a stream) for an already encoded value."""
    return wire.encode_frame(wire.dumps([Kind.STREAM, sid, path, uid, sender, value, window]))


def ask_frame(corr: int, address: bytes, value: bytes, trace: str | None = None) -> bytes:
    """An ASK frame to a cached :func:`address` of a message's :func:`value_bytes`
    (``trace``: the asker's traceparent)."""
    if trace is None:
        body = _ASK_HEAD + wire.cbor_uint(corr) + address + value
    else:
        body = _TRACED_ASK_HEAD + wire.cbor_uint(corr) + address + value + wire.dumps(trace)
    return _LENGTH.pack(len(body)) + body


def reply_frame(corr: int, value: Any) -> bytes:
    """The REPLY frame answering ask ``corr`` with ``value``."""
    body = _REPLY_HEAD + wire.cbor_uint(corr) + value_bytes(value)
    return _LENGTH.pack(len(body)) + body


# -- values -----------------------------------------------------------------------------

_PLAIN, _MESSAGE, _REF = range(3)


def encode_value(value: Any) -> list[Any]:
    """A message or reply as CBOR data; :class:`Unsendable` if it cannot cross the wire."""
    if isinstance(value, ActorRef):
        return [_REF, *encode_ref(value)]
    try:
        if MESSAGES.is_registered(type(value)):
            return [_MESSAGE, MESSAGES.to_data(value)]
        return [_PLAIN, wire.check_plain(value)]
    except wire.WireError as exc:
        raise unsendable(value, exc) from None


def unsendable(value: Any, error: wire.WireError) -> Unsendable:
    """The error for ``value``, which the wire refuses (``error`` says why)."""
    if MESSAGES.is_registered(type(value)):
        return Unsendable(f"{type(value).__qualname__} cannot go to another node: {error}")
    return Unsendable(
        f"{type(value).__qualname__} cannot go to another node: use plain data or a "
        f"@message class ({error})"
    )


_MESSAGE_HEAD = wire.cbor_array_header(2) + wire.cbor_uint(_MESSAGE)


_VALUE_ENCODERS = MESSAGES.encoders(_MESSAGE_HEAD)
_BUILDERS = MESSAGES.builders
"""The messages' builders by tag (the registry's own table, filled as tags are met)."""


_PLAIN_HEAD = wire.cbor_array_header(2) + wire.cbor_uint(_PLAIN)
_PLAIN_SCALARS: Final = frozenset({str, bytes, float, bool, type(None)})
"""The plain types :func:`wire.check_plain` takes as they are (an int, only within 64 bits)."""


def value_bytes(value: Any) -> bytes:
    """``dumps(encode_value(value))``, byte for byte; a message's without the lists, by
    its class's encoder with the value's head compiled in (one lookup, one call); a plain
    scalar's with its head made once (no list, no check to build it)."""
    cls = type(value)
    encode = _VALUE_ENCODERS.get(cls)
    if encode is None:
        if cls in _PLAIN_SCALARS or (cls is int and -(2**64) <= value < 2**64):
            return _PLAIN_HEAD + wire.dumps(value)
        encode = MESSAGES.encoder(cls, _MESSAGE_HEAD)
        if encode is None:
            return wire.dumps(encode_value(value))
    try:
        return encode(value)
    except wire.WireError as exc:  # a field the wire refuses (MESSAGES checks them)
        raise unsendable(value, exc) from None


def decode_value(data: Any) -> Any:
    """The inverse of :func:`encode_value` (refs bind through the running system);
    :class:`wire.WireError` if it does not decode."""
    if type(data) is list:
        if len(data) == 2:
            kind, item = data
            if kind == _MESSAGE:  # the usual case first
                if type(item) is list and item and type(item[0]) is str:
                    build = _BUILDERS.get(item[0])  # (a tag met before)
                    if build is not None:
                        return build(item)
                return MESSAGES.from_data(item)
            if kind == _PLAIN:
                return wire.check_plain(item)
        elif len(data) == 4 and data[0] == _REF:
            return decode_ref(data[1:])
    raise wire.WireError("malformed actor value")


def decode_values(values: list[Any]) -> list[Any]:
    """A burst's values decoded in order, up to the first that does not decode (the
    caller takes that one and those after it one by one, through :func:`decode_value`):
    a message's class is looked up once per burst, not per value."""
    messages: list[Any] = []
    builders = MESSAGES.builders
    for value in values:
        if type(value) is list and len(value) == 2 and value[0] == _MESSAGE:
            data = value[1]
            tag = data[0] if type(data) is list and data else None
            build = builders.get(tag) if type(tag) is str else None
            if build is not None:
                try:
                    messages.append(build(data))
                except wire.WireError:
                    break
                continue
        try:
            messages.append(decode_value(value))
        except wire.WireError:
            break
    return messages


def decode_run(frame: TellRun) -> list[Any]:
    """A RUN's messages, built straight from their fields up to the first that does not
    build (the caller takes that one and those after it from :func:`run_values`, one by
    one through :func:`decode_value`, which says why)."""
    build = MESSAGES.flat_builder(frame.tag, frame.width)
    return [] if build is None else build(frame.fields)


def run_values(frame: TellRun) -> list[Any]:
    """A RUN's messages as the values a TELL would carry (``[1, [tag, field, ...]]``)."""
    tag, width, fields = frame.tag, frame.width, frame.fields
    return [[_MESSAGE, [tag, *fields[at : at + width]]] for at in range(0, len(fields), width)]


_ERROR_KINDS: dict[str, type[ActorError]] = {
    "failed": ActorFailed,
    "stopped": ActorStopped,
    "timeout": AskTimeout,
    "full": MailboxFull,
    "down": NodeDown,
}


def encode_error(corr: int, error: BaseException) -> ErrorReply:
    """The ERROR frame for an ask that failed on this node."""
    if isinstance(error, ActorFailed):
        return ErrorReply(corr, "failed", error.type_name, error.message, error.traceback)
    kind = next((k for k, t in _ERROR_KINDS.items() if isinstance(error, t)), None)
    if kind is None:  # not an actor error: report it as the recipient failing
        failed = ActorFailed.from_exception(error)
        return ErrorReply(corr, "failed", failed.type_name, failed.message, failed.traceback)
    return ErrorReply(corr, kind, type(error).__qualname__, str(error), "")


def stream_error(error: BaseException | None) -> list[str] | None:
    """An END frame's error field for how a stream ended."""
    if error is None:
        return None
    frame = encode_error(0, error)
    return [frame.kind, frame.type_name, frame.message, frame.traceback]


def decode_stream_end(frame: StreamEnd) -> ActorError | None:
    """The typed exception an END frame carries (None: the stream is complete)."""
    return None if frame.error is None else decode_error(ErrorReply(frame.sid, *frame.error))


def decode_error(frame: ErrorReply) -> ActorError:
    """The typed exception an ERROR frame stands for."""
    cls = _ERROR_KINDS.get(frame.kind)
    if cls is None or cls is ActorFailed:
        return ActorFailed(frame.type_name, frame.message, frame.traceback)
    return cls(frame.message)


# -- the session ------------------------------------------------------------------------


class ProtocolViolation(RemoteProtocolError):
    """The peer broke the protocol; the connection must be dropped.

    ``counter`` names what it did: ``"rejected_malformed"`` or ``"rejected_oversized"``.
    """

    def __init__(self, counter: str, detail: str) -> None:
        super().__init__(detail)
        self.counter = counter


@attrs.define(weakref_slot=False)
class Answered(Generic[T]):
    """A REPLY or ERROR for a pending ask: ``token`` is what :meth:`PeerSession.expect`
    was given for its correlation id."""

    token: T
    frame: Reply | ErrorReply


@attrs.define(weakref_slot=False)
class Dropped:
    """A frame dropped by the session, to be counted under ``counter`` (a stream frame
    that came after its stream was over, a stream refused as one too many, or a reply
    to an ask nobody waits for)."""

    counter: str


Event = (
    Hello
    | Tell
    | TellRun
    | Ask
    | Answered[Any]
    | Credit
    | Watch
    | Unwatch
    | Terminated
    | StreamOpen
    | StreamItem
    | StreamMore
    | StreamEnd
    | StreamCancel
    | Dropped
)


class PeerSession(Generic[T]):
    """The protocol state of one connection to one peer node (see the module docstring).

    Feed it :meth:`receive_data` and take :meth:`next_event` until None; send what
    accumulates in :attr:`outgoing`.  ``T`` is what the caller keeps per pending ask.
    """

    def __init__(
        self,
        name: str,
        incarnation: int,
        window: int,
        max_frame: int,
        peer: str | None = None,
        now: float = 0.0,
        versioned: bool = True,
    ) -> None:
        self.window = window
        self.peer = peer
        """The peer's name (None for an inbound connection until its HELLO arrives)."""
        self.peer_version: int | None = None
        """The newest version the peer's HELLO announced (None until it arrives)."""
        self.runs = False
        """Whether tells may go in RUN frames: the peer's HELLO said it speaks
        :data:`RUN_VERSION` or later (before it, a dialled peer may be one from before
        versions, which gets again what it was sent: :meth:`redial_unversioned`)."""
        self.peer_window = window
        """The peer's announced window: how much it may have undelivered here."""
        self.credit = window
        """Requests this side may still send before the peer returns credit."""
        self.owed = 0
        """Requests delivered here whose credit the peer has not been given back yet."""
        self.undelivered = 0
        """Requests received and not yet :meth:`delivered`."""
        self.pending: dict[int, T] = {}
        """Asks sent on this connection awaiting their reply, by correlation id."""
        self.producing: dict[int, bytes] = {}
        """Streams the peer opened here that are not over yet (with their ids' CBOR)."""
        self.consuming: dict[int, int] = {}
        """Streams this side opened, with how many items the peer may still send."""
        self._out = bytearray()
        """The frames queued before the burst (:attr:`outgoing` adds the burst to them)."""
        self._burst = bytearray()
        """The burst frame being grown (TELL, RUN or ITEM; empty: none), its array count
        and length written only when it joins :attr:`outgoing`."""
        self._burst_count = 0
        self._burst_head = b""
        self._burst_address = b""
        self._burst_bytes = min(TELL_BYTES, max_frame)
        self.closed = False
        self.last_active = now
        self._decoder = wire.FrameDecoder(max_frame, first_frame=MAX_HELLO_FRAME)
        self._loads = wire.Loader().loads
        self._marking_loads: Callable[[bytes], Any] | None = None
        self._frames: deque[bytes] = deque()
        self.partial_frame = 0
        """Bytes received of a frame not yet complete (the driver bounds how long it may
        take)."""
        self._hello_frame = Hello(name, incarnation, window, VERSION, OLDEST_VERSION)
        """This side's HELLO; the dialler's goes first, the accepter's in answer."""
        self._greeted_with: bool | None = None
        """Whether this side's HELLO carried versions (None: not sent yet)."""
        self._unanswered: bytearray | None = None
        """What a dialler sent from its versioned HELLO on, kept until the peer's HELLO
        (bounded by the HELLO's deadline): a peer from before versions reads none of it
        (:meth:`redial_unversioned`)."""
        if peer is not None:
            self._greet(versioned)
            if versioned:
                self._unanswered = bytearray()

    def _greet(self, versioned: bool) -> None:
        """Queue this side's HELLO, without versions for a peer that has none."""
        hello = self._hello_frame
        if not versioned:
            hello = Hello(hello.node, hello.incarnation, hello.window)
        self.outgoing += encode(hello)
        self._greeted_with = versioned

    # -- sending -------------------------------------------------------------------------

    @property
    def outgoing(self) -> bytearray:
        """Bytes to send, in order; the driver sends them and says so (:meth:`sent`).  The
        burst being grown joins them here, complete: a tell after this starts a new one."""
        if self._burst:
            self._queue_burst()
        return self._out

    @outgoing.setter
    def outgoing(self, data: bytearray) -> None:
        self._out = data

    def try_request(self, frame: bytes) -> bool:
        """Queue an ASK or STREAM if there is credit for it; False when there is none."""
        if self.credit > 0:
            self.credit -= 1
            self._append(frame)
            return True
        return False

    def try_tell(self, address: bytes, value: bytes, width: int = 0) -> bool:
        """Queue a tell of ``value`` (:func:`value_bytes`) to ``address`` (:func:`address`)
        if there is credit for it; False when there is none.  It joins the TELL frame that
        ends :attr:`outgoing` when that one goes to the same address and has room (a burst
        of tells is one frame), else starts a new one.  With a ``width``, ``value`` is a
        message's fields (:func:`flat_encoder`) and ``address`` a :func:`run_address`:
        consecutive tells of one class go in one RUN frame likewise."""
        if self.credit <= 0:
            return False
        self.credit -= 1
        if width:
            self._add_to_burst(_RUN_HEAD, address, value, width)
        else:
            self._add_to_burst(_TELL_HEAD, address, value, 1)
        return True

    def _append(self, frame: bytes) -> None:
        """Queue ``frame`` after what is queued (the burst being grown joins first): what
        ``self.outgoing += frame`` does, in one call instead of the property's two."""
        if self._burst:
            self._queue_burst()
        self._out += frame

    def _queue_burst(self) -> None:
        """The burst being grown joins :attr:`outgoing`, its count and length written."""
        burst = self._burst
        burst[5] = self._burst_count
        _LENGTH.pack_into(burst, 0, len(burst) - 4)
        self._out += burst
        burst.clear()

    def _add_to_burst(self, head: bytes, address: bytes, value: bytes, items: int) -> None:
        """Append ``value`` (``items`` array items) to the burst frame ``head + address +
        values`` if one is being grown with room; else start one (the one before joins
        :attr:`outgoing`)."""
        burst = self._burst
        count = self._burst_count + items
        if not (
            burst
            and head is self._burst_head
            and address == self._burst_address
            and count <= _BURST_COUNT
            and len(burst) + len(value) <= self._burst_bytes
        ):
            if burst:
                self._queue_burst()
            self._burst_head = head
            self._burst_address = address
            burst += _NO_LENGTH
            burst += head
            burst += address
            count = head[1] + items
        burst += value
        self._burst_count = count

    def sent(self, n: int) -> None:
        """The driver sent the first ``n`` bytes of :attr:`outgoing`."""
        if self._unanswered is not None:
            self._unanswered += self._out[:n]
        del self._out[:n]

    def take(self) -> bytearray:
        """All of :attr:`outgoing`, for the driver to send (it is empty after)."""
        data, self._out = self.outgoing, bytearray()
        if self._unanswered is not None:
            self._unanswered += data
        return data

    def expect(self, corr: int, token: T) -> None:
        """An ASK with ``corr`` is (about to be) sent: its reply will carry ``token``."""
        self.pending[corr] = token

    def forget(self, corr: int) -> None:
        """The asker stopped waiting; a reply that still comes is dropped."""
        self.pending.pop(corr, None)

    def reply(self, corr: int, value: Any) -> None:
        """Answer the peer's ask ``corr`` (an unsendable value becomes an error reply)."""
        if self.closed:
            return
        try:
            frame = reply_frame(corr, value)
        except Unsendable as exc:
            frame = encode(encode_error(corr, exc))
        self._append(frame)
        self.return_credit()

    def fail(self, corr: int, error: BaseException) -> None:
        """Answer the peer's ask ``corr`` with an error."""
        if not self.closed:
            self.outgoing += encode(encode_error(corr, error))
            self.return_credit()

    def send(self, frame: Watch | Unwatch | Terminated) -> None:
        """Queue a death-watch frame (not flow-controlled)."""
        self.outgoing += encode(frame)
        self.return_credit()

    # -- streams ---------------------------------------------------------------------------

    def open_stream(self, sid: int, window: int) -> None:
        """A STREAM with ``sid`` granting ``window`` items is (about to be) sent."""
        self.consuming[sid] = window

    def grant(self, sid: int, n: int) -> None:
        """The consumer read ``n`` items of ``sid``: the producer may send ``n`` more."""
        if sid in self.consuming and not self.closed:
            self.consuming[sid] += n
            self.outgoing += encode(StreamMore(sid, n))

    def cancel_stream(self, sid: int) -> None:
        """The consumer stops reading ``sid``: CANCEL it (items still coming are dropped)."""
        if self.consuming.pop(sid, None) is not None and not self.closed:
            self.outgoing += encode(StreamCancel(sid))

    def send_items(self, sid: int, values: list[bytes]) -> bool:
        """Queue items (:func:`value_bytes` each) of the stream ``sid`` this side produces,
        in order; False when the stream is over (cancelled, or the connection closed).
        They join the ITEM frame of ``sid`` that ends :attr:`outgoing` while it has room, a
        chunk at a time that fits a frame by count and bytes (a burst of items is one
        frame, as tells are)."""
        address = self.producing.get(sid)
        if address is None or self.closed:
            return False
        room = self._burst_bytes
        chunk: list[bytes] = []
        size = 0
        for value in values:
            if chunk and (size + len(value) > room or len(chunk) == _ITEMS_PER_FRAME):
                self._add_to_burst(_ITEM_HEAD, address, b"".join(chunk), len(chunk))
                chunk = []
                size = 0
            chunk.append(value)
            size += len(value)
        if chunk:
            self._add_to_burst(_ITEM_HEAD, address, b"".join(chunk), len(chunk))
        return True

    def end_stream(self, sid: int, error: BaseException | None) -> None:
        """End the stream ``sid`` this side produces (``error``: how it failed)."""
        if sid in self.producing and not self.closed:
            del self.producing[sid]
            self.outgoing += encode(StreamEnd(sid, stream_error(error)))

    def delivered(self, count: int = 1) -> None:
        """``count`` requests the peer sent are in a mailbox (or answered, or
        dead-lettered)."""
        self.undelivered -= count
        self.owed += count

    def return_credit(self) -> bool:
        """Give the peer its credit back lazily, once half its window is owed (queued
        with whatever goes out then: an ask is one frame, one write, each way).  The peer
        still has the other half to send meanwhile, so it never waits on this.  True
        when a CREDIT frame was queued."""
        if self.owed >= self.peer_window // 2 and self.owed:
            self.outgoing += encode(Credit(self.owed))
            self.owed = 0
            return True
        return False

    # -- receiving -----------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray, now: float) -> None:
        """Bytes from the peer (framing only; :meth:`next_event` checks the frames)."""
        self.last_active = now
        decoder = self._decoder
        self._frames.extend(decoder.feed(data))
        self.partial_frame = decoder.buffered

    # An ask in a row is one whole frame per read each way, whose head the reader can
    # tell in advance: the asker awaits the REPLY to its own ask, and the asked node's
    # next ASK most likely goes to the actor, from the sender, of the one before.  The two
    # methods below recognise such a read by its bytes and decode only its value (no
    # parse of the frame, no event queue); anything else, even a value that does not
    # load, is left to :meth:`receive_data` and :meth:`next_event`, which say why.

    def lone_reply(self, data: bytes | bytearray, corr: int, now: float) -> tuple[T, Any] | None:
        """The token and value of the ``Answered`` event :meth:`next_event` would make of
        ``data`` when it is exactly the whole REPLY to the pending ask ``corr``; None for
        anything else."""
        value = self._lone_value(data, 4, _REPLY_HEAD + wire.cbor_uint(corr))
        if value is _NOT_LONE or corr not in self.pending:
            return None
        self.last_active = now
        return self.pending.pop(corr), value

    def lone_ask(
        self, data: bytes | bytearray, address: bytes, now: float
    ) -> tuple[int, Any] | None:
        """The correlation id and value of ``data`` when it is exactly one whole untraced
        ASK to ``address`` (:func:`address`), counted as :meth:`next_event` counts it;
        None for anything else."""
        size = _UINT_SIZES.get(data[6]) if len(data) > 6 and data.startswith(_ASK_HEAD, 4) else None
        if size is None:
            return None
        at = 7 + size  # where the address starts, after the correlation id
        value = self._lone_value(data, at, address)
        corr = int.from_bytes(data[7:at]) if size else data[6]
        if value is _NOT_LONE or corr >= 2**63:
            return None
        self._admit(1)
        self.last_active = now
        return corr, value

    def _lone_value(self, data: bytes | bytearray, at: int, head: bytes) -> Any:
        """The value after ``head`` when ``data`` is exactly one whole frame with ``head``
        at ``at``, nothing is buffered before it and the peer has greeted;
        :data:`_NOT_LONE` if not."""
        size = len(data) - 4
        if (
            not data.startswith(head, at)
            or _LENGTH.unpack_from(data)[0] != size
            or size > self._decoder.max_frame
            or self._frames
            or self.partial_frame
            or self.peer_version is None
        ):
            return _NOT_LONE
        try:
            return self._loads(data[at + len(head) :])
        except wire.WireError:
            return _NOT_LONE

    def next_event(self) -> Event | None:
        """The next thing the peer said that the driver must act on; None when the
        bytes so far are used up.  :class:`ProtocolViolation` when the peer broke the
        protocol (after the events before it)."""
        while self._frames:
            raw = self._frames.popleft()
            try:
                frame = parse(raw, self._loads)
            except wire.WireError as exc:
                frame = self._with_tags_marked(raw, exc)
            if self.peer_version is None and not isinstance(frame, Hello):
                raise ProtocolViolation("rejected_malformed", "the first frame must be HELLO")
            event = self._RULES[type(frame)](self, frame)
            if event is not None:
                return event
        if self._decoder.error is not None:
            raise ProtocolViolation("rejected_oversized", self._decoder.error)
        return None

    def _with_tags_marked(self, raw: bytes, error: wire.WireError) -> Frame:
        """A frame refused for a tagged item (an integer past 64 bits, say) inside its
        values, read again with each tagged item marked (never resolved): those values
        then fail one by one, answered or counted as undecodable, and the connection
        lives on.  A tag anywhere else, or any other fault, breaks the protocol."""
        if self._marking_loads is None:
            self._marking_loads = wire.Loader(mark_tags=True).loads
        try:
            frame = parse(raw, self._marking_loads)
        except wire.WireError:
            raise ProtocolViolation("rejected_malformed", str(error)) from None
        if type(frame) not in _VALUE_FRAMES:
            raise ProtocolViolation("rejected_malformed", str(error))
        return frame

    def _hello(self, frame: Hello) -> Event:
        if self.peer_version is not None:
            raise ProtocolViolation("rejected_malformed", "a second HELLO")
        if self.peer is not None and self.peer != frame.node:
            raise ProtocolViolation(
                "rejected_malformed", f"HELLO from {frame.node!r} on a connection to {self.peer!r}"
            )
        versioned = frame.version != UNVERSIONED
        if self._greeted_with is None:  # the accepter answers in kind
            self._greet(versioned)
        elif self._greeted_with and not versioned:  # it refuses our versioned HELLO
            raise ProtocolViolation(
                "rejected_unversioned",
                f"{frame.node!r} speaks the actor protocol from before versions",
            )
        common = min(VERSION, frame.version)
        if common < max(OLDEST_VERSION, frame.oldest):
            raise ProtocolViolation(
                "rejected_version",
                f"{frame.node!r} speaks actor protocol versions {frame.oldest} to "
                f"{frame.version}, this node {OLDEST_VERSION} to {VERSION}",
            )
        self.peer_window = max(1, min(frame.window, MAX_WINDOW))
        self.peer = frame.node
        self.peer_version = frame.version
        self.runs = common >= RUN_VERSION
        self._unanswered = None
        return frame

    def redial_unversioned(self) -> None:
        """Start again on a new connection to a peer that refused this side's versioned
        HELLO (``rejected_unversioned``: code from before versions, which drops the
        connection at that HELLO and reads nothing after it): greet it without versions
        and queue again everything sent or queued after the HELLO (no RUN frame goes
        before the peer's HELLO, so that peer reads it all).  Asks stay pending and
        credit stays spent: nothing is lost or doubled."""
        assert self._unanswered is not None and self.peer_version is None
        after_hello = len(encode(self._hello_frame))
        queued = (self._unanswered + self.outgoing)[after_hello:]
        self._unanswered = None
        self._out = bytearray()
        self._decoder = wire.FrameDecoder(self._decoder.max_frame, first_frame=MAX_HELLO_FRAME)
        self._frames.clear()
        self.partial_frame = 0
        self._greet(False)
        self._out += queued

    def _request(self, frame: Tell | TellRun | Ask | StreamOpen) -> Event:
        if isinstance(frame, Tell):
            count = len(frame.values)
        elif isinstance(frame, TellRun):
            count = len(frame.fields) // frame.width
        else:
            count = 1
        self._admit(count)
        return frame

    def _admit(self, count: int) -> None:
        """``count`` requests arrived: within the window the peer was given, or the peer
        broke the protocol."""
        if self.undelivered + count > self.peer_window:
            raise ProtocolViolation(
                "rejected_malformed", "the peer sent more requests than its window allows"
            )
        self.undelivered += count

    def _answer(self, frame: Reply | ErrorReply) -> Event:
        token = self.pending.pop(frame.corr, None)
        return Dropped("replies_stray") if token is None else Answered(token, frame)

    def _credit(self, frame: Credit) -> Event:
        self.credit = min(self.credit + frame.n, self.window)
        return frame

    def _watch(self, frame: Watch | Unwatch | Terminated) -> Event:
        return frame

    def _stream(self, frame: StreamOpen) -> Event:
        self._request(frame)
        if frame.sid in self.producing:
            raise ProtocolViolation("rejected_malformed", f"stream {frame.sid} opened twice")
        if len(self.producing) >= MAX_STREAMS:
            self.outgoing += encode(
                StreamEnd(frame.sid, stream_error(MailboxFull("too many open streams")))
            )
            self.delivered()
            return Dropped("streams_refused")
        self.producing[frame.sid] = wire.cbor_uint(frame.sid)
        return frame

    def _item(self, frame: StreamItem) -> Event:
        allowed = self.consuming.get(frame.sid)
        if allowed is None:
            return Dropped("stream_frames_stray")
        if allowed < len(frame.values):
            raise ProtocolViolation(
                "rejected_malformed", f"stream {frame.sid}: an item beyond its credit"
            )
        self.consuming[frame.sid] = allowed - len(frame.values)
        return frame

    def _end(self, frame: StreamEnd) -> Event:
        if self.consuming.pop(frame.sid, None) is None:
            return Dropped("stream_frames_stray")
        return frame

    def _producer_side(self, frame: StreamMore | StreamCancel) -> Event:
        if frame.sid not in self.producing:
            return Dropped("stream_frames_stray")
        if isinstance(frame, StreamCancel):
            del self.producing[frame.sid]
        return frame

    _RULES: dict[type[Frame], Callable[[PeerSession[Any], Any], Event | None]] = {
        Hello: _hello,
        Tell: _request,
        TellRun: _request,
        Ask: _request,
        Reply: _answer,
        ErrorReply: _answer,
        Credit: _credit,
        Watch: _watch,
        Unwatch: _watch,
        Terminated: _watch,
        StreamOpen: _stream,
        StreamItem: _item,
        StreamMore: _producer_side,
        StreamEnd: _end,
        StreamCancel: _producer_side,
    }
    """What each frame does to the session (a table, as h11 keeps its transitions)."""

    # -- closing -------------------------------------------------------------------------

    def close(self) -> list[T]:
        """The connection is gone: the tokens of the asks still waiting, to fail them."""
        self.closed = True
        self._decoder.clear()
        self.partial_frame = 0
        self._frames.clear()
        self.producing.clear()
        self.consuming.clear()
        pending, self.pending = self.pending, {}
        return list(pending.values())

    def is_idle(self) -> bool:
        """Nothing pending either way and nothing left to send."""
        return (
            not self.pending
            and not self.undelivered
            and not self.outgoing
            and not self.producing
            and not self.consuming
        )
