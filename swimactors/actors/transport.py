"""Actor messages between nodes over TCP: one connection per node pair, many refs on it.

Each connection carries 4-byte length-prefixed CBOR frames (:mod:`.remote`) both ways.
Senders append encoded frames to the connection's buffer and one writer task sends
whatever has accumulated in a single ``send_all`` (so a burst of tells shares a syscall).
Asks are multiplexed by correlation id; replies go back on the connection the ask came in.

Flow control is credit-based: a node may have at most ``window`` requests (tells and asks)
that the peer has not yet put into a mailbox; the peer returns credit as it delivers.  A
full remote mailbox therefore stops the credit, which makes ``tell`` wait and
``tell_nowait`` raise :class:`MailboxFull`, and nothing grows without bound on either side.
Delivery is at-most-once: a message in flight when a connection breaks is lost, and the
asks waiting on that connection fail with :class:`NodeDown` at once.

A frame that does not parse, or announces more than ``max_frame`` bytes, is counted and its
connection dropped; other connections are untouched.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import socket
import struct
from collections import deque
from collections.abc import Awaitable
from itertools import count
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import outcome
import trio

from .. import wire
from ..membership.types import format_address
from .cell import ActorCell
from .errors import ActorStopped, MailboxFull, NodeDown, UndecodableReply, Unsendable
from .message import encode_ref, ref_resolver
from .ref import READY, ActorRef, Watcher
from .remote import (
    ASK,
    CREDIT,
    ERROR,
    HELLO,
    REPLY,
    TELL,
    TERMINATED,
    UNWATCH,
    WATCH,
    decode_error,
    decode_value,
    encode_error,
    encode_value,
    parse,
)
from .reply import Reply

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

log = logging.getLogger("swimactors.actors.transport")

Address = tuple[str, int]
SYSTEM_PATH = "$system"
"""The path of a node's own request handler (remote spawn)."""


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

    def __attrs_post_init__(self) -> None:
        if self.window < 1 or self.max_frame < 64:
            raise ValueError("window must be >= 1 and max_frame >= 64")


async def bind_listener(host: str, port: int) -> trio.SocketListener:
    """The actor port's TCP listener (port 0: any free one); read its port from
    ``listener.socket.getsockname()``."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    for extra in listeners[1:]:
        await extra.aclose()
    return listeners[0]


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
        listener = await bind_listener(host, port)
        return listener, int(listener.socket.getsockname()[1])

    async def connect(self, address: Address) -> trio.abc.Stream:
        return await trio.open_tcp_stream(*address)


TCP = TcpNetwork()


class Host(Protocol):
    """What the transport needs from the system it serves."""

    name: str
    nursery: trio.Nursery
    stats: Stats
    dead_letters: DeadLetters
    ask_deadlines: AskDeadlines

    def local_cell_at(self, path: str, uid: int) -> ActorCell | None: ...

    def resolve(self, node: str, path: str, uid: int) -> ActorRef: ...

    def actor_address(self, node: str) -> Address | None: ...

    def serve_request(self, request: Any) -> Any: ...


class RemoteTarget:
    """The delivery target of a ref to an actor on another node."""

    __slots__ = ("_prefix", "_prefix_sender", "node", "path", "ref", "transport", "uid")

    def __init__(self, transport: ActorTransport, node: str, path: str, uid: int) -> None:
        self.transport = transport
        self.node = node
        self.path = path
        self.uid = uid
        self.ref = ActorRef(node, path, uid, self)
        self._prefix = b""
        self._prefix_sender: ActorRef | None = None

    def tell_frame(self, msg: Any, sender: ActorRef | None) -> bytes:
        """The TELL frame for ``msg``: the CBOR of everything but the message is cached
        per sender, since a sender usually tells the same target many times."""
        if not self._prefix or sender != self._prefix_sender:
            head = [TELL, self.path, self.uid, _sender(sender)]
            self._prefix = wire.cbor_array_header(5) + b"".join(map(wire.dumps, head))
            self._prefix_sender = sender
        body = self._prefix + wire.dumps(encode_value(msg))
        return _LENGTH.pack(len(body)) + body

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        return self.transport.tell(self, msg, sender)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        self.transport.tell_nowait(self, msg, sender)

    def ask(self, msg: Any, sender: ActorRef | None, timeout: float | None) -> Any:
        return self.transport.ask(self, msg, sender, timeout)

    def add_watcher(self, watcher: Watcher) -> None:
        self.transport.watch(self, watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.transport.unwatch(self, watcher)


class _RemoteReply(Reply):
    """The reply slot of an ask that came from another node: filling it sends the answer."""

    __slots__ = ("_connection", "_corr")

    def __init__(self, host: Host, recipient: object, connection: Connection, corr: int) -> None:
        super().__init__(host.stats, recipient)
        self._connection = connection
        self._corr = corr

    def set(self, result: outcome.Outcome[Any]) -> None:
        if self.result is None:
            self.result = result
            self._connection.send_reply(self._corr, result)


_LENGTH = struct.Struct(">I")
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


def _frame(items: list[Any]) -> bytes:
    return wire.encode_frame(wire.dumps(items))


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
        self.transport.send_control(self.node, [TERMINATED, ref.path, ref.uid, reason])


def _sole_cause(exc: BaseException) -> BaseException:
    """``exc`` without the exception groups of nurseries that had one failure."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class Connection:
    """One TCP connection to one peer node: its writer buffer, credit and pending asks."""

    def __init__(
        self, transport: ActorTransport, node: str | None, address: Address | None
    ) -> None:
        self.transport = transport
        self.node = node
        """The peer's name (None for an inbound connection until its HELLO arrives)."""
        self.address = address
        self.stream: trio.abc.Stream | None = None
        self.closed = False
        self.reason = ""
        self.credit = transport.config.window
        self.peer_window = transport.config.window
        self.owed = 0
        """Requests delivered here whose credit the peer has not been given back yet."""
        self.pending: dict[int, Reply] = {}
        self.backlog: deque[tuple[ActorCell, Any, ActorRef | None, Reply | None]] = deque()
        self.last_active = trio.current_time()
        self._out = bytearray()
        self._writer: trio.lowlevel.Task | None = None
        self._busy = False
        """The writer task is inside ``send_all``."""
        self._raw: socket.socket | None = None
        """A duplicate of the socket for non-blocking sends from other tasks (Linux)."""
        self._credit_event = trio.Event()
        self._delivering = False
        self._scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self.append(_frame([HELLO, transport.host.name, transport.incarnation, self.credit]))

    # -- sending ---------------------------------------------------------------------------

    def append(self, frame: bytes, wake: bool = True) -> None:
        """Queue bytes; ``wake`` the writer, else the caller will :meth:`write_now`."""
        self._out += frame
        if wake:
            self._wake_writer()

    def _wake_writer(self) -> None:
        writer = self._writer
        if writer is not None and not self._busy:
            self._writer = None
            trio.lowlevel.reschedule(writer)

    def write_now(self) -> None:
        """Send what is queued with one non-blocking ``send`` from this task, sparing a
        switch to the writer task; whatever the socket does not take is the writer's."""
        raw = self._raw
        if raw is not None and self._out and not self._busy:
            try:
                sent = raw.send(self._out, _DONTWAIT)
            except OSError:  # full (BlockingIOError) or broken: the writer finds out which
                sent = 0
            if sent:
                del self._out[:sent]
                counters = self.transport.counters
                counters["writes"] += 1
                counters["bytes_sent"] += sent
        if self._out:
            self._wake_writer()

    def try_request(self, frame: bytes, wake: bool = True) -> bool:
        """Queue a request if there is credit for it."""
        if self.closed:
            raise NodeDown(f"connection to {self.node} closed: {self.reason}")
        if self.credit > 0:
            self.credit -= 1
            self.append(frame, wake)
            return True
        return False

    async def request(self, frame: bytes) -> None:
        """Queue a request, waiting for credit (the peer delivering earlier ones)."""
        while not self.try_request(frame):
            await self._credit_event.wait()

    def send_reply(self, corr: int, result: outcome.Outcome[Any], wake: bool = True) -> None:
        if self.closed:
            return
        if isinstance(result, outcome.Value):
            try:
                items = [REPLY, corr, encode_value(result.value)]
            except Unsendable as exc:
                items = encode_error(corr, exc)
        else:
            assert isinstance(result, outcome.Error)
            items = encode_error(corr, result.error)
        self.append(_frame(items), wake)

    # -- the connection's tasks ----------------------------------------------------------

    async def run(self, stream: trio.abc.Stream | None) -> None:
        transport = self.transport
        ref_resolver.set(transport.host.resolve)  # whoever started us, decode for our system
        try:
            with self._scope:
                if stream is None:
                    stream = await self._dial()
                self.stream = stream
                if isinstance(stream, trio.SocketStream):
                    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
                    if _DONTWAIT:
                        self._raw = socket.socket(fileno=os.dup(stream.socket.fileno()))
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._write, stream)
                    nursery.start_soon(self._watch_idle)
                    await self._read(stream)
                    nursery.cancel_scope.cancel()
        except Exception as raised:
            exc = _sole_cause(raised)  # the reader's error comes out of the nursery wrapped
            if isinstance(exc, OSError | trio.BrokenResourceError | trio.ClosedResourceError):
                self.reason = self.reason or f"{type(exc).__name__}: {exc}"
            else:  # a bug here must cost one connection, not the system
                transport.counters["connection_errors"] += 1
                self.reason = self.reason or f"internal error: {exc!r}"
                log.exception("actor connection to %s failed", self.node or self.address)
        finally:
            self._close()
            if self._raw is not None:
                self._raw.close()
                self._raw = None
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)
            transport.connection_closed(self)

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
        while True:
            if not self._out or self._busy:
                self._writer = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort_wait)
                continue
            await self._send(stream)

    async def _send(self, stream: trio.abc.Stream) -> None:
        """Send everything queued in one ``send_all`` (many frames per syscall)."""
        self._busy = True
        try:
            data, self._out = self._out, bytearray()
            self.transport.counters["writes"] += 1
            self.transport.counters["bytes_sent"] += len(data)
            await stream.send_all(data)
            self.last_active = trio.current_time()
        finally:
            self._busy = False

    def _abort_wait(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._writer = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def _read(self, stream: trio.abc.Stream) -> None:
        decoder = wire.FrameDecoder(self.transport.config.max_frame)
        counters = self.transport.counters
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                self.reason = "closed by the peer"
                return
            self.last_active = trio.current_time()
            counters["bytes_received"] += len(chunk)
            for frame in decoder.feed(chunk):
                try:
                    self._handle(parse(frame))
                except wire.WireError as exc:
                    return self._reject("rejected_malformed", str(exc))
                counters["frames_received"] += 1
            if decoder.error is not None:
                return self._reject("rejected_oversized", decoder.error)
            self._return_credit(force=not self.backlog)
            self.write_now()  # replies and credit, at once

    def _reject(self, counter: str, detail: str) -> None:
        self.transport.counters[counter] += 1
        self.reason = f"dropped: {detail}"
        log.warning("actor connection from %s dropped: %s", self.node or self.address, detail)

    async def _watch_idle(self) -> None:
        idle = self.transport.config.idle_timeout
        while True:
            await trio.sleep_until(self.last_active + idle)
            quiet = trio.current_time() - self.last_active >= idle
            if quiet and not self.pending and not self.backlog and not self._out:
                self.reason = "idle"
                self._scope.cancel()
                return
            if quiet:
                self.last_active = trio.current_time()

    # -- receiving -------------------------------------------------------------------------

    def _handle(self, items: list[Any]) -> None:
        kind = items[0]
        if self.node is None and kind != HELLO:
            raise wire.WireError("the first frame must be HELLO")
        if kind == TELL:
            _, path, uid, sender, value = items
            self._deliver(path, uid, sender, value, None)
        elif kind == ASK:
            _, corr, path, uid, sender, value = items
            self._deliver(path, uid, sender, value, corr)
        elif kind == REPLY:
            reply = self.pending.pop(items[1], None)
            if reply is not None:
                try:
                    reply.set(outcome.Value(decode_value(items[2])))
                except wire.WireError as exc:
                    reply.set(outcome.Error(UndecodableReply(f"from {self.node}: {exc}")))
        elif kind == ERROR:
            reply = self.pending.pop(items[1], None)
            if reply is not None:
                reply.set(outcome.Error(decode_error(items)))
        elif kind == CREDIT:
            self.credit = min(self.credit + items[1], self.transport.config.window)
            self._credit_event.set()
            self._credit_event = trio.Event()
        elif kind == HELLO:
            self._hello(items[1], items[3])
        else:
            self.transport.control(self, items)

    def _hello(self, node: str, window: int) -> None:
        if self.node is not None and self.node != node:
            raise wire.WireError(f"HELLO from {node!r} on a connection to {self.node!r}")
        self.peer_window = max(1, min(window, 65536))
        if self.node is None:
            self.node = node
            self.transport.inbound_identified(self)

    def _deliver(
        self, path: str, uid: int, sender: list[Any] | None, value: Any, corr: int | None
    ) -> None:
        """Put a TELL or ASK into its mailbox (or the backlog when the mailbox is full)."""
        host = self.transport.host
        reply: Reply | None = None
        try:
            msg = decode_value(value)
            sender_ref = None if sender is None else host.resolve(*sender)
        except wire.WireError as exc:
            self.transport.counters["undecodable_messages"] += 1
            if corr is not None:
                self.send_reply(corr, outcome.Error(exc), wake=False)
            self.owed += 1
            return
        if path == SYSTEM_PATH and corr is not None:
            self.send_reply(corr, outcome.capture(host.serve_request, msg), wake=False)
            self.owed += 1
            return
        cell = host.local_cell_at(path, uid)
        if corr is not None:
            reply = _RemoteReply(host, f"{path}#{uid}", self, corr)
        if corr is not None and cell is not None and not self.backlog:
            now = cell.ask_now(msg, sender_ref)
            if now is not None:
                self.send_reply(corr, now, wake=False)
                self.owed += 1
                return
        if cell is None:
            host.dead_letters.publish(host.resolve(host.name, path, uid), msg, sender_ref)
            if reply is not None:
                reply.set(outcome.Error(ActorStopped(f"no actor {path}#{uid} on {host.name}")))
            self.owed += 1
            return
        if self.backlog or not cell.offer(msg, sender_ref, reply):
            if len(self.backlog) >= self.peer_window:
                raise wire.WireError("the peer sent more requests than its window allows")
            self.backlog.append((cell, msg, sender_ref, reply))
            if not self._delivering:
                assert self._nursery is not None
                self._delivering = True
                self._nursery.start_soon(self._drain_backlog)
            return
        self.owed += 1

    async def _drain_backlog(self) -> None:
        """Deliver queued requests in order, each waiting for room in its mailbox."""
        try:
            while self.backlog:
                cell, msg, sender, reply = self.backlog[0]
                await cell.put(msg, sender, reply)
                self.backlog.popleft()
                self.owed += 1
                self._return_credit(force=not self.backlog)
                self._wake_writer()
        finally:
            self._delivering = False

    def _return_credit(self, force: bool) -> None:
        if self.owed and (force or self.owed >= max(1, self.peer_window // 4)):
            self.append(_frame([CREDIT, self.owed]), wake=False)
            self.owed = 0

    # -- closing ---------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        if not self.closed:
            self.reason = self.reason or reason
            self._scope.cancel()

    def _close(self) -> None:
        self.closed = True
        self._scope.cancel()
        self._credit_event.set()
        error = NodeDown(f"connection to {self.node} closed: {self.reason}")
        pending, self.pending = self.pending, {}
        for reply in pending.values():
            reply.set(outcome.Error(error))
        for _cell, _msg, _sender, remote_reply in self.backlog:
            self.transport.counters["dropped_in_flight"] += 1
            if remote_reply is not None:
                remote_reply.set(outcome.Error(error))
        self.backlog.clear()


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
                self.counters["accepted"] += 1
                connection = Connection(self, None, None)
                self._all.add(connection)
                self.host.nursery.start_soon(connection.run, stream)

    def close_all(self) -> None:
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

    def dial_failed(self, connection: Connection) -> None:
        assert connection.node is not None
        failures, _ = self._failures.get(connection.node, (0, 0.0))
        delay = min(self.config.backoff_max, self.config.backoff_min * 2**failures)
        self._failures[connection.node] = (failures + 1, trio.current_time() + delay)
        self.counters["dial_failures"] += 1

    def dial_succeeded(self, connection: Connection) -> None:
        assert connection.node is not None
        self._failures.pop(connection.node, None)

    def inbound_identified(self, connection: Connection) -> None:
        assert connection.node is not None
        current = self.connections.get(connection.node)
        if current is None or current.closed:
            self.connections[connection.node] = connection

    def connection_closed(self, connection: Connection) -> None:
        self._all.discard(connection)
        if connection.node is not None and self.connections.get(connection.node) is connection:
            del self.connections[connection.node]

    def node_down(self, node: str, reason: str) -> None:
        """``node`` went DOWN or LEFT: fail what waits on it, tell its watchers, forget it."""
        for connection in list(self._all):
            if connection.node == node:
                connection.close(f"{node} is {reason}")
        self._failures.pop(node, None)
        self._proxies.pop(node, None)
        for ref in [ref for ref in self._watchers if ref.node == node]:
            for watcher in self._watchers.pop(ref):
                watcher.notify_terminated(ref, f"node {node} {reason}")

    # -- sending ---------------------------------------------------------------------------

    def tell(self, target: RemoteTarget, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        frame = target.tell_frame(msg, sender)
        try:
            connection = self.connection(target.node)
            if connection.try_request(frame):
                return READY
        except NodeDown:
            self._undeliverable(target, msg, sender)
            return trio.lowlevel.checkpoint()
        return self._tell_later(connection, target, frame, msg, sender)

    async def _tell_later(
        self,
        connection: Connection,
        target: RemoteTarget,
        frame: bytes,
        msg: Any,
        sender: ActorRef | None,
    ) -> None:
        try:
            await connection.request(frame)
        except NodeDown:
            self._undeliverable(target, msg, sender)

    def tell_nowait(self, target: RemoteTarget, msg: Any, sender: ActorRef | None) -> None:
        frame = target.tell_frame(msg, sender)
        try:
            if self.connection(target.node).try_request(frame):
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
        value = encode_value(msg)
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        connection = self.connection(target.node)
        corr = next(self._corr)
        frame = _frame([ASK, corr, target.path, target.uid, _sender(sender), value])
        reply = Reply(self.host.stats, target.ref)
        connection.pending[corr] = reply
        try:
            if connection.try_request(frame, wake=False):
                connection.write_now()
            else:
                with trio.move_on_at(deadline) as scope:
                    await connection.request(frame)
                if scope.cancelled_caught:
                    raise MailboxFull(f"no credit to reach {target.ref} within {timeout} s")
            if timeout is not None and reply.pending:
                self.host.ask_deadlines.add(deadline, reply)
            return await reply.wait()
        finally:
            connection.pending.pop(corr, None)

    async def request(self, node: str, request: Any, timeout: float | None) -> Any:
        """Ask ``node``'s system itself (remote spawn)."""
        return await self.ask(RemoteTarget(self, node, SYSTEM_PATH, 0), request, None, timeout)

    def send_control(self, node: str, items: list[Any]) -> None:
        """Send a watch-related frame to ``node`` (lost, like a tell, if it is unreachable)."""
        try:
            self.connection(node).append(_frame(items))
        except NodeDown:
            self.counters["undeliverable"] += 1

    # -- death watch -----------------------------------------------------------------------

    def resolve(self, node: str, path: str, uid: int) -> ActorRef:
        return RemoteTarget(self, node, path, uid).ref

    def watch(self, target: RemoteTarget, watcher: Watcher) -> None:
        watchers = self._watchers.get(target.ref)
        if watchers is None:
            if self.host.actor_address(target.node) is None:
                watcher.notify_terminated(target.ref, f"node {target.node} is not a member")
                return
            watchers = self._watchers[target.ref] = set()
            self.send_control(target.node, [WATCH, target.path, target.uid])
        watchers.add(watcher)

    def unwatch(self, target: RemoteTarget, watcher: Watcher) -> None:
        watchers = self._watchers.get(target.ref)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[target.ref]
                self.send_control(target.node, [UNWATCH, target.path, target.uid])

    def forget_proxy(self, node: str, ref: ActorRef) -> None:
        proxies = self._proxies.get(node)
        if proxies is not None:
            proxies.pop(ref, None)

    def control(self, connection: Connection, items: list[Any]) -> None:
        """WATCH, UNWATCH and TERMINATED frames."""
        kind, path, uid = items[0], items[1], items[2]
        node = connection.node
        assert node is not None
        if kind == TERMINATED:
            ref = self.resolve(node, path, uid)
            for watcher in self._watchers.pop(ref, ()):
                watcher.notify_terminated(ref, items[3])
            return
        cell = self.host.local_cell_at(path, uid)
        proxies = self._proxies.setdefault(node, {})
        if kind == WATCH:
            if cell is None:
                self.send_control(node, [TERMINATED, path, uid, "not running"])
            elif cell.ref not in proxies:
                proxy = proxies[cell.ref] = _WatchProxy(self, node)
                cell.add_watcher(proxy)
        elif cell is not None:  # UNWATCH
            old = proxies.pop(cell.ref, None)
            if old is not None:
                cell.remove_watcher(old)
