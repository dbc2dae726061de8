"""The real network under the SWIM core: one UDP socket and one TCP listener on one port.

Datagrams carry probes and gossip.  TCP carries the core's reliable packets, one
length-prefixed frame per packet (:func:`wire.encode_frame`), over at most one outgoing
connection per peer that closes when idle.  Messages are one-way, so outgoing connections
are only written and incoming ones only read.  Every failure (unreachable peer, refused or
timed-out connection, garbage, oversized or truncated frames, full queues) is counted in
:attr:`Transport.counters` and logged at debug level; nothing here raises into the node.

With a :class:`~swimactors.security.TlsConfig` every TCP connection is mutual TLS: a
dialled peer's certificate must name the member known at that address, and the frames of
an accepted connection are delivered with the names its certificate carries (the core
checks each packet's sender against them).  Refusals are counted (``tls_refused``) and
logged once per peer host.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import ipaddress
import logging
import math
import socket as stdlib_socket
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import trio

from .. import wire
from ..logs import logger
from ..security import TlsConfig
from ..security.tls_stream import open_tls
from .allowlist import AllowList
from .host_names import HostNames, SockAddr
from .once import OncePerPeer
from .types import Address, Packet, format_address

__all__ = [
    "Deliver",
    "NodeTransport",
    "SockAddr",
    "Transport",
    "TransportLimits",
    "admitting",
    "bind_sockets",
    "resolve",
    "resolve_now",
]

log = logger(__name__)


class Deliver(Protocol):
    """Where a transport hands what arrives: ``peer`` is the node names a TLS certificate
    proved for the connection a frame came on (None: no TLS, or a datagram)."""

    def __call__(
        self, source: Address, data: bytes, peer: frozenset[str] | None = None
    ) -> None: ...


def _discard(source: Address, data: bytes, peer: frozenset[str] | None = None) -> None:
    """Delivery before the transport is started."""


def admitting(allowed: AllowList, deliver: Deliver, counters: collections.Counter[str]) -> Deliver:
    """``deliver`` behind ``Config.cidrs_allowed``: what comes from a source outside it is
    dropped before it is opened or decoded, and counted (``udp_not_allowed``: frames come
    only on connections already admitted at accept, ``tcp_not_allowed``).  Only a node
    with an allow-list wraps its delivery so: without one no packet pays for the test."""

    def admit(source: Address, data: bytes, peer: frozenset[str] | None = None) -> None:
        if allowed(source[0]):
            deliver(source, data, peer)
        else:
            counters["udp_not_allowed"] += 1

    return admit


class NodeTransport(Protocol):
    """What a :class:`~swimactors.membership.node.Node` needs from its network, so
    ``open_node(transport=...)`` can run it on something other than sockets (a simulation)."""

    @property
    def address(self) -> Address:
        """Where this transport receives; advertised unless ``open_node`` gets ``advertise``."""
        ...

    @property
    def counters(self) -> collections.Counter[str]:
        """Added to :attr:`Node.counters <swimactors.membership.node.Node.counters>`."""
        ...

    def start(self, nursery: trio.Nursery, deliver: Deliver) -> None:
        """Start in ``nursery`` (cancelled when the node stops); pass every arriving
        ``(source, data)`` to ``deliver``."""
        ...

    def send(self, packet: Packet) -> None:
        """Send or queue ``packet`` without blocking (drop it rather than raise)."""
        ...

    async def flush(self) -> None:
        """Return once what was sent so far has left (best effort: used by leave)."""
        ...

    async def aclose(self) -> None:
        """Release everything; called once when the node stops, even if never started."""
        ...


class TransportLimits:
    """Hard bounds that keep one node's resource use fixed whatever its peers do."""

    max_datagram = 65535
    max_frame = wire.DEFAULT_MAX_FRAME
    send_queue = 4096
    """Packets waiting for the sender task; more are dropped and counted."""
    peer_queue = 256
    """Frames waiting on one outgoing connection."""
    max_outgoing = 1024
    max_incoming = 1024
    max_incoming_per_address = 64
    """Incoming connections at once from one IP address (a peer opens one)."""
    max_handshakes = 128
    max_handshakes_per_address = 16
    """TLS handshakes under way at once on incoming connections, in all and from one IP
    address; a newcomer past either takes the place of the oldest (its own address's
    first), which is closed (``tls_handshakes_displaced``)."""
    max_receiving = wire.DEFAULT_MAX_FRAME
    """Bytes held in frames still arriving, over all incoming connections at once; past
    this the connection holding the most is closed (``tcp_receive_budget``)."""
    outgoing_idle = 15.0
    """An outgoing connection unused this long is closed."""
    incoming_idle = 60.0
    """An incoming connection silent this long is closed (longer than any peer's
    ``outgoing_idle``, so the sender is normally the one that closes)."""
    receive_batch = 64
    """Datagrams handled per wake-up before other tasks get a turn."""
    resolve_cache = 4096
    """Host names (and IP literals) whose answers are kept; past it all are forgotten."""
    resolve_ttl = 30.0
    """A host name's answer is looked up again after this long (it serves meanwhile)."""
    resolve_failed_ttl = 20.0
    """A name whose lookup failed is not looked up again for this long (nscd's default
    for hosts): a forged member at a name that never resolves costs one lookup per 20 s."""
    resolve_timeout = 5.0
    """A lookup not answered within this long counts as failed (its thread is left to
    finish: a lookup cannot be cancelled)."""
    max_lookups = 16
    """Host names looked up at once; a packet to yet another new name is dropped."""
    vouched_lookups = 4
    """Of ``max_lookups``, the places kept for names of members that have sent this node
    a packet themselves (a forged member's name that never answers cannot take them)."""
    lookup_threads = 64
    """Lookup threads alive at once, those past their deadline included."""


def _nobody(address: Address) -> bool:
    """No member has been heard from at ``address`` (until the node says otherwise)."""
    return False


def _host_names(limits: TransportLimits) -> HostNames:
    """The host-name table ``limits`` describe."""
    return HostNames(
        ttl=limits.resolve_ttl,
        failed_ttl=limits.resolve_failed_ttl,
        timeout=limits.resolve_timeout,
        max_lookups=limits.max_lookups,
        size=limits.resolve_cache,
        vouched_lookups=limits.vouched_lookups,
    )


class _WrongCertificate(Exception):
    """A dialled peer's certificate does not name the member known at its address."""


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def normalize_source(sockaddr: SockAddr) -> Address:
    """``(host, port)`` from a socket address; IPv4-mapped IPv6 hosts become plain IPv4."""
    host, port = sockaddr[0], sockaddr[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:") :]
    return host, port


def _numeric_flags(host: str) -> int:
    """``AI_NUMERICHOST`` for an IP literal (never a DNS query), else 0."""
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return 0
    return stdlib_socket.AI_NUMERICHOST


def _first(host: str, infos: list[tuple[Any, ...]]) -> tuple[int, SockAddr]:
    if not infos:
        raise OSError(errno.EADDRNOTAVAIL, f"no address for {host}")
    fam, _type, _proto, _canon, sockaddr = infos[0]
    return int(fam), (str(sockaddr[0]), *sockaddr[1:])


async def resolve(host: str, port: int, family: int = 0) -> tuple[int, SockAddr]:
    """``(family, sockaddr)`` for ``host:port``; IP literals never touch DNS.  OSError
    when there is none (a name the resolver cannot even encode included)."""
    with _unencodable_is_unreachable(host):
        infos = await trio.socket.getaddrinfo(
            host, port, family=family, type=stdlib_socket.SOCK_DGRAM, flags=_numeric_flags(host)
        )
    return _first(host, infos)


def resolve_now(host: str, port: int, family: int = 0) -> tuple[int, SockAddr]:
    """:func:`resolve` for a thread that may block (a host name is a blocking DNS query)."""
    with _unencodable_is_unreachable(host):
        infos = stdlib_socket.getaddrinfo(
            host, port, family=family, type=stdlib_socket.SOCK_DGRAM, flags=_numeric_flags(host)
        )
    return _first(host, infos)


@contextlib.contextmanager
def _unencodable_is_unreachable(host: str) -> Iterator[None]:
    """A host name IDNA cannot encode (``UnicodeError``, a ValueError) as an OSError: the
    callers count a failed lookup and go on, where a ValueError ended the node."""
    try:
        yield
    except ValueError as exc:
        raise OSError(errno.EINVAL, f"no such host name {host!r}: {exc}") from None


def _sockaddr_on(family: int, destination: Address) -> SockAddr:
    """``destination``'s socket address for a socket of ``family`` (IPv4 mapped on an IPv6
    one); a host name is a blocking lookup, an IP literal never is."""
    host, port = destination
    found, sockaddr = resolve_now(
        host, port, stdlib_socket.AF_INET if family == stdlib_socket.AF_INET else 0
    )
    if found != family:
        if family != stdlib_socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "IPv6 peer on an IPv4 socket")
        sockaddr = (f"::ffff:{sockaddr[0]}", port, 0, 0)
    return sockaddr


def bind_sockets(
    family: int, sockaddr: SockAddr, asked: Address
) -> tuple[stdlib_socket.socket, stdlib_socket.socket, Address]:
    """A non-blocking UDP socket and a listening TCP socket on the same port, and that
    address (retrying when port 0 picks a port taken on TCP); ``asked`` names the address
    in the error.  A wildcard IPv6 bind is dual stack (IPv4 peers arrive as ::ffff:a.b.c.d)."""
    attempts = 20 if sockaddr[1] == 0 else 1
    for attempt in range(attempts):
        udp = stdlib_socket.socket(family, stdlib_socket.SOCK_DGRAM)
        tcp = stdlib_socket.socket(family, stdlib_socket.SOCK_STREAM)
        for sock in (udp, tcp):
            sock.setblocking(False)
            if family == stdlib_socket.AF_INET6 and _is_unspecified(sockaddr[0]):
                sock.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 0)
        try:
            udp.bind(sockaddr)
            bound = udp.getsockname()
            tcp.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
            tcp.bind((bound[0], bound[1], *sockaddr[2:]))
            tcp.listen(128)
        except OSError as exc:
            udp.close()
            tcp.close()
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise OSError(
                    exc.errno, f"cannot bind {format_address(asked)}: {exc.strerror}"
                ) from None
            continue
        return udp, tcp, normalize_source(bound)
    raise AssertionError("unreachable")  # pragma: no cover


class Transport:
    """Owns the sockets; the node calls :meth:`send` and gets data through ``deliver``."""

    def __init__(
        self,
        *,
        tcp_timeout: float,
        tls: TlsConfig | None = None,
        allowed: AllowList | None = None,
    ) -> None:
        """``allowed``: ``Config.cidrs_allowed`` (:func:`admitting`); None admits all."""
        self._deliver: Deliver = _discard
        self._allowed = allowed
        self._tcp_timeout = tcp_timeout
        self._tls = tls
        self._tls_refused = OncePerPeer("refusing TCP connections (TLS)", log)
        self.name_at: Callable[[Address], str | None] = lambda address: None
        """The member membership knows at an address (a dialled peer's certificate must
        name it); None when unknown, as for a seed."""
        self.heard_from: Callable[[Address], bool] = _nobody
        """Whether a member at an address has sent this node a packet itself (its host
        name may take the lookups kept for such, ``TransportLimits.vouched_lookups``)."""
        self.limits = TransportLimits()
        self.counters: collections.Counter[str] = collections.Counter()
        self.address: Address = ("", 0)
        """The bound ``(ip, port)``; the real port when bound to port 0."""
        self._family: int = stdlib_socket.AF_INET
        self._udp: stdlib_socket.socket | None = None
        self._listener: trio.SocketListener | None = None
        self._queue_in, self._queue_out = trio.open_memory_channel[Packet | trio.Event](
            self.limits.send_queue
        )
        self._peers: dict[Address, trio.MemorySendChannel[bytes]] = {}
        self._incoming = 0
        self._receiving = wire.ReceiveBudget[trio.CancelScope](self.limits.max_receiving)
        self._handshakes = wire.Newcomers[trio.CancelScope](
            self.limits.max_handshakes, self.limits.max_handshakes_per_address
        )
        self._per_host: collections.Counter[str] = collections.Counter()
        """Incoming connections by source IP address."""
        self._sockaddrs: dict[Address, SockAddr] = {}
        """Where each IP literal destination is reached."""
        self._names = _host_names(self.limits)
        self._held: dict[Address, list[Packet]] = {}
        """Datagrams waiting for a host name's first answer."""
        self._answered: dict[Address, trio.Event] = {}
        """Set when the lookup under way for a host name ends."""
        self._lookup_threads = trio.CapacityLimiter(self.limits.lookup_threads)
        """Its own threads: a lookup that never returns keeps its thread, and must not
        hold one of trio's default limiter (the whole process's worker threads)."""
        self._nursery: trio.Nursery | None = None
        self._streams: set[trio.abc.Stream] = set()
        self._closed = False

    # -- setup ---------------------------------------------------------------------------

    async def bind(self, host: str, port: int) -> Address:
        """Bind UDP and TCP on the same port (see :func:`bind_sockets`)."""
        try:
            family, sockaddr = await resolve(host, port)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot resolve {host!r}: {exc.strerror}") from None
        self._family = family
        udp, tcp, self.address = bind_sockets(family, sockaddr, (host, port))
        self._udp = udp
        self._listener = trio.SocketListener(trio.socket.from_stdlib_socket(tcp))
        return self.address

    def start(self, nursery: trio.Nursery, deliver: Deliver) -> None:
        """Start sending, and receiving into ``deliver``, in ``nursery`` (cancel it to stop)."""
        assert self._udp is not None and self._listener is not None, "bind() first"
        allowed = self._allowed
        self._deliver = deliver if allowed is None else admitting(allowed, deliver, self.counters)
        self._nursery = nursery
        nursery.start_soon(self._receive_datagrams, self._udp)
        nursery.start_soon(self._accept, self._listener)
        nursery.start_soon(self._send_loop)

    async def aclose(self) -> None:
        """Close every socket, open TCP connections included; later sends are dropped."""
        self._closed = True
        for stream in list(self._streams):
            await trio.aclose_forcefully(stream)
        if self._udp is not None and self._udp.fileno() != -1:
            trio.lowlevel.notify_closing(self._udp)
            self._udp.close()
        if self._listener is not None:
            await self._listener.aclose()

    # -- sending -------------------------------------------------------------------------

    def send(self, packet: Packet) -> None:
        """Send or queue a packet without blocking; a full queue drops it (counted).

        Datagrams to an address already resolved go straight to the socket (the common
        case: no task switch per packet); the first one to a new address, and frames, go
        through the sender task or the peer's connection task.
        """
        if self._closed:
            return
        if packet.reliable:
            self._send_frame(packet.destination, packet.data)
            return
        destination = packet.destination
        sockaddr = self._sockaddrs.get(destination)
        if sockaddr is None and not self._names.due(destination, trio.current_time()):
            sockaddr = self._names.answer(destination)  # a host name's fresh answer
        if sockaddr is not None:
            self._sendto(packet.data, sockaddr, destination)
            return
        try:
            self._queue_in.send_nowait(packet)
        except trio.WouldBlock:
            self._count("send_queue_full", packet.destination)
        except trio.ClosedResourceError:
            pass

    async def flush(self) -> None:
        """Wait until every packet queued so far has been sent (or handed to its TCP
        connection): a node about to close uses it so its last words are not lost."""
        marker = trio.Event()
        try:
            await self._queue_in.send(marker)
        except trio.ClosedResourceError:
            return
        await marker.wait()

    async def _send_loop(self) -> None:
        async for packet in self._queue_out:
            if isinstance(packet, trio.Event):
                packet.set()
                continue
            destination = packet.destination
            try:
                sockaddr = self._sockaddr(destination)
            except OSError as exc:
                self._count("udp_send_errors", destination, exc)
                continue
            if sockaddr is not None:
                self._sendto(packet.data, sockaddr, destination)
                continue
            held = self._held.setdefault(destination, [])
            if len(held) >= self.limits.peer_queue:
                self._count("udp_send_errors", destination, "too many waiting for a lookup")
            else:
                held.append(packet)

    def _sendto(self, data: bytes, sockaddr: SockAddr, destination: Address) -> None:
        assert self._udp is not None
        try:
            self._udp.sendto(data, sockaddr)
        except BlockingIOError:  # the socket buffer is full: UDP may drop, and so do we
            self._count("udp_send_dropped", destination)
        except OSError as exc:
            self._count("udp_send_errors", destination, exc)
        else:
            self.counters["udp_packets_sent"] += 1
            self.counters["udp_bytes_sent"] += len(data)

    def _sockaddr(self, destination: Address) -> SockAddr | None:
        """Where to send a datagram on our socket's family (IPv4 mapped on v6): an IP
        literal's address, or a host name's last answer (looked up again in a task of its
        own once stale); None while a name's first lookup runs.  OSError: no address."""
        if _is_literal(destination[0]):
            sockaddr = _sockaddr_on(self._family, destination)
            if len(self._sockaddrs) >= self.limits.resolve_cache:
                self._sockaddrs.clear()
            self._sockaddrs[destination] = sockaddr
            return sockaddr
        names = self._names
        now = trio.current_time()
        if (
            names.due(destination, now)
            and self._nursery
            and names.begin(destination, now, self.heard_from(destination))
        ):
            self._answered[destination] = trio.Event()
            self._nursery.start_soon(self._look_up, destination)
        known = names.answer(destination)
        if known is not None or names.under_way(destination):
            return known
        raise OSError(errno.EHOSTUNREACH, "host name not found lately, or too many lookups")

    async def _look_up(self, destination: Address) -> None:
        """Look a host name up off the loop within ``resolve_timeout``; send the datagrams
        that waited for it (or count them failed)."""
        found: SockAddr | OSError = OSError(errno.ETIMEDOUT, "host name lookup timed out")
        with trio.move_on_after(self.limits.resolve_timeout):
            try:
                found = await trio.to_thread.run_sync(
                    _sockaddr_on,
                    self._family,
                    destination,
                    limiter=self._lookup_threads,
                    abandon_on_cancel=True,
                )
            except OSError as exc:
                found = exc
        self._names.finish(destination, found, trio.current_time())
        self._answered.pop(destination).set()
        sockaddr = self._names.answer(destination)
        for packet in self._held.pop(destination, ()):
            if sockaddr is None:
                self._count("udp_send_errors", destination, found)
            else:
                self._sendto(packet.data, sockaddr, destination)

    async def _connectable(self, destination: Address) -> SockAddr:
        """:meth:`_sockaddr` for a connection: waits for a name's lookup under way."""
        while (sockaddr := self._sockaddr(destination)) is None:
            await self._answered[destination].wait()
        return sockaddr

    def _send_frame(self, destination: Address, data: bytes) -> None:
        channel = self._peers.get(destination)
        if channel is None:
            if len(self._peers) >= self.limits.max_outgoing or self._nursery is None:
                self._count("tcp_dropped_frames", destination)
                return
            channel, receive = trio.open_memory_channel[bytes](self.limits.peer_queue)
            self._peers[destination] = channel
            self._nursery.start_soon(self._run_peer, destination, channel, receive)
        try:
            channel.send_nowait(wire.encode_frame(data))
        except trio.WouldBlock:
            self._count("tcp_dropped_frames", destination)

    async def _run_peer(
        self,
        destination: Address,
        channel: trio.MemorySendChannel[bytes],
        frames: trio.MemoryReceiveChannel[bytes],
    ) -> None:
        """One outgoing connection: connect, write queued frames, close when idle or broken."""
        try:
            with trio.fail_after(self._tcp_timeout):
                stream = await self._connect(destination)
        except (OSError, trio.TooSlowError) as exc:
            self._count("tcp_connect_failures", destination, exc)
        except trio.BrokenResourceError as exc:
            self._refuse_tls(destination, f"TLS handshake failed: {exc.__cause__ or exc}")
        except _WrongCertificate as exc:
            self._refuse_tls(destination, str(exc))
        else:
            self.counters["tcp_connections_opened"] += 1
            self._streams.add(stream)
            async with stream, trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_close, stream, nursery.cancel_scope)
                try:
                    await self._write_frames(stream, frames)
                except (
                    OSError,
                    trio.BrokenResourceError,
                    trio.ClosedResourceError,
                    trio.TooSlowError,
                ) as exc:
                    self._count("tcp_send_failures", destination, exc)
                finally:
                    self._streams.discard(stream)
                    nursery.cancel_scope.cancel()
        finally:
            if self._peers.get(destination) is channel:
                del self._peers[destination]
            self._drop_queued(destination, frames)

    async def _connect(self, destination: Address) -> trio.abc.Stream:
        """A connection to ``destination`` (under TLS: to the member known there)."""
        sockaddr = await self._connectable(destination)
        sock = trio.socket.socket(self._family, stdlib_socket.SOCK_STREAM)
        try:
            await sock.connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        stream: trio.abc.Stream = trio.SocketStream(sock)
        if self._tls is None:
            return stream
        try:
            secured, names = await open_tls(stream, self._tls.client, server_side=False)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        expected = self.name_at(destination)
        if expected is not None and expected not in names:
            await trio.aclose_forcefully(secured)
            shown = ", ".join(sorted(names)) or "no name"
            raise _WrongCertificate(f"a certificate for {shown} answered for {expected!r}")
        return secured

    def _refuse_tls(self, peer: Address, detail: str) -> None:
        """Count a connection refused by TLS, and log it once per peer host."""
        self.counters["tls_refused"] += 1
        self._tls_refused(peer, detail)

    async def _write_frames(
        self, stream: trio.abc.Stream, frames: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        while True:
            with trio.move_on_after(self.limits.outgoing_idle) as idle:
                frame = await frames.receive()
            if idle.cancelled_caught:
                return
            with trio.fail_after(self._tcp_timeout):
                await stream.send_all(frame)
            self.counters["tcp_frames_sent"] += 1
            self.counters["tcp_bytes_sent"] += len(frame)

    @staticmethod
    async def _watch_close(stream: trio.abc.Stream, scope: trio.CancelScope) -> None:
        """Peers never write on our outgoing connections: any read result means closed."""
        with contextlib.suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.receive_some(1)
        scope.cancel()

    def _drop_queued(self, destination: Address, frames: trio.MemoryReceiveChannel[bytes]) -> None:
        while True:
            try:
                frames.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            self._count("tcp_dropped_frames", destination)
        frames.close()

    # -- receiving -----------------------------------------------------------------------

    async def _receive_datagrams(self, udp: stdlib_socket.socket) -> None:
        """Wait until readable, then drain what is queued (bounded, to stay fair)."""
        wait_readable, recvfrom = trio.lowlevel.wait_readable, udp.recvfrom
        batch, size, counters = self.limits.receive_batch, self.limits.max_datagram, self.counters
        while True:
            try:
                await wait_readable(udp)
            except (trio.ClosedResourceError, OSError):
                return
            for _ in range(batch):
                try:
                    data, source = recvfrom(size)
                except BlockingIOError:
                    break
                except OSError as exc:  # e.g. ICMP errors surfaced by some platforms
                    if udp.fileno() == -1:  # closed under us
                        return
                    self._count("udp_receive_errors", None, exc)
                    break
                counters["udp_packets_received"] += 1
                counters["udp_bytes_received"] += len(data)
                self._deliver(normalize_source(source), data)

    async def _accept(self, listener: trio.SocketListener) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    stream = await listener.accept()
                except trio.ClosedResourceError:
                    return
                except OSError as exc:  # EMFILE and friends: back off instead of spinning
                    self._count("tcp_accept_errors", None, exc)
                    await trio.sleep(0.1)
                    continue
                try:
                    source = normalize_source(stream.socket.getpeername())
                except OSError:  # already reset
                    await stream.aclose()
                    continue
                if self._allowed is not None and not self._allowed(source[0]):
                    self._count("tcp_not_allowed", source)  # before TLS, before any read
                    await stream.aclose()
                    continue
                if (
                    self._incoming >= self.limits.max_incoming
                    or self._per_host[source[0]] >= self.limits.max_incoming_per_address
                ):
                    self._count("tcp_connections_refused", source)
                    await stream.aclose()
                    continue
                self._incoming += 1
                self._per_host[source[0]] += 1
                handshake = trio.CancelScope()
                if self._tls is not None:
                    displaced = self._handshakes.arrive(handshake, source[0])
                    if displaced is not None:
                        displaced.cancel()
                nursery.start_soon(self._read_connection, stream, source, handshake)

    async def _read_connection(
        self, stream: trio.SocketStream, source: Address, handshake: trio.CancelScope
    ) -> None:
        """Read frames until EOF, idleness, a stalled frame, a frame over the limit or
        over the receive budget shared by all incoming connections; under TLS, after a
        handshake that ``handshake`` cancels when a newcomer takes its place."""
        decoder = wire.FrameDecoder(self.limits.max_frame)
        self.counters["tcp_connections_accepted"] += 1
        frame_deadline = math.inf
        self._streams.add(stream)
        names: frozenset[str] | None = None
        connection: trio.abc.Stream = stream
        scope = trio.CancelScope()  # cancelled when the receive budget drops this one
        try:
            async with stream:
                if self._tls is not None:
                    with handshake, trio.move_on_after(self._tcp_timeout):
                        try:
                            connection, names = await open_tls(
                                stream, self._tls.server, server_side=True
                            )
                        except trio.BrokenResourceError as exc:
                            reason = exc.__cause__ or exc
                            return self._refuse_tls(source, f"TLS handshake failed: {reason}")
                    self._handshakes.proven(handshake)
                    if handshake.cancel_called:
                        return self._count("tls_handshakes_displaced", source)
                    if names is None:
                        return self._refuse_tls(source, "the TLS handshake timed out")
                frame_deadline = trio.current_time() + self._tcp_timeout  # the first is due
                with scope:
                    while True:
                        idle_deadline = trio.current_time() + self.limits.incoming_idle
                        with trio.move_on_at(min(idle_deadline, frame_deadline)):
                            data = await connection.receive_some(65536)
                            if not data:
                                if decoder.buffered:
                                    self._count("tcp_truncated_frames", source)
                                return
                            self.counters["tcp_bytes_received"] += len(data)
                            for frame in decoder.feed(data):
                                self.counters["tcp_frames_received"] += 1
                                self._deliver(source, frame, names)
                            if decoder.error is not None:
                                self._count("tcp_oversized_frames", source, decoder.error)
                                return
                            if not decoder.buffered:
                                frame_deadline = math.inf
                            elif frame_deadline == math.inf:
                                frame_deadline = trio.current_time() + self._tcp_timeout
                            for over in self._receiving.hold(scope, decoder.buffered):
                                over.cancel()
                            continue
                        if frame_deadline <= trio.current_time():
                            self._count("tcp_frame_timeouts", source)
                        return
                self._count("tcp_receive_budget", source)  # cancelled by the budget
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._count("tcp_receive_errors", source, exc)
        finally:
            self._receiving.release(scope)
            self._handshakes.proven(handshake)
            self._incoming -= 1
            self._per_host[source[0]] -= 1
            if self._per_host[source[0]] <= 0:
                del self._per_host[source[0]]
            self._streams.discard(stream)

    # -- bookkeeping ---------------------------------------------------------------------

    def _count(self, what: str, peer: Address | None, detail: object = None) -> None:
        self.counters[what] += 1
        if log.isEnabledFor(logging.DEBUG):
            where = format_address(peer) if peer else "-"
            log.debug("%s (peer %s): %s", what.replace("_", " "), where, detail or "")
