"""Actor messages between nodes over TCP: one connection per node pair, many refs on it.

Each connection carries 4-byte length-prefixed CBOR frames both ways; what they mean is
:mod:`.protocol`'s (a sans-IO :class:`~.protocol.PeerSession` per connection), and this
module only moves their bytes: it dials and accepts, feeds what it reads to the session
and sends what the session queues, and puts the messages it delivers into mailboxes.
Senders append encoded frames to the connection's buffer, and whatever one trio task step
queued goes out in one non-blocking ``send`` as that step ends (:mod:`.step_end`: a burst
of tells or a batch of replies shares a syscall, and no writer task is woken); the writer
task sends only what the socket did not take at once (or all on a simulated network).
Asks are multiplexed by correlation id; replies go back on the connection the ask came in.

Flow control is credit-based: a node may have at most ``window`` requests (tells and asks)
that the peer has not yet put into a mailbox; the peer returns credit as it delivers.  A
full remote mailbox therefore stops the credit, which makes ``tell`` wait and
``tell_nowait`` raise :class:`MailboxFull`, and nothing grows without bound on either side.
Delivery is at-most-once: a message in flight when a connection breaks is lost, and the
asks waiting on that connection fail with :class:`NodeDown` at once.

A frame that does not parse, or announces more than ``max_frame`` bytes, is counted and its
connection dropped; other connections are untouched.

Under mutual TLS (:attr:`ActorTransport.tls`) a connection carries TLS records instead of the
key handshake's sealed one: a dialled peer's certificate must name the node dialled, an
inbound peer's HELLO must name a node its certificate names.
"""

from __future__ import annotations

import collections
import contextvars
import errno
import ipaddress
import math
import os
import socket
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from itertools import count
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import attrs
import outcome
import trio
from trio.lowlevel import current_task, reschedule, wait_readable, wait_task_rescheduled

from .. import wire
from ..logs import logger
from ..membership.once import OncePerPeer
from ..membership.types import format_address
from ..security import HandshakeError, Keyring, TlsConfig
from ..security.records import RecordRejected, SecureStream
from ..security.tls_stream import open_tls
from . import protocol, step_end, tracing
from .cell import RUNNING, ActorCell, offer_all
from .errors import (
    ActorFailed,
    ActorStopped,
    MailboxFull,
    NodeDown,
    UndecodableReply,
    Unsendable,
)
from .message import encode_ref, ref_resolver
from .protocol import PeerSession, ProtocolViolation
from .ref import DEFAULT_ASK_TIMEOUT, READY, ActorRef, Watcher, sender_now
from .reply import Notify, Reply
from .secure import secure
from .streams import Producer, ReplyStream, as_source

if TYPE_CHECKING:
    from .deadlines import AskDeadlines
    from .observe import DeadLetters, Stats

__all__ = [
    "TCP",
    "ActorNetwork",
    "ActorTransport",
    "Host",
    "RemoteTarget",
    "TcpNetwork",
    "TransportConfig",
    "bind_listener",
]

log = logger("swimactors.actors.transport")

Address = tuple[str, int]
SYSTEM_PATH = "$system"
"""The path of a node's own request handler (remote spawn)."""
MAX_UNVERSIONED = 4096
"""Nodes remembered as speaking the actor protocol from before versions."""
MAX_SPAWN_QUOTAS = 4096
"""Peers whose remote-spawn quota is tracked at once; a quota that has filled up again is
forgotten to make room, and while every one is in use, new peers' spawns are refused."""


@attrs.frozen(kw_only=True)
class TransportConfig:
    """Tuning of the actor transport (defaults suit a LAN)."""

    window: int = 8192
    """Requests a node may have in flight to one peer before its senders wait."""
    max_frame: int = 4 * 1024 * 1024
    """Largest frame accepted; a bigger one drops the connection."""
    connect_timeout: float = 5.0
    idle_timeout: float = 60.0
    """A connection with nothing pending and no traffic for this long is closed."""
    backoff_min: float = 0.1
    backoff_max: float = 5.0
    """After a failed dial, new messages to that node fail fast for a backoff that doubles
    from ``backoff_min`` up to ``backoff_max``, then a new dial is tried."""
    max_connections: int = 1024
    """Inbound connections at once; more are closed as they arrive (counted)."""
    max_connections_per_address: int = 64
    """Inbound connections at once from one IP address."""
    handshake_timeout: float = 5.0
    """Seconds a new connection has to finish the key handshake and send its HELLO."""
    max_handshakes: int = 128
    max_handshakes_per_address: int = 16
    """Inbound connections still in their handshake or before their HELLO, in all and
    from one IP address; a newcomer past either takes the place of the oldest (its own
    address's first), which is closed (counted ``handshakes_displaced``)."""
    frame_timeout: float = 30.0
    """Seconds a frame may take to arrive once started, and a write to be taken."""
    max_receiving_bytes: int = 16 * 1024 * 1024
    """Bytes held in frames still arriving, over all connections at once; past this the
    connection holding the most is dropped (counted ``rejected_receive_budget``), so
    half-sent frames on many connections cannot take more memory."""
    max_queued_bytes: int = 32 * 1024 * 1024
    """Bytes queued for a peer that does not read; past this its connection is closed
    and the asks waiting on it fail with NodeDown."""
    spawn_rate: float = 10.0
    spawn_burst: int = 100
    """Remote spawns one peer may ask for: ``spawn_burst`` at once, then ``spawn_rate``
    per second (a token bucket); more are refused."""
    untrusted: bool = False
    """Akka's untrusted mode: remote spawn and remote watch are refused unless named in
    ``trusted``."""
    trusted: frozenset[str] = frozenset()
    """With ``untrusted``: the operations still allowed, of ``{"spawn", "watch"}``."""
    check_peer_address: bool = True
    """An inbound peer's HELLO name must be a member whose address is the connection's
    source IP (or unknown to membership)."""
    debug: bool = False
    """Error replies carry the remote traceback (off: type and message only)."""

    def __attrs_post_init__(self) -> None:
        if self.window < 1 or self.max_frame < 64:
            raise ValueError("window must be >= 1 and max_frame >= 64")
        if self.max_receiving_bytes < self.max_frame:
            raise ValueError("max_receiving_bytes must be >= max_frame")
        if not 1 <= self.max_handshakes_per_address <= self.max_handshakes:
            raise ValueError("need 1 <= max_handshakes_per_address <= max_handshakes")
        if not self.trusted <= {"spawn", "watch"}:
            raise ValueError('trusted holds only "spawn" and "watch"')


async def bind_listener(host: str, port: int) -> trio.SocketListener:
    """The actor port's TCP listener (port 0: any free one); read its port from
    ``listener.socket.getsockname()``."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    for extra in listeners[1:]:
        await extra.aclose()
    return listeners[0]


def remember_unversioned(nodes: dict[str, None], node: str) -> None:
    """Note that ``node`` speaks only the unversioned protocol, forgetting the oldest such
    note past :data:`MAX_UNVERSIONED` (a bound whoever claims names)."""
    nodes[node] = None
    if len(nodes) > MAX_UNVERSIONED:
        del nodes[next(iter(nodes))]


class ActorNetwork(Protocol):
    """How actor connections are made: TCP (:data:`TCP`), or the simulated network of
    ``swimactors.sim.trio_engine``."""

    async def listen(self, host: str, port: int) -> tuple[trio.abc.Listener[Any], int]:
        """A listener on ``host:port`` (port 0: any free one) and the port it took."""
        ...

    async def connect(self, address: Address) -> trio.abc.Stream:
        """A stream to a peer's listener; ``OSError`` when it cannot be reached."""
        ...


class TcpNetwork:
    """Actor connections over TCP."""

    async def listen(self, host: str, port: int) -> tuple[trio.abc.Listener[Any], int]:
        """A TCP listener on ``host:port`` (port 0: any free one) and the port it took."""
        listener = await bind_listener(host, port)
        return listener, int(listener.socket.getsockname()[1])

    async def connect(self, address: Address) -> trio.abc.Stream:
        """A TCP stream to a peer's actor port (OSError also for a host name the resolver
        cannot encode or a port out of range, which would end the connection's task)."""
        try:
            return await trio.open_tcp_stream(*address)
        except (ValueError, OverflowError) as exc:  # (a port past 2**63 too)
            raise OSError(errno.EINVAL, f"cannot connect to {address!r}: {exc}") from None


TCP = TcpNetwork()


class Endpoint(Protocol):
    """What a delivery from another node is put into: an actor cell, or the like."""

    @property
    def ref(self) -> ActorRef:
        """The ref of the actor deliveries reach."""
        ...

    def offer(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> bool:
        """Queue a delivery if there is room; False when the sender must wait."""
        ...

    async def put(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> None:
        """Queue a delivery, waiting while there is no room."""
        ...

    def ask_now(self, msg: Any, sender: ActorRef | None) -> outcome.Outcome[Any] | None:
        """An ask's outcome at once if it can be answered without the mailbox, else None."""
        ...


class Host(Protocol):
    """What the transport needs from the system it serves."""

    name: str
    nursery: trio.Nursery
    stats: Stats
    dead_letters: DeadLetters
    ask_deadlines: AskDeadlines
    flushes: dict[Callable[[], None], None]
    """Sends to make when the running task's step ends (:mod:`.step_end`)."""
    now: Callable[[], float]
    """The trio clock's current time (its own method: ``trio.current_time()`` is three
    Python calls)."""

    def local_cell_at(self, path: str, uid: int) -> ActorCell | None:
        """The live local actor at ``path#uid``, if there is one."""
        ...

    def local_endpoint(self, path: str, uid: int, peer: str | None) -> Endpoint | None:
        """Where a TELL or ASK from node ``peer`` to ``path#uid`` goes (a live local actor's
        cell; a layer above may add targets made on demand, such as grains)."""
        ...

    def resolve(self, node: str, path: str, uid: int) -> ActorRef:
        """A ref for an actor address decoded from the wire."""
        ...

    def actor_address(self, node: str) -> Address | None:
        """Where ``node``'s actor transport listens, if it is a live member with one."""
        ...

    def serve_request(self, request: Any, peer: str) -> Any:
        """The answer to a request addressed to this system itself by node ``peer`` (the
        connection's, as its HELLO named it and the key, a certificate or membership's
        address proved it)."""
        ...

    def spawns(self, request: Any) -> bool:
        """Whether ``request`` (to the system itself) starts an actor: remote spawn, which
        the quota and untrusted mode govern (data reads and writes, grain probes do not)."""
        ...


_NOBODY = object()
"""No sender yet: a remote target's cached address is for nobody."""


class RemoteTarget:
    """The delivery target of a ref to an actor on another node."""

    __slots__ = (
        "_address",
        "_address_sender",
        "_connection",
        "_plain_class",
        "_run_address",
        "_run_class",
        "_run_fields",
        "_run_width",
        "node",
        "path",
        "ref",
        "transport",
        "uid",
    )

    def __init__(self, transport: ActorTransport, node: str, path: str, uid: int) -> None:
        self.transport = transport
        self.node = node
        self.path = path
        self.uid = uid
        self.ref: ActorRef = RemoteRef(node, path, uid, self)
        self._address = b""
        self._address_sender: object = _NOBODY
        self._connection: Connection | None = None
        """The connection the last tell went on, while it is open (spares a lookup)."""
        self._run_class: type | None = None
        """The class the last tell in a RUN frame had (:meth:`_runs`), with its run
        address for the cached sender, its width and its fields' encoder."""
        self._run_address = b""
        self._run_width = 0
        self._run_fields: Callable[[Any], bytes] = protocol.value_bytes
        self._plain_class: type | None = None
        """The class of the last tell that went in a TELL frame (not a RUN's)."""

    def address(self, sender: ActorRef | None) -> bytes:
        """This target's :func:`protocol.address` from ``sender`` (cached per sender)."""
        if not self._address or sender != self._address_sender:
            self._address = protocol.address(self.path, self.uid, sender)
            self._address_sender = sender
            self._run_class = None
        return self._address

    def attach(self, connection: Connection) -> Connection:
        """Send on ``connection`` from now on; what went in RUN frames on another one is
        asked again (its peer may not read them)."""
        if connection is not self._connection:
            self._connection = connection
            self._run_class = self._plain_class = None
        return connection

    def _runs(self, cls: type) -> bool:
        """Whether tells of ``cls`` go in RUN frames (:func:`protocol.flat_encoder`, to a
        peer that reads them); if so, its run address from the cached address is kept
        for the next ones."""
        session = None if self._connection is None else self._connection.session
        runs = session is not None and session.runs
        flat = protocol.flat_encoder(cls) if runs else None
        if flat is None:
            if session is not None and session.peer_version is not None:
                self._plain_class = cls  # (before the peer's HELLO: decided again after)
            return False
        tag, self._run_width, self._run_fields = flat
        self._run_address = protocol.run_address(self._address, tag, self._run_width)
        self._run_class = cls
        return True

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        connection = self._connection
        if connection is None or connection.session.closed:
            return self.transport.tell(self, msg, sender)
        address = self.address(sender)
        cls = type(msg)
        if cls is self._run_class or (cls is not self._plain_class and self._runs(cls)):
            try:
                fields = self._run_fields(msg)
            except wire.WireError as exc:  # a field the wire refuses
                raise protocol.unsendable(msg, exc) from None
            if connection.try_tell(self._run_address, fields, self._run_width):
                return READY
        elif connection.try_tell(address, protocol.value_bytes(msg)):
            return READY
        value = protocol.value_bytes(msg)  # waiting for credit: in a TELL, as before
        return self.transport.tell_later(connection, self, value, msg, sender)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        self.transport.tell_nowait(self, msg, sender)

    def ask(self, msg: Any, sender: ActorRef | None, timeout: float | None) -> Any:
        return self.transport.ask(self, msg, sender, timeout)

    def open_stream(
        self, msg: Any, sender: ActorRef | None, window: int, timeout: float | None
    ) -> ReplyStream:
        return ReplyStream(self.transport.stream_opener(self, msg, sender), window, timeout)

    def start_ask(
        self, msg: Any, sender: ActorRef | None, timeout: float | None, notify: Notify
    ) -> Reply | None:
        return self.transport.start_ask(self, msg, sender, timeout, notify)

    def add_watcher(self, watcher: Watcher) -> None:
        self.transport.watch(self, watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.transport.unwatch(self, watcher)


class RemoteRef(ActorRef):
    """The ref of an actor on another node: a tell of a class the target has met, from
    the sender of its last tell, that finds its connection open and credit left joins
    the queued RUN or TELL frame from here (one call to the session); anything else goes
    to :meth:`RemoteTarget.tell`."""

    __slots__ = ()

    def tell(self, msg: Any) -> Awaitable[None]:
        """Deliver ``msg``; waits only while the peer owes credit (see :meth:`ActorRef.tell`)."""
        target: RemoteTarget = self._target  # type: ignore[assignment]
        sender = sender_now()
        connection = target._connection
        if connection is not None and sender is target._address_sender:
            session = connection.session
            cls = type(msg)
            if session.closed:
                queued = False
            elif cls is target._run_class:
                try:
                    fields = target._run_fields(msg)
                except wire.WireError as exc:  # a field the wire refuses
                    raise protocol.unsendable(msg, exc) from None
                queued = session.try_tell(target._run_address, fields, target._run_width)
            elif cls is target._plain_class:
                queued = session.try_tell(target._address, protocol.value_bytes(msg))
            else:
                queued = False
            if queued:
                connection._flushes[connection._write_now] = None
                return READY
        return target.tell(msg, sender)

    def ask(
        self, msg: Any, timeout: float | None = DEFAULT_ASK_TIMEOUT
    ) -> Coroutine[Any, Any, Any]:
        """See :meth:`ActorRef.ask`."""
        target: RemoteTarget = self._target  # type: ignore[assignment]
        return target.transport.ask(target, msg, sender_now(), timeout)


class _StreamStart(Reply):
    """The reply slot of a STREAM request: filling it starts the producer (or ends the
    stream with the error)."""

    __slots__ = ("_connection", "_frame")

    def __init__(self, host: Host, connection: Connection, frame: protocol.StreamOpen) -> None:
        super().__init__(host.stats, f"{frame.path}#{frame.uid}")
        self._connection = connection
        self._frame = frame

    def set(self, result: outcome.Outcome[Any]) -> None:
        if self.result is None:
            self.result = result
            self._connection.start_producer(self._frame, result)


class _RemoteSink:
    """Where a producer for a reader on another node sends: ITEM and END frames.

    An item is encoded as it comes (so one that cannot be sent fails the producer) and
    kept until the producer's task step ends, then all the step's items join the
    session at once (:meth:`Session.send_items`) and go out in its write: per item, an
    encoding and an append, not a session call and a flush registration each."""

    __slots__ = ("_connection", "_flush", "_sid", "_values")

    def __init__(self, connection: Connection, sid: int) -> None:
        self._connection = connection
        self._sid = sid
        self._values: list[bytes] = []
        self._flush = self.flush
        """Registered with the step-end flushes (one bound method, a dict key made once)."""

    def emit(self, item: Any) -> None:
        values = self._values
        if not values:
            self._connection._flushes[self._flush] = None
        values.append(protocol.value_bytes(item))

    def flush(self) -> None:
        """The items kept join the session and are sent (at the end of a task step)."""
        values, self._values = self._values, []
        connection = self._connection
        if values and connection.session.send_items(self._sid, values):
            connection.send_soon()

    def end(self, error: BaseException | None) -> None:
        connection = self._connection
        self.flush()  # the items before the end
        connection._flushes.pop(self._flush, None)
        connection.producers.pop(self._sid, None)
        if error is not None and not connection.transport.config.debug:
            error = _public(error)
        connection.session.end_stream(self._sid, error)
        connection.send_soon()


class _RemoteLink:
    """How a reader reaches its producer on another node: MORE and CANCEL frames."""

    __slots__ = ("_connection", "_sid")

    def __init__(self, connection: Connection, sid: int) -> None:
        self._connection = connection
        self._sid = sid

    def grant(self, n: int) -> None:
        # sent at once, not as the reader's step ends: the reader goes on with the items
        # it holds while the producer makes the next ones
        self._connection.session.grant(self._sid, n)
        self._connection.write_now()

    def cancel(self) -> None:
        connection = self._connection
        connection.readers.pop(self._sid, None)
        connection.session.cancel_stream(self._sid)
        connection.send_soon()


class _RemoteReply(Reply):
    """The reply slot of an ask that came from another node: filling it sends the answer."""

    __slots__ = ("_connection", "_corr")

    def __init__(self, stats: Stats, recipient: object, connection: Connection, corr: int) -> None:
        # every slot of Reply set here, not through Reply.__init__: one call less per ask
        self._stats = stats
        self.recipient = recipient
        self.notify = None
        self.task = None
        self.result = None
        self.abandoned = False
        self._connection = connection
        self._corr = corr

    def set(self, result: outcome.Outcome[Any]) -> None:
        if self.result is None:
            self.result = result
            self._connection.send_reply(self._corr, result)

    def answer(self, value: Any) -> None:
        if self.result is None:
            self.result = _ANSWERED
            connection = self._connection
            if connection._spans:  # a traced ask: its span ends with the reply
                connection.send_reply(self._corr, outcome.Value(value))
            else:
                connection.session.reply(self._corr, value)
                connection._flushes[connection._write_now] = None


_ANSWERED: outcome.Outcome[Any] = outcome.Value(None)
"""The result of a reply slot answered with a value that is not kept in it: a
:class:`_RemoteReply`'s went out, the holder's is :attr:`Connection._holder_value`."""
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
WASTED_SKIPS = 16
"""Wakes by a reply a task sits out, after it left a connection's read role unused,
before that connection lends it the role again."""
_UNTRACED: tuple[Any, str | None] = (None, None)


def _sender(ref: ActorRef | None) -> list[Any] | None:
    return None if ref is None else encode_ref(ref)


class _WatchProxy:
    """Stands in for a watcher on another node: sends TERMINATED there."""

    __slots__ = ("node", "transport")

    def __init__(self, transport: ActorTransport, node: str) -> None:
        self.transport = transport
        self.node = node

    def notify_terminated(self, ref: ActorRef, reason: str | None) -> None:
        self.transport.forget_proxy(self.node, ref)
        self.transport.send_control(self.node, protocol.Terminated(ref.path, ref.uid, reason))


def _source_host(stream: trio.abc.Stream) -> str | None:
    """The peer's IP address on a TCP stream (IPv4-mapped IPv6 as plain IPv4)."""
    if not isinstance(stream, trio.SocketStream):
        return None
    try:
        host = str(stream.socket.getpeername()[0])
    except OSError:
        return None
    return host[len("::ffff:") :] if host.startswith("::ffff:") and "." in host else host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _split_cancelled(exc: BaseException) -> tuple[BaseException | None, BaseException | None]:
    """``exc`` as (its errors, its cancellations): either may be None."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(Exception)
    return (exc, None) if isinstance(exc, Exception) else (None, exc)


def _sole_cause(exc: BaseException) -> BaseException:
    """``exc`` without the exception groups of nurseries that had one failure."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _public(error: BaseException) -> BaseException:
    """``error`` as an error reply may show it to any caller: type and message, no
    traceback (``TransportConfig.debug`` keeps them)."""
    frame = protocol.encode_error(0, error)
    return ActorFailed(frame.type_name, frame.message) if frame.traceback else error


Held = tuple[Any, ActorRef | None, Reply | None]


class _Recipient:
    """Where a request goes (``endpoint``: None at the system's path, or when no such
    actor lives here) and its sender's ref, or why that did not decode (``error``)."""

    __slots__ = ("endpoint", "error", "path", "sender", "uid")

    def __init__(
        self,
        path: str,
        uid: int,
        sender: ActorRef | None,
        endpoint: Endpoint | None,
        error: wire.WireError | None,
    ) -> None:
        self.path = path
        self.uid = uid
        self.sender = sender
        self.endpoint = endpoint
        self.error = error

    def __str__(self) -> str:
        return f"{self.path}#{self.uid}"


_TLS_REFUSALS = frozenset({"rejected_tls", "rejected_certificate"})


class Connection:
    """One TCP connection to one peer node: the socket side of its :class:`PeerSession`
    (a writer task, a reader feeding the session) and the deliveries waiting for room.

    A delivery to a full backpressure mailbox waits in that actor's own queue here, so
    the reader goes on with every other actor's traffic; its credit is held back, which
    slows the sender.  At most half the peer's window is held back this way: beyond that,
    a message to a full mailbox is dropped (counted ``refused_full``, a dead letter, an ask
    fails with :class:`MailboxFull`), so the peer always has credit for other actors."""

    def __init__(
        self, transport: ActorTransport, node: str | None, address: Address | None
    ) -> None:
        config = transport.config
        self.transport = transport
        self.address = address
        self.session: PeerSession[Reply] = PeerSession(
            transport.host.name,
            transport.incarnation,
            config.window,
            config.max_frame,
            peer=node,
            now=trio.current_time(),
            versioned=node not in transport.unversioned,
        )
        self.stream: trio.abc.Stream | None = None
        self._sealed: SecureStream | None = None
        """The stream again when it is sealed, by the key or TLS (checked on every send)."""
        self.reason = ""
        self.held: dict[Endpoint, deque[Held]] = {}
        """Per actor, deliveries waiting for room in its mailbox, in arrival order."""
        self.held_count = 0
        self._flushes = transport.host.flushes
        self._now = transport.host.now
        self._stats = transport.host.stats
        self._write_now = self.write_now
        """Registered in :attr:`_flushes` (one bound method, so a dict key made once)."""
        self._read_once = self._read_lent
        self._holder_hook = self._holder_answered
        """Bound once, as :attr:`_write_now`: handed on by every read of the role's holder."""
        self._writer: trio.lowlevel.Task | None = None
        self._busy = False
        """The writer task is inside ``send_all``."""
        self._raw: socket.socket | None = None
        """A duplicate of the socket for non-blocking sends from other tasks (Linux)."""
        self._fd = -1
        """The socket's descriptor to wait on (-1: not a socket, no non-blocking reads)."""
        self._context: contextvars.Context | None = None
        """The reader task's context: whoever reads decodes in it (:data:`ref_resolver`)."""
        self._lent = step_end.lent_reads()
        self._holder: trio.lowlevel.Task | None = None
        """The task the read role is lent to (:meth:`_lend`); None while the reader has it."""
        self._lender: trio.lowlevel.Task | None = None
        """The reader task, parked while it lends the role."""
        self._holder_reading = False
        """The holder is suspended waiting on the socket (it keeps the role)."""
        self._holder_read = False
        self._wasted: trio.lowlevel.Task | None = None
        self._wasted_skips = 0
        """A task the role came back from unused, not lent it for its next wakes."""
        self._woke: trio.lowlevel.Task | None = None
        """The last asking task a reply in the chunk being handled woke."""
        self._holder_reply: outcome.Outcome[Any] | None = None
        """The holder's reply, however it came (read, timed out, connection closed)."""
        self._holder_value: Any = None
        """The decoded answer to the holder's ask, taken straight (:meth:`read_for`)."""
        self._awaited = -1
        """The correlation id of the ask whose holder reads (:meth:`read_for`; -1: none)."""
        self._credit_event = trio.Event()
        self._scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self.peer_host: str | None = None
        """The source IP of an inbound connection (on sockets)."""
        self.peer_names: frozenset[str] | None = None
        """The node names the peer's TLS certificate carries (None without TLS)."""
        self._opened = math.inf
        """When the stream was ready: the peer's HELLO is due ``handshake_timeout`` later."""
        self._greeted = False
        self._redialling = False
        """The peer refused our versioned HELLO: dial it again without versions."""
        self._frame_started = math.inf
        self._behind = False
        """A burst left its actor a whole batch or more to handle: the reader lets it run
        before it decodes the next frame, so it never runs further ahead of an actor than
        that (a backlog of decoded messages is memory, and the GC's walk)."""
        self._last_recipient: _Recipient | None = None
        self._last_sender: list[Any] | None = None
        """The last request's actor (a running local cell) and its sender, as on the wire."""
        self._last_address = b""
        """Their :func:`protocol.wire_address`: the next ASK to them is taken straight."""
        self._spans: dict[int, Any] = {}
        """Open SERVER spans of traced asks from this peer, by correlation id."""
        self.readers: weakref.WeakValueDictionary[int, ReplyStream] = weakref.WeakValueDictionary()
        """Streams read here from the peer, by stream id (weak: a dropped reader cancels)."""
        self.producers: dict[int, Producer] = {}
        """Streams produced here for the peer, by stream id."""

    @property
    def node(self) -> str | None:
        """The peer's name (None for an inbound connection until its HELLO arrives)."""
        return self.session.peer

    @property
    def closed(self) -> bool:
        """Whether the connection's session has ended (nothing more is sent or taken)."""
        return self.session.closed

    @property
    def stranger(self) -> bool:
        """An inbound peer whose name membership does not know (anyone, without a key)."""
        node = self.node
        return self.address is None and (
            node is None or self.transport.host.actor_address(node) is None
        )

    @property
    def quota_key(self) -> str:
        """Whom this peer's remote spawns count against: its name, or a stranger's source
        address (a name made up per connection would otherwise bring a fresh quota)."""
        return f"address {self.peer_host}" if self.stranger else self.node or ""

    # -- sending ---------------------------------------------------------------------------

    def send_soon(self) -> None:
        """Send what is queued when the running task's step ends (:mod:`.step_end`):
        all that one step queues goes in one write, without a trip to the writer task."""
        self._flushes[self._write_now] = None

    def _wake_writer(self) -> None:
        queued = len(self.session.outgoing)
        if self._sealed is not None:
            queued += len(self._sealed.unsent)
        if queued > self.transport.config.max_queued_bytes:
            self.transport.counters["slow_peers_dropped"] += 1
            self.close(f"the peer does not read ({queued} bytes queued)")
            return
        writer = self._writer
        if writer is not None and not self._busy:
            self._writer = None
            trio.lowlevel.reschedule(writer)

    def write_now(self) -> None:
        """Send what is queued with one non-blocking ``send`` from this task, sparing a
        switch to the writer task; whatever the socket does not take is the writer's."""
        if not self._send_now():
            self._wake_writer()

    def _send_now(self) -> bool:
        """One non-blocking ``send`` of what is queued (sealed first on a keyed
        connection), no scheduler trip; True when nothing is left to send."""
        raw = self._raw
        session = self.session
        out = session.outgoing
        stream = self._sealed
        if stream is not None:  # seal here; send sealed bytes in order
            if out and raw is not None and not self._busy:
                stream.seal(out)
                session.sent(len(out))
            if not out:
                out = stream.unsent
        if raw is not None and out and not self._busy:
            try:
                sent = raw.send(out, _DONTWAIT)
            except OSError:  # full (BlockingIOError) or broken: the writer finds out which
                sent = 0
            if sent:
                if stream is None:
                    session.sent(sent)
                else:
                    del out[:sent]
                counters = self.transport.counters
                counters["writes"] += 1
                counters["bytes_sent"] += sent
        return not out

    def try_request(self, frame: bytes) -> bool:
        """Queue a request if there is credit for it, to go when this task step ends;
        :class:`NodeDown` once the connection is closed."""
        if self.session.closed:
            raise NodeDown(f"connection to {self.node} closed: {self.reason}")
        if self.session.try_request(frame):
            self._flushes[self._write_now] = None
            return True
        return False

    def try_tell(self, address: bytes, value: bytes, width: int = 0) -> bool:
        """:meth:`try_request` for a tell (:meth:`PeerSession.try_tell`: a burst of tells
        to one actor is one frame)."""
        if self.session.closed:
            raise NodeDown(f"connection to {self.node} closed: {self.reason}")
        if self.session.try_tell(address, value, width):
            self._flushes[self._write_now] = None
            return True
        return False

    async def tell(self, address: bytes, value: bytes) -> None:
        """Queue a tell, waiting for credit (the peer delivering earlier requests)."""
        while not self.try_tell(address, value):
            await self._credit_event.wait()

    async def request(self, frame: bytes) -> None:
        """Queue a request, waiting for credit (the peer delivering earlier ones)."""
        while not self.try_request(frame):
            await self._credit_event.wait()

    def send_reply(self, corr: int, result: outcome.Outcome[Any]) -> None:
        """Answer the ask ``corr`` (an error without its traceback unless ``debug``); sent
        when the task step ends."""
        if self._spans:
            span = self._spans.pop(corr, None)
            if span is not None:
                span.end()
        if isinstance(result, outcome.Value):
            self.session.reply(corr, result.value)
        else:
            assert isinstance(result, outcome.Error)
            error = result.error
            self.session.fail(corr, error if self.transport.config.debug else _public(error))
        self._flushes[self._write_now] = None

    def send_control(self, frame: protocol.Watch | protocol.Unwatch | protocol.Terminated) -> None:
        """Send a WATCH, UNWATCH or TERMINATED frame soon."""
        self.session.send(frame)
        self.send_soon()

    # -- streams ---------------------------------------------------------------------------

    def read_stream(self, sid: int, stream: ReplyStream) -> None:
        """The STREAM ``sid`` went out: its items go to ``stream``."""
        self.session.open_stream(sid, stream.window)
        self.readers[sid] = stream
        stream.link = _RemoteLink(self, sid)

    def start_producer(self, frame: protocol.StreamOpen, result: outcome.Outcome[Any]) -> None:
        """The actor answered the peer's STREAM: run what it answered, or end the stream."""
        sid = frame.sid
        try:
            source = as_source(result.unwrap())
        except Exception as exc:
            _RemoteSink(self, sid).end(exc)
            return
        producer = Producer(None, source, _RemoteSink(self, sid), frame.window)
        self.producers[sid] = producer
        cell = self.transport.host.local_cell_at(frame.path, frame.uid)
        if cell is not None:
            producer.cell = cell
            cell.start_stream(producer)
        else:
            self.transport.host.nursery.start_soon(producer.run)

    # -- the connection's tasks ----------------------------------------------------------

    async def run(self, stream: trio.abc.Stream | None) -> None:
        """Dial (or take the accepted ``stream``), shake hands, then read and write until the
        connection ends; every pending ask then fails with NodeDown.  A peer on code from
        before versions is dialled again at once without them, with what it never read."""
        transport = self.transport
        ref_resolver.set(transport.host.resolve)  # whoever started us, decode for our system
        try:
            with self._scope:
                while await self._serve(stream):
                    await self._release(self.stream)
                    stream = self.stream = None
                    self._redial()
        except BaseException as raised:
            # the reader's error comes out of the nursery wrapped, with its siblings'
            # Cancelled when the system is being cancelled too: those go on up
            failed, cancelled = _split_cancelled(raised)
            if failed is not None:
                self._failed(_sole_cause(failed))
            if cancelled is not None:
                raise cancelled from None
        finally:
            self._close()
            await self._release(self.stream or stream)
            transport.connection_closed(self)

    async def _serve(self, stream: trio.abc.Stream | None) -> bool:
        """One stream of the connection (dialled if None), to its end; True when the peer
        refused our versioned HELLO and is to be dialled again without versions."""
        transport = self.transport
        if stream is None:
            stream = await self._dial()
        self.stream = stream
        self._opened = trio.current_time()
        raw = None
        if isinstance(stream, trio.SocketStream):
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            if _DONTWAIT:
                raw = stream.socket.fileno()
        if transport.tls is not None:
            stream = self.stream = self._sealed = await self._start_tls(stream, transport.tls)
        elif transport.keyring is not None:
            stream = self.stream = self._sealed = await self._secure(stream, transport.keyring)
        if raw is not None:  # only now: nothing may go out in a handshake
            self._raw = socket.socket(fileno=os.dup(raw))
            self._fd = self._raw.fileno()  # (trio takes an int without a call)
        self._context = current_task().context
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._write, stream)
            nursery.start_soon(self._watch_idle)
            await self._read(stream)
            nursery.cancel_scope.cancel()
        return self._redialling

    def _redial(self) -> None:
        """Start again for a new stream to the same peer, without versions (the session
        queues again what the peer never read; asks stay pending)."""
        self._redialling = False
        self._sealed = None
        self._fd = -1
        self._greeted = False
        self._frame_started = math.inf
        self.transport.receiving.release(self)
        self.reason = ""
        self.session.redial_unversioned()

    async def _release(self, stream: trio.abc.Stream | None) -> None:
        """Close ``stream`` and this side's duplicate of its socket."""
        if self._raw is not None:
            trio.lowlevel.notify_closing(self._raw)  # forget its epoll registration
            self._raw.close()
            self._raw = None
        if stream is not None:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    def _failed(self, exc: BaseException) -> None:
        """Why the connection ended: a broken stream, or a bug that costs this connection
        only (counted and logged), never the system."""
        if isinstance(exc, RecordRejected):  # altered, replayed or foreign bytes
            self._reject("rejected_records", str(exc))
        elif isinstance(exc, OSError | trio.BrokenResourceError | trio.ClosedResourceError):
            self.reason = self.reason or f"{type(exc).__name__}: {exc}"
        else:
            self.transport.counters["connection_errors"] += 1
            self.reason = self.reason or f"internal error: {exc!r}"
            log.error("actor connection to %s failed", self.node or self.address, exc_info=exc)

    async def _secure(self, stream: trio.abc.Stream, keyring: Keyring) -> SecureStream:
        """Both ends prove the cluster key; the peer's proven name must be the node dialled
        (inbound: its HELLO must carry that name)."""
        transport = self.transport
        with trio.move_on_after(transport.config.handshake_timeout):
            try:
                secured, peer = await secure(
                    stream,
                    keyring,
                    transport.label,
                    transport.host.name,
                    initiator=self.address is not None,
                )
            except HandshakeError as exc:
                self._refuse("rejected_handshake", f"handshake failed: {exc}")
            if self.session.peer is not None and peer != self.session.peer:
                self._refuse("rejected_impostor", f"{peer!r} answered for {self.session.peer!r}")
            self.session.peer = peer
            return secured
        self._refuse("handshake_timeouts", "the handshake timed out")

    async def _start_tls(self, stream: trio.abc.Stream, tls: TlsConfig) -> SecureStream:
        """Mutual TLS: both ends show a certificate from the CA; a dialled peer's must
        name the node dialled (an inbound one's HELLO is checked against its names)."""
        dialled = self.address is not None
        with trio.move_on_after(self.transport.config.handshake_timeout):
            try:
                secured, names = await open_tls(
                    stream, tls.client if dialled else tls.server, server_side=not dialled
                )
            except trio.BrokenResourceError as exc:
                self._refuse("rejected_tls", f"TLS handshake failed: {exc.__cause__ or exc}")
            node = self.session.peer
            if node is not None and node not in names:
                shown = ", ".join(sorted(names)) or "no name"
                self._refuse(
                    "rejected_certificate", f"a certificate for {shown} answered as {node!r}"
                )
            self.peer_names = names
            return secured
        self._refuse("handshake_timeouts", "the TLS handshake timed out")

    def _refuse(self, counter: str, detail: str) -> NoReturn:
        self._reject(counter, detail)
        raise trio.BrokenResourceError(detail)

    async def _dial(self) -> trio.abc.Stream:
        assert self.address is not None
        with trio.move_on_after(self.transport.config.connect_timeout):
            try:
                stream = await self.transport.network.connect(self.address)
            except OSError:
                self.transport.dial_failed(self)
                raise
            self.transport.dial_succeeded(self)
            return stream
        self.transport.dial_failed(self)
        raise OSError(f"connecting to {format_address(self.address)} timed out")

    async def _write(self, stream: trio.abc.Stream) -> None:
        """Send what the socket did not take at once; while it runs (the connection is
        up), every task step's end makes the sends queued in it (:mod:`.step_end`)."""
        with step_end.installed():
            while True:
                if self._send_now():  # all sent without a trip through the scheduler
                    self._writer = trio.lowlevel.current_task()
                    await trio.lowlevel.wait_task_rescheduled(self._abort_wait)
                    continue
                await self._send(stream)

    async def _send(self, stream: trio.abc.Stream) -> None:
        """Send everything queued in one ``send_all`` (many frames per syscall)."""
        self._busy = True
        try:
            session = self.session
            data = session.take()
            self.transport.counters["writes"] += 1
            self.transport.counters["bytes_sent"] += len(data)
            with trio.move_on_after(self.transport.config.frame_timeout):
                await stream.send_all(data)
                session.last_active = trio.current_time()
                return
            self._refuse("slow_peers_dropped", "the peer does not read (a write stalled)")
        finally:
            self._busy = False

    def _abort_wait(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._writer = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _receiver(self, stream: trio.abc.Stream) -> Callable[[], Awaitable[bytes | bytearray]]:
        """How the reader takes bytes (b"" at the end of the stream): on a socket, straight
        from it, a wait until it is readable and one non-blocking ``recv`` (trio's stream
        tries a ``recv`` first, which fails each time a reply is awaited), records opened
        here (keyed or TLS); else (a simulated network) the stream's ``receive_some``."""
        sealed, fd, received = self._sealed, self._fd, self._received
        if self._raw is None:
            return partial(stream.receive_some, 65536)

        async def receive() -> bytes | bytearray:
            if sealed is not None and sealed.pending:  # opened with the handshake's bytes
                return sealed.take()
            while True:
                await wait_readable(fd)
                if (data := received()) is not None:
                    return data

        return receive

    def _received(self) -> bytes | bytearray | None:
        """One non-blocking ``recv`` from the readable socket, opened if sealed: the bytes
        (b"" at the end of the stream), or None when there is nothing to hand on yet."""
        assert self._raw is not None
        try:
            data = self._raw.recv(65536, _DONTWAIT)
        except BlockingIOError:
            return None
        sealed = self._sealed
        if sealed is None:
            return data
        if not data:
            sealed.end()
            return data
        if plain := sealed.open(data):
            return plain
        if sealed.unsent:  # TLS answered something (an alert, a key update)
            self.write_now()
        return None

    async def _read(self, stream: trio.abc.Stream) -> None:
        config = self.transport.config
        receive = self._receiver(stream)
        while True:
            if self._frame_started == math.inf and self._greeted:
                chunk = await receive()  # no frame under way: nothing to time, no cancel scope
            else:
                deadline = self._frame_started + config.frame_timeout
                if not self._greeted:
                    deadline = min(deadline, self._opened + config.handshake_timeout)
                with trio.move_on_at(deadline):
                    chunk = await receive()
                if deadline <= trio.current_time():
                    return self._reject("frame_timeouts", "a frame or the HELLO took too long")
            if not chunk:
                self.reason = "closed by the peer"
                return
            try:
                if not self._took_alone(chunk):
                    if not self._took(chunk):
                        return
                    while not self._handle_events():  # let the actor run before the next frame
                        await trio.lowlevel.checkpoint()
                if self._flushes:  # send what this read queued before waiting again
                    step_end.run_flushes(self._flushes)
                woke = self._woke
                if woke is not None and self._lends_to(woke):
                    await self._lend(woke)
                    while not self._handle_events():  # what the holder left
                        await trio.lowlevel.checkpoint()
            except ProtocolViolation as exc:
                return self._reject(exc.counter, str(exc))

    def _took_alone(self, chunk: bytes | bytearray) -> bool:
        """Act on ``chunk`` at once when it is one whole frame of asks in a row: the REPLY
        the holder awaits, or an ASK to the actor and from the sender of the request
        before (:meth:`PeerSession.lone_reply`, :meth:`~PeerSession.lone_ask`); False
        for anything else, which the caller takes the usual way."""
        session = self.session
        self._woke = None
        if self._awaited >= 0:
            answered = session.lone_reply(chunk, self._awaited, self._now())
            if answered is None:
                return False
            reply, value = answered  # (the holder's: read by it, no task parked on it)
            try:
                self._holder_value = protocol.decode_value(value)
            except wire.WireError:
                reply.result = self._reply_outcome(value)  # (UndecodableReply)
            else:
                reply.result = _ANSWERED
        else:
            to = self._last_recipient
            if to is None or to.endpoint.state is not RUNNING:  # type: ignore[union-attr]
                return False
            ask = session.lone_ask(chunk, self._last_address, self._now())
            if ask is None:
                return False
            self._deliver(to, ask[1], ask[0])  # (an answer made here queued its own send)
            if session.return_credit():
                self.send_soon()
        counters = self.transport.counters
        counters["bytes_received"] += len(chunk)
        counters["frames_received"] += 1
        return True

    def _took(self, chunk: bytes | bytearray) -> bool:
        """Give a chunk read to the session, timing a frame it leaves under way and holding
        that frame's bytes in the receive budget; False when this connection is over the
        budget (rejected)."""
        session = self.session
        self.transport.counters["bytes_received"] += len(chunk)
        now = self._now()
        session.receive_data(chunk, now)
        partial = session.partial_frame
        if partial or self._frame_started != math.inf:  # a frame is, or was, under way
            if not partial:
                self._frame_started = math.inf
            elif self._frame_started == math.inf:
                self._frame_started = now
            for over in self.transport.receiving.hold(self, partial):
                over._reject("rejected_receive_budget", "its frames in progress hold too much")
                if over is self:
                    return False
                over._scope.cancel()
        return True

    def _handle_events(self) -> bool:
        """Act on the session's events in order, then return the credit they freed (sent
        when the step ends); False when one left an actor a whole batch behind: the caller
        lets it run, then calls again for the rest."""
        session = self.session
        events = self._EVENTS
        counters = self.transport.counters
        done = True
        self._woke = None
        while (event := session.next_event()) is not None:
            events[type(event)](self, event)
            counters["frames_received"] += 1
            if self._behind:
                self._behind = done = False
                break
        session.return_credit()
        if session.outgoing:  # what this step queued (and the credit it returns)
            self.send_soon()
        return done

    # -- the read role, lent to an asking task -------------------------------------------

    def _lends_to(self, task: trio.lowlevel.Task) -> bool:
        """Whether the reader lends its role to ``task``, which a reply just woke: on a
        socket, with no frame under way, to a task holding no other role (one that left
        the role unused sits out its next :data:`WASTED_SKIPS` wakes)."""
        if self._fd < 0 or self._frame_started != math.inf or task in self._lent:
            return False
        if task is self._wasted and self._wasted_skips:
            self._wasted_skips -= 1
            return False
        return True

    async def _lend(self, task: trio.lowlevel.Task) -> None:
        """Lend the read role to ``task`` and park until it comes back: its next ask here
        reads the socket itself (:meth:`read_for`), with no switch to this task and back.
        The role comes back when a step of the holder ends elsewhere than in that read
        (:mod:`.step_end`), or when the holder meets anything but plain frames."""
        self._holder = task
        self._holder_read = False
        self._lent[task] = self
        self._lender = current_task()
        await wait_task_rescheduled(self._abort_lend)

    def _abort_lend(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._lender = None
        self._give_back()
        return trio.lowlevel.Abort.SUCCEEDED

    def _give_back(self) -> None:
        """End the lending: the reader task reads again."""
        holder = self._holder
        if holder is not None:
            self._holder = None
            del self._lent[holder]
            lender, self._lender = self._lender, None
            if lender is not None:
                reschedule(lender)

    def step_ended(self) -> None:
        """A step of the holder ended: it keeps the role only while it waits on the socket."""
        if not self._holder_reading:
            if not self._holder_read:
                self._wasted, self._wasted_skips = self._holder, WASTED_SKIPS
            self._give_back()

    def kick(self) -> None:
        """Wake the holder if it waits on the socket (trio forgets the socket's
        registration, and the next wait on it makes it again): something else needs it,
        so the role goes back to the reader and the holder sits out its next wakes (an
        actor woken by local tells as well would otherwise be kicked on each)."""
        if self._holder_reading:
            trio.lowlevel.notify_closing(self._fd)
            self._wasted, self._wasted_skips = self._holder, WASTED_SKIPS
            self._give_back()

    def _holder_answered(self, result: outcome.Outcome[Any]) -> None:
        """The holder's reply is in (read, timed out, or failed by a closing connection):
        keep it and wake the holder."""
        self._holder_reply = result
        if self._holder_reading:
            self.kick()

    async def read_for(self, reply: Reply, corr: int, holder: trio.lowlevel.Task) -> Any:
        """The answer to the calling task's (``holder``'s) ask ``corr``, which holds the
        read role: it reads the socket itself until its reply is in (a read that is just
        that REPLY taken straight, :meth:`PeerSession.lone_reply`); anything unusual gives
        the role back and the reply comes the usual way."""
        assert self._context is not None
        reply.notify = self._holder_hook
        self._awaited = corr
        self._holder_read = True
        flushes = self._flushes
        try:
            while reply.result is None and not reply.abandoned and self._holder is holder:
                if flushes:
                    step_end.run_flushes(flushes)
                self._holder_reading = True
                try:
                    await wait_readable(self._fd)
                except trio.ClosedResourceError:  # kicked, or the connection is closing
                    continue
                finally:
                    self._holder_reading = False
                if not self._context.run(self._read_once):
                    self._give_back()
        finally:
            reply.notify = None
            self._awaited = -1
        answer, self._holder_reply = self._holder_reply, None
        if answer is None:
            answer = reply.result
            if answer is _ANSWERED:  # read straight: its value was kept aside
                value, self._holder_value = self._holder_value, None
                return value
        if type(answer) is outcome.Value:  # (read once, here: no unwrap's bookkeeping)
            return answer.value
        if answer is not None:
            return answer.unwrap()
        return await reply.wait()

    async def read_while(self, waiting: Callable[[], bool], holder: trio.lowlevel.Task) -> None:
        """The holder of the read role (the calling task, ``holder``) reads the socket
        while ``waiting()`` holds and the role is still its, doing with every frame what
        the reader would (in the reader's context); what a read queued goes out before the
        next wait."""
        assert self._context is not None
        self._holder_read = True
        flushes = self._flushes
        while waiting() and self._holder is holder:
            if flushes:
                step_end.run_flushes(flushes)
            self._holder_reading = True
            try:
                await wait_readable(self._fd)
            except trio.ClosedResourceError:  # kicked, or the connection is closing
                continue
            finally:
                self._holder_reading = False
            if not self._context.run(self._read_once):
                self._give_back()

    def _read_lent(self) -> bool:
        """One read by the holder of the role; False when the reader task must take over
        (the end of the stream, a frame left under way, an actor left behind, a fault:
        the connection ends as if the reader had met it)."""
        try:
            chunk = self._received()
            if chunk is None:
                return True
            if not chunk:
                self.close("closed by the peer")
                return False
            if self._took_alone(chunk):
                return True
            if not self._took(chunk):
                self._scope.cancel()
                return False
            done = self._handle_events()
        except ProtocolViolation as exc:
            self._reject(exc.counter, str(exc))
            self._scope.cancel()
            return False
        except Exception as exc:
            self._failed(exc)
            self._scope.cancel()
            return False
        return done and self._frame_started == math.inf

    def _reject(self, counter: str, detail: str) -> None:
        self.transport.counters[counter] += 1
        self.reason = f"dropped: {detail}"
        peer = self.address or (self.peer_host or "", 0)
        if counter in _TLS_REFUSALS:  # a peer without the right certificate retries: once
            self.transport.tls_refused(peer, detail)
            return
        if counter == "rejected_version":  # it dials again: once
            self.write_now()  # our HELLO, so that the peer can say why too
            self.transport.version_refused(peer, detail)
            return
        if counter == "rejected_unversioned":  # dialled again without versions
            assert self.node is not None
            self.transport.met_unversioned(self.node, peer, detail)
            self._redialling = self.address is not None
            return
        log.warning("actor connection from %s dropped: %s", self.node or self.address, detail)

    async def _watch_idle(self) -> None:
        idle = self.transport.config.idle_timeout
        session = self.session
        while True:
            await trio.sleep_until(session.last_active + idle)
            quiet = trio.current_time() - session.last_active >= idle
            if quiet and session.is_idle() and not self.held:
                self.reason = "idle"
                self._scope.cancel()
                return
            if quiet:
                session.last_active = trio.current_time()

    # -- what the peer said ----------------------------------------------------------------

    def _hello(self, frame: protocol.Hello) -> None:
        self._greeted = True
        if frame.version != protocol.UNVERSIONED:  # (upgraded since we dialled it without)
            self.transport.unversioned.pop(frame.node, None)
        if self.address is None:  # an inbound connection: now we know who it is
            if self.peer_names is not None and frame.node not in self.peer_names:
                shown = ", ".join(sorted(self.peer_names)) or "no name"
                raise ProtocolViolation(
                    "rejected_certificate",
                    f"HELLO as {frame.node!r} with a certificate for {shown}",
                )
            if not self.transport.plausible(frame.node, self.peer_host):
                raise ProtocolViolation(
                    "rejected_impostor",
                    f"HELLO as {frame.node!r} from {self.peer_host}, not that member's address",
                )
            self.transport.identified(self)

    def _tell(self, frame: protocol.Tell | protocol.TellRun) -> None:
        """Deliver a TELL's values or a RUN's messages in order, their actor and sender
        found once: straight into the mailbox while it takes them, the rest (and anything
        unusual) one by one through :meth:`_deliver`."""
        to = self._recipient(frame.path, frame.uid, frame.sender)
        cell = to.endpoint
        straight = cell is not None and to.error is None and cell not in self.held
        if isinstance(frame, protocol.TellRun):
            done = self._offer_all(to, protocol.decode_run(frame)) if straight else 0
            if done * frame.width == len(frame.fields):
                return
            rest = protocol.run_values(frame)[done:]
        else:
            done = self._offer_all(to, protocol.decode_values(frame.values)) if straight else 0
            rest = frame.values[done:] if done else frame.values
        for value in rest:
            self._deliver(to, value, None)

    def _offer_all(self, to: _Recipient, messages: list[Any]) -> int:
        """Queue ``messages`` for ``to`` while its mailbox takes them; how many it took."""
        cell = to.endpoint
        assert cell is not None
        done = offer_all(cell, messages, to.sender)
        self.session.delivered(done)
        self._behind = isinstance(cell, ActorCell) and cell.behind()
        return done

    def _ask(self, frame: protocol.Ask) -> None:
        if frame.trace is not None and tracing.enabled():
            span = tracing.start_server(self.transport.host.name, frame.path, frame.trace)
            self._spans[frame.corr] = span  # ended when the reply goes out
        self._deliver(self._recipient(frame.path, frame.uid, frame.sender), frame.value, frame.corr)

    def _answered(self, event: protocol.Answered[Reply]) -> None:
        frame = event.frame
        reply = event.token
        if reply.task is not None:  # a task parked on it: it may take the read role
            self._woke = reply.task
        if isinstance(frame, protocol.ErrorReply):
            reply.set(outcome.Error(protocol.decode_error(frame)))
        else:
            reply.set(self._reply_outcome(frame.value))

    def _reply_outcome(self, value: Any) -> outcome.Outcome[Any]:
        """A REPLY's value decoded (:class:`UndecodableReply` if it does not decode)."""
        try:
            return outcome.Value(protocol.decode_value(value))
        except wire.WireError as exc:
            return outcome.Error(UndecodableReply(f"from {self.node}: {exc}"))

    def _credit(self, frame: protocol.Credit) -> None:
        self._credit_event.set()
        self._credit_event = trio.Event()

    def _watch_frame(self, frame: protocol.Watch | protocol.Unwatch | protocol.Terminated) -> None:
        self.transport.control(self, frame)

    def _stream_open(self, frame: protocol.StreamOpen) -> None:
        start = _StreamStart(self.transport.host, self, frame)
        to = self._recipient(frame.path, frame.uid, frame.sender)
        self._deliver(to, frame.value, None, start)

    def _stream_item(self, frame: protocol.StreamItem) -> None:
        """Hand an ITEM frame's items to their reader in order (one that does not decode
        ends the stream there with :class:`UndecodableReply`)."""
        stream = self.readers.get(frame.sid)
        if stream is None:  # dropped by its reader this instant: its CANCEL is queued
            self.transport.counters["stream_frames_stray"] += 1
            return
        items = protocol.decode_values(frame.values)
        stream.emit_all(items)
        if len(items) < len(frame.values):
            try:
                protocol.decode_value(frame.values[len(items)])
            except wire.WireError as exc:
                self.transport.counters["undecodable_messages"] += 1
                link = stream.link  # (ending the stream forgets it)
                stream.end(UndecodableReply(f"stream item from {self.node}: {exc}"))
                if link is not None:  # the producer stops; the items before are read
                    link.cancel()

    def _stream_more(self, frame: protocol.StreamMore) -> None:
        producer = self.producers.get(frame.sid)
        if producer is not None:
            producer.grant(frame.n)

    def _stream_end(self, frame: protocol.StreamEnd) -> None:
        stream = self.readers.pop(frame.sid, None)
        if stream is not None:
            stream.end(protocol.decode_stream_end(frame))

    def _stream_cancel(self, frame: protocol.StreamCancel) -> None:
        producer = self.producers.pop(frame.sid, None)
        if producer is not None:
            producer.cancel()

    def _dropped(self, event: protocol.Dropped) -> None:
        self.transport.counters[event.counter] += 1

    _EVENTS: dict[type, Callable[[Connection, Any], None]] = {
        protocol.Hello: _hello,
        protocol.Tell: _tell,
        protocol.TellRun: _tell,
        protocol.Ask: _ask,
        protocol.Answered: _answered,
        protocol.Credit: _credit,
        protocol.Watch: _watch_frame,
        protocol.Unwatch: _watch_frame,
        protocol.Terminated: _watch_frame,
        protocol.StreamOpen: _stream_open,
        protocol.StreamItem: _stream_item,
        protocol.StreamMore: _stream_more,
        protocol.StreamEnd: _stream_end,
        protocol.StreamCancel: _stream_cancel,
        protocol.Dropped: _dropped,
    }
    """What the driver does with each event of the session."""

    def _recipient(self, path: str, uid: int, sender: list[Any] | None) -> _Recipient:
        """Where a request to ``path#uid`` goes, and its sender's ref (found once for all
        the values of a TELL; the last one found for a running local actor is kept, for
        requests in a row to one actor from one sender)."""
        last = self._last_recipient
        if (
            last is not None
            and last.uid == uid
            and last.path == path
            and self._last_sender == sender
            and last.endpoint.state is RUNNING  # type: ignore[union-attr]
        ):
            return last
        host = self.transport.host
        try:
            sender_ref = None if sender is None else host.resolve(*sender)
        except wire.WireError as exc:
            return _Recipient(path, uid, None, None, exc)
        cell = None if path == SYSTEM_PATH else host.local_endpoint(path, uid, self.node)
        recipient = _Recipient(path, uid, sender_ref, cell, None)
        if type(cell) is ActorCell:
            self._last_recipient, self._last_sender = recipient, sender
            self._last_address = protocol.wire_address(path, uid, sender)
        return recipient

    def _deliver(
        self, to: _Recipient, value: Any, corr: int | None, reply: Reply | None = None
    ) -> None:
        """Put a TELL's value, an ASK (``corr``) or a STREAM (``reply``) into its mailbox
        (or hold it while that mailbox is full)."""
        session = self.session
        error = to.error
        if error is None:
            try:
                msg = protocol.decode_value(value)
            except wire.WireError as exc:
                error = exc
        if error is not None:
            self.transport.counters["undecodable_messages"] += 1
            self._answer(corr, reply, outcome.Error(error))
            session.delivered()
            return
        sender_ref, cell = to.sender, to.endpoint
        if cell is None:  # the system's path, or no such actor here
            self._deliver_nowhere(to, msg, corr, reply)
            return
        held = self.held.get(cell) if self.held else None
        # an actor cell that cannot answer at once (its receive can wait) is not asked to
        actor = cell if type(cell) is ActorCell else None
        if (
            held is None
            and (corr is not None or reply is not None)
            and (actor is None or actor._direct is not None)
        ):
            now = cell.ask_now(msg, sender_ref)
            if now is not None:
                self._answer(corr, reply, now)
                session.delivered()
                return
        if corr is not None:
            reply = _RemoteReply(self._stats, to, self, corr)
        else:
            actor = None
        parked = actor if actor is not None and actor._parked else None
        if held is None and cell.offer(msg, sender_ref, reply):
            session.delivered()
            if parked is not None and not parked._parked:  # woke it: it may read
                self._woke = parked._task
        elif self.held_count >= session.peer_window // 2:
            self.transport.counters["refused_full"] += 1
            self.transport.host.dead_letters.publish(cell.ref, msg, sender_ref)
            if reply is not None:
                reply.set(outcome.Error(MailboxFull(f"mailbox of {cell.ref} is full")))
            session.delivered()
        else:
            if held is None:
                held = self.held[cell] = deque()
                assert self._nursery is not None
                self._nursery.start_soon(self._deliver_held, cell, held)
            held.append((msg, sender_ref, reply))
            self.held_count += 1

    def _deliver_nowhere(
        self, to: _Recipient, msg: Any, corr: int | None, reply: Reply | None
    ) -> None:
        """:meth:`_deliver` of a request to the system's path (served here), or to an
        actor that does not live here (a dead letter; an ask fails)."""
        host = self.transport.host
        path = to.path
        if path == SYSTEM_PATH:
            peer = self.node
            assert peer is not None  # (requests come after the HELLO)
            refusal = self.transport.refusal("spawn", self.quota_key) if host.spawns(msg) else None
            result = (
                outcome.Error(refusal)
                if refusal is not None
                else outcome.capture(host.serve_request, msg, peer)
            )
            if corr is not None or reply is not None:
                self._answer(corr, reply, result)
            elif isinstance(result, outcome.Error):  # a tell to the system: nobody to tell
                self.transport.counters["system_tells_failed"] += 1
        else:
            host.dead_letters.publish(host.resolve(host.name, path, to.uid), msg, to.sender)
            if corr is not None or reply is not None:
                error = ActorStopped(f"no actor {path}#{to.uid} on {host.name}")
                self._answer(corr, reply, outcome.Error(error))
        self.session.delivered()

    def _answer(self, corr: int | None, reply: Reply | None, result: outcome.Outcome[Any]) -> None:
        """Answer an ASK (``corr``) or a STREAM."""
        if corr is not None:
            self.send_reply(corr, result)
        elif reply is not None:
            reply.set(result)

    async def _deliver_held(self, cell: Endpoint, held: deque[Held]) -> None:
        """Deliver one actor's held requests in order, each waiting for room."""
        try:
            while held:
                msg, sender, reply = held[0]
                await cell.put(msg, sender, reply)
                held.popleft()
                self.held_count -= 1
                self.session.delivered()
                self.session.return_credit()
                self.send_soon()
        finally:
            del self.held[cell]

    # -- closing ---------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """End the connection for ``reason`` (the first reason given is kept)."""
        if not self.session.closed:
            self.reason = self.reason or reason
            self._scope.cancel()

    def _close(self) -> None:
        self.transport.receiving.release(self)
        pending = self.session.close()
        self._scope.cancel()
        self._credit_event.set()
        error = NodeDown(f"connection to {self.node} closed: {self.reason}")
        for reply in pending:
            reply.set(outcome.Error(error))
        for stream in list(self.readers.values()):
            stream.end(error)
        self.readers.clear()
        for producer in self.producers.values():
            producer.cancel()
        self.producers.clear()
        for held in self.held.values():
            for _msg, _sender, remote_reply in held:
                self.transport.counters["dropped_in_flight"] += 1
                if remote_reply is not None:
                    remote_reply.set(outcome.Error(error))
            held.clear()
        self.held_count = 0


class ActorTransport:
    """All of one node's actor connections, its listener, and remote death watch."""

    def __init__(
        self, host: Host, incarnation: int, config: TransportConfig, network: ActorNetwork = TCP
    ) -> None:
        self.host = host
        self.incarnation = incarnation
        self.config = config
        self.network = network
        self.counters: collections.Counter[str] = collections.Counter()
        self.connections: dict[str, Connection] = {}
        """The connection each peer's messages are sent on."""
        self._all: set[Connection] = set()
        self._failures: dict[str, tuple[int, float]] = {}
        self._corr = count(1)
        self._watchers: dict[ActorRef, set[Watcher]] = {}
        self._proxies: dict[str, dict[ActorRef, _WatchProxy]] = {}
        self.keyring: Keyring | None = None
        """The cluster keyring: with one, every connection starts with the key handshake
        and carries sealed frames (set by ``open_system`` from the membership config)."""
        self.label = ""
        self.allowed: Callable[[str], bool] | None = None
        """Whether an inbound connection's source IP may connect (the membership config's
        ``cidrs_allowed``, set by ``open_system``); None admits every source."""
        self.tls: TlsConfig | None = None
        """Mutual TLS for every connection, in place of the key handshake (set by
        ``open_system`` from the membership config)."""
        self.tls_refused = OncePerPeer("refusing actor connections (TLS)", log)
        self.version_refused = OncePerPeer(
            "refusing actor connections (no protocol version in common)", log
        )
        self.unversioned: dict[str, None] = {}
        """Nodes that answered a versioned HELLO without versions (code from before them):
        dialled without versions from then on (see :meth:`met_unversioned`)."""
        self._unversioned_logged = OncePerPeer(
            "an actor peer on code from before protocol versions (dialling it again without)",
            log,
        )
        self._inbound: collections.Counter[str] = collections.Counter()
        self._newcomers = wire.Newcomers[Connection](
            config.max_handshakes, config.max_handshakes_per_address
        )
        self.receiving = wire.ReceiveBudget[Connection](config.max_receiving_bytes)
        """Bytes each connection holds in a frame still arriving, within the config's sum."""
        self._spawn_tokens: dict[str, tuple[float, float]] = {}

    # -- listening -------------------------------------------------------------------------

    async def serve(self, listener: trio.abc.Listener[Any]) -> None:
        """Accept peers' connections until cancelled (the listener is closed after)."""
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:  # e.g. out of file descriptors: back off, go on
                    self.counters["accept_errors"] += 1
                    log.warning("actor listener: %s", exc)
                    await trio.sleep(0.1)
                    continue
                source = _source_host(stream)
                if self.allowed is not None and source is not None and not self.allowed(source):
                    self.counters["not_allowed"] += 1  # before any handshake or read
                    await trio.aclose_forcefully(stream)
                    continue
                if not self._admit(source):
                    self.counters["connections_refused"] += 1
                    await trio.aclose_forcefully(stream)
                    continue
                self.counters["accepted"] += 1
                connection = Connection(self, None, None)
                connection.peer_host = source
                self._inbound[source or ""] += 1
                self._all.add(connection)
                displaced = self._newcomers.arrive(connection, source or "")
                if displaced is not None:
                    self.counters["handshakes_displaced"] += 1
                    displaced.close("displaced: its handshake or HELLO took longest")
                self.host.nursery.start_soon(connection.run, stream)

    def _admit(self, source: str | None) -> bool:
        """Room for one more inbound connection, in all and from ``source``."""
        config = self.config
        return (
            self._inbound.total() < config.max_connections
            and self._inbound[source or ""] < config.max_connections_per_address
        )

    def plausible(self, node: str, source: str | None) -> bool:
        """May an inbound connection from ``source`` speak for ``node``?  Yes unless
        membership knows ``node`` at another IP address."""
        if not self.config.check_peer_address or source is None:
            return True
        known = self.host.actor_address(node)
        return known is None or not _is_ip(known[0]) or known[0] == source

    def refusal(self, operation: str, peer: str | None) -> PermissionError | None:
        """Why ``peer``'s remote ``operation`` ("spawn" or "watch") is refused, if it is:
        untrusted mode, or (spawn) its quota is used up."""
        config = self.config
        if config.untrusted and operation not in config.trusted:
            self.counters[f"refused_{operation}"] += 1
            return PermissionError(f"remote {operation} is refused here (untrusted mode)")
        if operation != "spawn":
            return None
        now, key = trio.current_time(), peer or ""
        burst, rate = float(config.spawn_burst), config.spawn_rate
        if key not in self._spawn_tokens and len(self._spawn_tokens) >= MAX_SPAWN_QUOTAS:
            self._spawn_tokens = {  # forget the quotas that have filled up again
                k: (t, at)
                for k, (t, at) in self._spawn_tokens.items()
                if t + (now - at) * rate < burst
            }
        tokens, since = self._spawn_tokens.get(key, (burst, now))
        tokens = min(burst, tokens + (now - since) * rate)
        if tokens < 1 or len(self._spawn_tokens) >= MAX_SPAWN_QUOTAS:
            self.counters["refused_spawn"] += 1
            return PermissionError(f"remote spawn quota of {peer} is used up; try later")
        self._spawn_tokens[key] = (tokens - 1, now)
        return None

    def close_all(self) -> None:
        """Close every connection: the system is stopping."""
        for connection in list(self._all):
            connection.close("system stopping")

    # -- connections -----------------------------------------------------------------------

    def connection(self, node: str) -> Connection:
        """The open connection to ``node``, dialling it if there is none."""
        connection = self.connections.get(node)
        if connection is not None and not connection.closed:
            return connection
        _failures, retry_at = self._failures.get(node, (0, -math.inf))
        if trio.current_time() < retry_at:
            raise NodeDown(f"{node} is unreachable (next connection attempt in a moment)")
        address = self.host.actor_address(node)
        if address is None:
            raise NodeDown(f"{node} is not a live member with an actor port")
        connection = Connection(self, node, address)
        self.connections[node] = connection
        self._all.add(connection)
        self.counters["dials"] += 1
        self.host.nursery.start_soon(connection.run, None)
        return connection

    def met_unversioned(self, node: str, peer: Address, detail: str) -> None:
        """``node`` answered our versioned HELLO without versions, so it refuses ours:
        dial it without versions from now on (at most :data:`MAX_UNVERSIONED` nodes, the
        oldest forgotten first; one is forgotten when it goes down or says a versioned
        HELLO)."""
        remember_unversioned(self.unversioned, node)
        self._unversioned_logged(peer, detail)

    def dial_failed(self, connection: Connection) -> None:
        """A dial to the connection's node failed: messages to it fail fast for a backoff
        doubling from ``backoff_min`` to ``backoff_max``."""
        assert connection.node is not None
        failures, _ = self._failures.get(connection.node, (0, 0.0))
        delay = min(self.config.backoff_max, self.config.backoff_min * 2**failures)
        self._failures[connection.node] = (failures + 1, trio.current_time() + delay)
        self.counters["dial_failures"] += 1

    def dial_succeeded(self, connection: Connection) -> None:
        """A dial succeeded: the node's backoff is over."""
        assert connection.node is not None
        self._failures.pop(connection.node, None)

    def identified(self, connection: Connection) -> None:
        """The peer said who it is: use this connection for its node unless one is open."""
        assert connection.node is not None
        self._newcomers.proven(connection)
        current = self.connections.get(connection.node)
        if current is None or current.closed:
            self.connections[connection.node] = connection

    def connection_closed(self, connection: Connection) -> None:
        """Forget a closed connection (its inbound slot, and its node's entry if it held it)."""
        self._all.discard(connection)
        self._newcomers.proven(connection)
        if connection.address is None:
            key = connection.peer_host or ""
            self._inbound[key] -= 1
            if self._inbound[key] <= 0:
                del self._inbound[key]
        if connection.node is not None and self.connections.get(connection.node) is connection:
            del self.connections[connection.node]
        if (
            connection.node is not None
            and connection.stranger
            and not any(c.node == connection.node for c in self._all)
        ):
            self._forget_watches(connection.node)  # a stranger's watches end with it

    def node_down(self, node: str, reason: str) -> None:
        """``node`` went DOWN or LEFT: fail what waits on it, tell its watchers, forget it."""
        for connection in list(self._all):
            if connection.node == node:
                connection.close(f"{node} is {reason}")
        self._failures.pop(node, None)
        self.unversioned.pop(node, None)
        self._forget_watches(node)
        for ref in [ref for ref in self._watchers if ref.node == node]:
            for watcher in self._watchers.pop(ref):
                watcher.notify_terminated(ref, f"node {node} {reason}")

    # -- sending ---------------------------------------------------------------------------

    def tell(self, target: RemoteTarget, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        """A tell on the connection to the target's node, dialled if need be (the
        target keeps that connection for its next tells)."""
        value = protocol.value_bytes(msg)
        try:
            connection = target.attach(self.connection(target.node))
            if connection.try_tell(target.address(sender), value):
                return READY
        except NodeDown:
            self._undeliverable(target, msg, sender)
            return trio.lowlevel.checkpoint()
        return self.tell_later(connection, target, value, msg, sender)

    async def tell_later(
        self,
        connection: Connection,
        target: RemoteTarget,
        value: bytes,
        msg: Any,
        sender: ActorRef | None,
    ) -> None:
        """A tell that waits for credit (a dead letter if the connection closes first)."""
        try:
            await connection.tell(target.address(sender), value)
        except NodeDown:
            self._undeliverable(target, msg, sender)

    def tell_nowait(self, target: RemoteTarget, msg: Any, sender: ActorRef | None) -> None:
        value = protocol.value_bytes(msg)
        try:
            if self.connection(target.node).try_tell(target.address(sender), value):
                return
        except NodeDown:
            self._undeliverable(target, msg, sender)
            return
        raise MailboxFull(f"no credit for {target.ref}: its node is not keeping up")

    def _undeliverable(self, target: RemoteTarget, msg: Any, sender: ActorRef | None) -> None:
        self.counters["undeliverable"] += 1
        self.host.dead_letters.publish(target.ref, msg, sender)

    async def ask(
        self, target: RemoteTarget, msg: Any, sender: ActorRef | None, timeout: float | None
    ) -> Any:
        value = protocol.value_bytes(msg)
        host = self.host
        started = host.now()
        connection = target._connection
        if connection is None or connection.session.closed:
            connection = target.attach(self.connection(target.node))
        session = connection.session
        corr = next(self._corr)
        span, trace = (
            tracing.start_client(target.node, target.path) if tracing.enabled() else _UNTRACED
        )
        address = target._address if sender is target._address_sender else target.address(sender)
        frame = protocol.ask_frame(corr, address, value, trace)
        try:
            if session.try_request(frame):  # (open: checked above, nothing ran since)
                host.flushes[connection._write_now] = None
            else:
                deadline = math.inf if timeout is None else started + timeout
                with trio.move_on_at(deadline) as scope:
                    await connection.request(frame)
                if scope.cancelled_caught:
                    raise MailboxFull(f"no credit to reach {target.ref} within {timeout} s")
            holder = connection._holder
            if holder is not None:
                if holder is current_task():  # the ask goes out now, the rest meanwhile
                    step_end.run_flushes(host.flushes)
                else:
                    holder = None
            # expected before this step ends: only a step after it can read the reply
            reply = Reply(host.stats, target.ref)
            session.pending[corr] = reply  # (session.expect, one call less)
            if timeout is not None:
                host.ask_deadlines.add(started + timeout, reply)
            if holder is not None:
                return await connection.read_for(reply, corr, holder)
            return await reply.wait()
        finally:
            if corr in session.pending:  # (an answer took it out)
                session.forget(corr)
            host.stats.remote_asks.observe(host.now() - started)
            if span is not None:
                span.end()

    def stream_opener(
        self, target: RemoteTarget, msg: Any, sender: ActorRef | None
    ) -> Callable[[ReplyStream], Awaitable[None]]:
        """How a :class:`ReplyStream` from ``target`` opens: a STREAM request, sent once
        there is credit for it."""

        async def open_(stream: ReplyStream) -> None:
            value = protocol.encode_value(msg)
            connection = self.connection(target.node)
            sid = next(self._corr)
            frame = protocol.encode_stream(
                sid, target.path, target.uid, _sender(sender), value, stream.window
            )
            await connection.request(frame)
            connection.read_stream(sid, stream)

        return open_

    def start_ask(
        self,
        target: RemoteTarget,
        msg: Any,
        sender: ActorRef | None,
        timeout: float | None,
        notify: Notify,
    ) -> Reply | None:
        """:meth:`ask` without a task (:meth:`ActorRef.start_ask`); None when there is no
        credit to send it now."""
        started = trio.current_time()
        try:
            value = protocol.value_bytes(msg)
            connection = self.connection(target.node)
        except (Unsendable, NodeDown) as exc:
            return self.failed_ask(target, exc, notify)
        session = connection.session
        if session.credit <= 0:
            return None
        corr = next(self._corr)
        span, trace = (
            tracing.start_client(target.node, target.path) if tracing.enabled() else _UNTRACED
        )

        def finish(result: outcome.Outcome[Any]) -> None:
            session.forget(corr)
            self.host.stats.remote_asks.observe(trio.current_time() - started)
            if span is not None:
                span.end()
            notify(result)

        reply = Reply(self.host.stats, target.ref, finish)
        session.expect(corr, reply)
        connection.try_request(protocol.ask_frame(corr, target.address(sender), value, trace))
        if timeout is not None:
            self.host.ask_deadlines.add(started + timeout, reply)
        return reply

    def failed_ask(self, target: RemoteTarget, error: Exception, notify: Notify) -> Reply:
        """The reply slot of an ask from :meth:`start_ask` that failed before it was sent
        (``notify`` has been called with ``error``)."""
        failed = Reply(self.host.stats, target.ref, notify)
        failed.set(outcome.Error(error))
        return failed

    async def request(self, node: str, request: Any, timeout: float | None) -> Any:
        """Ask ``node``'s system itself (remote spawn)."""
        return await self.ask(RemoteTarget(self, node, SYSTEM_PATH, 0), request, None, timeout)

    def send_control(
        self, node: str, frame: protocol.Watch | protocol.Unwatch | protocol.Terminated
    ) -> None:
        """Send a watch-related frame to ``node`` (lost, like a tell, if it is unreachable)."""
        try:
            self.connection(node).send_control(frame)
        except NodeDown:
            self.counters["undeliverable"] += 1

    # -- death watch -----------------------------------------------------------------------

    def resolve(self, node: str, path: str, uid: int) -> ActorRef:
        """A ref to the actor ``path#uid`` on another node."""
        return RemoteTarget(self, node, path, uid).ref

    def watch(self, target: RemoteTarget, watcher: Watcher) -> None:
        """Tell ``watcher`` when the remote actor stops (at once if its node is not a member);
        one WATCH frame per watched actor, however many watch it here."""
        watchers = self._watchers.get(target.ref)
        if watchers is None:
            if self.host.actor_address(target.node) is None:
                watcher.notify_terminated(target.ref, f"node {target.node} is not a member")
                return
            watchers = self._watchers[target.ref] = set()
            self.send_control(target.node, protocol.Watch(target.path, target.uid))
        watchers.add(watcher)

    def unwatch(self, target: RemoteTarget, watcher: Watcher) -> None:
        """Stop telling ``watcher``; the last one gone sends UNWATCH."""
        watchers = self._watchers.get(target.ref)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[target.ref]
                self.send_control(target.node, protocol.Unwatch(target.path, target.uid))

    def _forget_watches(self, node: str) -> None:
        """Drop ``node``'s remote watches of local actors (from the actors too)."""
        for ref, proxy in self._proxies.pop(node, {}).items():
            cell = self.host.local_cell_at(ref.path, ref.uid)
            if cell is not None:
                cell.remove_watcher(proxy)

    def forget_proxy(self, node: str, ref: ActorRef) -> None:
        """A local actor watched from ``node`` as ``ref`` has stopped: drop its watch proxy."""
        proxies = self._proxies.get(node)
        if proxies is not None:
            proxies.pop(ref, None)

    def control(
        self,
        connection: Connection,
        frame: protocol.Watch | protocol.Unwatch | protocol.Terminated,
    ) -> None:
        """WATCH, UNWATCH and TERMINATED frames from ``connection``'s peer."""
        node = connection.node
        assert node is not None
        path, uid = frame.path, frame.uid
        if isinstance(frame, protocol.Terminated):
            ref = self.resolve(node, path, uid)
            for watcher in self._watchers.pop(ref, ()):
                watcher.notify_terminated(ref, frame.reason)
            return
        if self.refusal("watch", node) is not None:
            return
        cell = self.host.local_cell_at(path, uid)
        proxies = self._proxies.setdefault(node, {})
        if isinstance(frame, protocol.Watch):
            if cell is None:
                self.send_control(node, protocol.Terminated(path, uid, "not running"))
            elif cell.ref not in proxies:
                proxy = proxies[cell.ref] = _WatchProxy(self, node)
                cell.add_watcher(proxy)
        elif cell is not None:  # UNWATCH
            old = proxies.pop(cell.ref, None)
            if old is not None:
                cell.remove_watcher(old)
