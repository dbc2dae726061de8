"""Asks and tells from an asyncio program to actors on other nodes, on connections that
the asyncio loop drives itself.

Through the runtime thread, such an ask crosses threads twice and runs its side of the
peer protocol on that thread (docs/performance.md, Fronts: +41 us over the trio-native
ask).  Here the asyncio loop drives a :class:`~.protocol.PeerSession`, the same sans-IO
core the trio transport drives, on a TCP connection of its own to the actor's node: the
frame goes out from the asking task and the reply is read and settled on the asyncio
loop, with no thread crossed.  The connection is a client's: it says HELLO as
``<node>/asyncio`` (no member has that name, so the peer never sends it requests) and
takes only replies and credit; anything else drops it.  Every message from the program
to one node goes on it, so they arrive in the order sent.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import itertools
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from .. import wire
from . import protocol
from .errors import AskTimeout, MailboxFull, NodeDown, UndecodableReply
from .message import ref_resolver
from .ref import ActorRef
from .transport import TransportConfig, remember_unversioned

__all__ = ["AsyncPeers", "ResolveOnRuntime"]

Address = tuple[str, int]
Locate = Callable[[str], Awaitable[Address | None]]
"""Where a node's actor transport listens (None: not a live member with one)."""
Decode = Callable[[str, Any, "asyncio.Future[Any]"], None]
"""Settles a future with a reply value from a node that holds actor refs (the system
decodes it on its own thread)."""

CLIENT_SUFFIX = "/asyncio"
"""Appended to the node's name in the HELLO of its asyncio connections."""


class ResolveOnRuntime(Exception):
    """A reply holds an actor ref: only the system (on its own thread) can bind it."""


def _resolve_on_runtime(node: str, path: str, uid: int) -> ActorRef:
    raise ResolveOnRuntime


class AsyncPeers:
    """This program's asyncio connections to other nodes, one per node, dialled on first
    use; ``None`` from :meth:`link` means "go through the runtime thread" (the node is not
    a live member, or could not be reached: tried again after a backoff)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        name: str,
        incarnation: int,
        config: TransportConfig,
        locate: Locate,
        decode: Decode,
    ) -> None:
        self.loop = loop
        self.name = name
        self.incarnation = incarnation
        self.config = config
        self._locate = locate
        self._decode = decode
        self.links: dict[str, Link] = {}
        self._dialling: dict[str, asyncio.Task[Link | None]] = {}
        self._retry_at: dict[str, float] = {}
        self.unversioned: dict[str, None] = {}
        """Nodes on code from before protocol versions: dialled without them (as the
        transport's :meth:`~.transport.ActorTransport.met_unversioned`)."""
        self._closed = False
        self.counters: collections.Counter[str] = collections.Counter()

    async def link(self, node: str) -> Link | None:
        """The open connection to ``node``, dialled if there is none."""
        link = self.links.get(node)
        if link is not None:
            return link
        if self._closed or self.loop.time() < self._retry_at.get(node, -1.0):
            return None
        dialling = self._dialling.get(node)
        if dialling is None:
            dialling = self._dialling[node] = self.loop.create_task(self._dial(node))
        return await asyncio.shield(dialling)

    async def _dial(self, node: str) -> Link | None:
        try:
            sock = await self.connect(node)
            if sock is None:
                return None
            link = self.links[node] = Link(self, node, sock)
            return link
        finally:
            del self._dialling[node]

    async def connect(self, node: str) -> socket.socket | None:
        """A new TCP connection to ``node``'s actor transport; None if there is none to
        be had (then the node is tried again after a backoff) or the system stopped."""
        address = await self._locate(node)
        family = _family(address)
        if address is None or family is None:
            self._failed(node)
            return None
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            async with asyncio.timeout(self.config.connect_timeout):
                await self.loop.sock_connect(sock, address)
        except (OSError, TimeoutError):
            sock.close()
            self._failed(node)
            return None
        if self._closed:  # the system stopped meanwhile
            sock.close()
            return None
        self.counters["dials"] += 1
        return sock

    def _failed(self, node: str) -> None:
        self.counters["dial_failures"] += 1
        self._retry_at[node] = self.loop.time() + self.config.backoff_max

    def met_unversioned(self, node: str) -> None:
        """``node`` refuses a versioned HELLO: dial it without versions from now on."""
        remember_unversioned(self.unversioned, node)

    def node_down(self, node: str, reason: str) -> None:
        """``node`` went DOWN or LEFT: its asks fail with :class:`NodeDown` at once."""
        self.unversioned.pop(node, None)
        link = self.links.get(node)
        if link is not None:
            link.close(f"{node} is {reason}")

    def close(self) -> None:
        """The system is stopping: send what is queued (tells just made) and close every
        connection (asks still waiting fail)."""
        self._closed = True
        for link in list(self.links.values()):
            link._flush()
            link.close("system stopping")


class Link:
    """One asyncio connection to one node's actor transport."""

    def __init__(self, peers: AsyncPeers, node: str, sock: socket.socket) -> None:
        self._peers = peers
        self.node = node
        self._sock = sock
        self._loop = loop = peers.loop
        config = peers.config
        self.session: protocol.PeerSession[asyncio.Future[Any]] = protocol.PeerSession(
            peers.name + CLIENT_SUFFIX,
            peers.incarnation,
            config.window,
            config.max_frame,
            node,
            loop.time(),
            versioned=node not in peers.unversioned,
        )
        self._corrs = itertools.count(1)
        self._credit: asyncio.Event | None = None
        self._writing = False
        self._flush_soon = False
        self._redialling: asyncio.Task[None] | None = None
        """Dialling the peer again without versions (:meth:`_redial_unversioned`; kept
        here, since the loop holds its tasks weakly)."""
        self.reason: str | None = None
        """Why the connection closed (None while it is open)."""
        loop.add_reader(sock.fileno(), self._readable)
        self._idle = loop.call_later(config.idle_timeout / 2, self._check_idle)
        self._hello_due = loop.call_later(config.handshake_timeout, self._check_hello)
        self._flush()

    # -- asking and telling ----------------------------------------------------------------

    async def ask(
        self, address: bytes, msg: Any, recipient: ActorRef, timeout: float | None
    ) -> Any:
        """Send ``msg`` to the actor at ``address`` and return its reply (the trio ref's
        errors: :class:`AskTimeout`, :class:`NodeDown`, the remote :class:`ActorFailed`)."""
        value = protocol.value_bytes(msg)
        loop = self._loop
        corr = next(self._corrs)
        frame = protocol.ask_frame(corr, address, value)
        timer: asyncio.TimerHandle | None = None
        future: asyncio.Future[Any] = loop.create_future()
        if timeout is not None:
            timer = loop.call_later(timeout, _expire, future, recipient)
        session = self.session
        session.last_active = loop.time()
        try:
            while not session.try_request(frame):
                self._check_open()
                if not await self._credit_returned(future):
                    raise MailboxFull(f"no credit to reach {recipient} within {timeout} s")
            self._check_open()
            session.expect(corr, future)
            self._flush()
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            session.forget(corr)

    async def tell(self, address: bytes, msg: Any) -> bool:
        """Queue a tell, waiting for credit; False when the connection closed first (the
        caller hands the message to the runtime thread, which makes it a dead letter)."""
        value = protocol.value_bytes(msg)
        session = self.session
        session.last_active = self._loop.time()
        while not session.try_tell(address, value):
            if self.reason is not None:
                return False
            await self._credit_returned(None)
        if self.reason is not None:
            return False
        if not self._flush_soon:  # a burst of tells from one task step goes in one send
            self._flush_soon = True
            self._loop.call_soon(self._flush)
        return True

    def _check_open(self) -> None:
        if self.reason is not None:
            raise NodeDown(f"connection to {self.node} closed: {self.reason}")

    async def _credit_returned(self, future: asyncio.Future[Any] | None) -> bool:
        """Wait until the peer returns credit or the connection closes; False if
        ``future`` (an ask's) timed out first."""
        if self._credit is None:
            self._credit = asyncio.Event()
        credit = self._loop.create_task(self._credit.wait())
        waits: set[asyncio.Future[Any]] = {credit} if future is None else {credit, future}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            credit.cancel()
        return future is None or not future.done()

    # -- the socket ------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send what is queued: one non-blocking ``send``, the rest when writable."""
        self._flush_soon = False
        out = self.session.outgoing
        if not out or self._writing or self.reason is not None:
            return
        try:
            sent = self._sock.send(out)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.close(f"{type(exc).__name__}: {exc}")
            return
        self.session.sent(sent)
        if self.session.outgoing:
            if len(self.session.outgoing) > self._peers.config.max_queued_bytes:
                self.close(f"the peer does not read ({len(self.session.outgoing)} bytes queued)")
                return
            self._writing = True
            self._loop.add_writer(self._sock.fileno(), self._writable)

    def _writable(self) -> None:
        self._writing = False
        self._loop.remove_writer(self._sock.fileno())
        self._flush()

    def _readable(self) -> None:
        try:
            data = self._sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self.close(f"{type(exc).__name__}: {exc}")
            return
        if not data:
            self.close("closed by the peer")
            return
        session = self.session
        session.receive_data(data, self._loop.time())
        try:
            while (event := session.next_event()) is not None:
                if isinstance(event, protocol.Answered):
                    self._answered(event)
                elif isinstance(event, protocol.Credit):
                    if self._credit is not None:
                        self._credit.set()
                        self._credit = None
                elif isinstance(event, protocol.Dropped):
                    self._peers.counters[event.counter] += 1
                elif not isinstance(event, protocol.Hello):
                    raise protocol.ProtocolViolation(
                        "rejected_malformed", f"{type(event).__name__} on a client's connection"
                    )
        except protocol.ProtocolViolation as exc:
            self._peers.counters[exc.counter] += 1
            if exc.counter == "rejected_unversioned":
                self._peers.met_unversioned(self.node)
                self._detach()
                self._writing = True  # nothing goes out until the new socket is there
                self._redialling = self._loop.create_task(self._redial_unversioned())
                return
            self.close(f"dropped: {exc}")

    async def _redial_unversioned(self) -> None:
        """The peer is on code from before versions and read nothing after our HELLO:
        dial it again without versions and send again what it never read (the asks
        stay pending meanwhile; more are queued)."""
        sock = await self._peers.connect(self.node)
        if sock is None:
            self.close(f"dropped: {self.node} is on code from before versions and unreachable")
            return
        if self.reason is not None:  # closed meanwhile
            sock.close()
            return
        self._writing = False
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._readable)
        self._hello_due.cancel()
        self._hello_due = self._loop.call_later(
            self._peers.config.handshake_timeout, self._check_hello
        )
        self.session.redial_unversioned()
        self._flush()

    def _answered(self, event: protocol.Answered[asyncio.Future[Any]]) -> None:
        future, frame = event.token, event.frame
        if future.done():  # timed out or cancelled this instant
            return
        if isinstance(frame, protocol.ErrorReply):
            future.set_exception(protocol.decode_error(frame))
            return
        resolving = ref_resolver.set(_resolve_on_runtime)
        try:
            future.set_result(protocol.decode_value(frame.value))
        except ResolveOnRuntime:
            self._peers._decode(self.node, frame.value, future)
        except wire.WireError as exc:
            future.set_exception(UndecodableReply(f"from {self.node}: {exc}"))
        finally:
            ref_resolver.reset(resolving)

    def _check_idle(self) -> None:
        """Close the connection when nothing went either way for half the idle timeout
        (before the peer's own idle check closes it under a message on its way)."""
        session = self.session
        quiet = self._loop.time() - session.last_active
        half = self._peers.config.idle_timeout / 2
        if session.is_idle() and quiet >= half:
            self.close("idle")
        else:
            self._idle = self._loop.call_later(max(half - quiet, 0.1), self._check_idle)

    def _check_hello(self) -> None:
        """Close the connection if the peer has not said HELLO by now (what was sent on
        it is kept until then, in case the peer is from before versions)."""
        if self.session.peer_version is None:
            self.close("no HELLO from the peer in time")

    def _detach(self) -> None:
        """Close the socket (the loop forgets it first)."""
        if self._sock.fileno() < 0:  # closed already (between two dials)
            return
        fileno = self._sock.fileno()
        self._loop.remove_reader(fileno)
        if self._writing:
            self._loop.remove_writer(fileno)
        self._sock.close()

    def close(self, reason: str) -> None:
        """Close the connection; its pending asks fail with :class:`NodeDown`."""
        if self.reason is not None:
            return
        self.reason = reason
        self._idle.cancel()
        self._hello_due.cancel()
        self._detach()
        if self._peers.links.get(self.node) is self:
            del self._peers.links[self.node]
        error = NodeDown(f"connection to {self.node} closed: {reason}")
        for future in self.session.close():
            if not future.done():
                future.set_exception(error)
        if self._credit is not None:
            self._credit.set()


def _expire(future: asyncio.Future[Any], recipient: ActorRef) -> None:
    if not future.done():
        future.set_exception(AskTimeout(f"no reply from {recipient} in time"))


def _family(address: Address | None) -> socket.AddressFamily | None:
    """The socket family for a numeric address (None for a host name: the runtime
    thread's transport resolves those)."""
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(address[0])
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET
