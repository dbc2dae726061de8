"""The lean driver's network: the trio transport's sockets and limits, on a poller.

One UDP socket and one TCP listener on one port, as in
:class:`~swimactors.membership.transport.Transport`: datagrams for probes and gossip, one
length-prefixed frame per reliable packet over at most one outgoing connection per peer
(non-blocking connect, written as the socket accepts, closed when idle), incoming
connections only read.  The same :class:`TransportLimits` and counter names; every failure
is counted, nothing raises into the loop.  Deadlines (connect, a stalled write or frame,
idleness) are kept as one earliest :attr:`LeanSockets.deadline` for the loop's wait and
handled by :meth:`LeanSockets.expire`.  No TLS (the fronts use the trio driver for it).
A host name is looked up on a thread of its own, never on the loop's, as
:class:`~swimactors.membership.host_names.HostNames` says: packets to it wait for the first
answer (bounded), a stale answer keeps serving while it is renewed, and a name that failed
or did not answer in time is not looked up again for a while (its packets are dropped).
"""

from __future__ import annotations

import collections
import errno
import functools
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import wire
from ..logs import logger
from .allowlist import AllowList
from .poller import READ, WRITE, Poller
from .sealing import Sealing
from .transport import (
    Deliver,
    SockAddr,
    TransportLimits,
    _host_names,
    _is_literal,
    _nobody,
    _sockaddr_on,
    admitting,
    normalize_source,
)
from .types import Address, Packet, format_address

__all__ = ["LeanSockets"]

log = logger("swimactors.membership.transport")


class _Outgoing:
    """One outgoing connection: connecting, writing its frames, or idle."""

    __slots__ = ("connected", "deadline", "destination", "frames", "sock")

    def __init__(self, sock: socket.socket, destination: Address, deadline: float) -> None:
        self.sock = sock
        self.destination = destination
        self.frames: collections.deque[memoryview] = collections.deque()
        self.connected = False
        self.deadline = deadline
        """Connect deadline, then write-stall deadline while frames wait, else idle end."""


class _Incoming:
    """One accepted connection, read until EOF, idleness or a stalled frame."""

    __slots__ = ("deadline", "decoder", "frame_deadline", "heard", "sock", "source")

    def __init__(
        self, sock: socket.socket, source: Address, max_frame: int, idle: float, due: float
    ) -> None:
        self.sock = sock
        self.source = source
        self.decoder = wire.FrameDecoder(max_frame)
        self.deadline = idle
        self.frame_deadline = due
        """When the frame under way (first the first one, due at once) must be complete."""
        self.heard = False
        """Whether anything has arrived on it yet."""


class LeanSockets:
    """Owns the node's sockets on ``poller``; the node calls :meth:`send`, and what
    arrives goes to the ``deliver`` given to :meth:`start` (opened first when sealed)."""

    def __init__(
        self,
        udp: socket.socket,
        listener: socket.socket,
        address: Address,
        *,
        tcp_timeout: float,
        sealing: Sealing | None,
        poller: Poller,
        post: Callable[..., Any],
        clock: Callable[[], float] = time.monotonic,
        allowed: AllowList | None = None,
    ) -> None:
        """``post(fn, *args)`` runs ``fn(*args)`` on the loop's thread (from any thread:
        how a lookup's answer comes back)."""
        self.address = address
        self.limits = TransportLimits()
        self.heard_from: Callable[[Address], bool] = _nobody
        """As :attr:`Transport.heard_from <.transport.Transport.heard_from>`."""
        self._counters: collections.Counter[str] = collections.Counter()
        self._udp_sent = self._udp_bytes_sent = self._udp_received = self._udp_bytes_received = 0
        """The per-datagram counters, plain ints: a Counter's dict costs more per packet."""
        self._buffer = memoryview(bytearray(self.limits.max_datagram))
        """Every datagram is read into this buffer, then copied out at its size (a
        ``recvfrom`` of the largest size allocates 64 KiB per datagram and shrinks it)."""
        self._udp = udp
        self._listener = listener
        self._family = udp.family
        self._ipv4 = udp.family == socket.AF_INET
        """An IPv4 socket's sources are ``(host, port)`` already (no mapped addresses)."""
        self._tcp_timeout = tcp_timeout
        self._sealing = sealing
        self._allowed = allowed
        """``Config.cidrs_allowed`` (``transport.admitting``); None admits all."""
        self._poller = poller
        self._clock = clock
        self._post = post
        self._deliver: Deliver = _discard
        self._sockaddrs: dict[Address, SockAddr] = {}
        """Where each IP literal destination is reached."""
        self._names = _host_names(self.limits)
        self._held: dict[Address, list[Packet]] = {}
        """Packets waiting for a host name's first answer."""
        self._threads = 0
        """Lookup threads still running (those past their deadline included)."""
        self._closed = False
        self._outgoing: dict[Address, _Outgoing] = {}
        self._incoming: dict[socket.socket, _Incoming] = {}
        self._receiving = wire.ReceiveBudget[_Incoming](self.limits.max_receiving)
        self._per_host: collections.Counter[str] = collections.Counter()
        """Incoming connections by source IP address."""
        self._accept_paused = math.inf
        """When accepting resumes after an accept error (EMFILE): inf while accepting."""
        self.deadline = math.inf
        """The earliest connection deadline (inf: none); :meth:`expire` acts on it."""

    @property
    def counters(self) -> collections.Counter[str]:
        counters = collections.Counter(self._counters)
        for name, value in (
            ("udp_packets_sent", self._udp_sent),
            ("udp_bytes_sent", self._udp_bytes_sent),
            ("udp_packets_received", self._udp_received),
            ("udp_bytes_received", self._udp_bytes_received),
        ):
            if value:
                counters[name] = value
        if self._sealing is not None:
            counters.update(self._sealing.sealer.counters)
        return counters

    def start(self, deliver: Deliver) -> None:
        """Register the sockets; what arrives from now on goes to ``deliver``."""
        if self._sealing is not None:
            deliver = self._sealing.opening(deliver)
        if self._allowed is not None:  # outermost: before opening, as the trio transport
            deliver = admitting(self._allowed, deliver, self._counters)
        self._deliver = deliver
        self._poller.register(self._udp, READ, self._read_datagrams)
        self._poller.register(self._listener, READ, self._accept)

    def close(self) -> None:
        """Close every socket; frames still queued are dropped (counted), and so is what
        is sent from now on or waits for a lookup."""
        self._closed = True
        self._sockaddrs.clear()  # every later send asks _sockaddr, which refuses it
        for held in self._held.values():
            for packet in held:
                self._unreachable(packet, "closed")
        self._held.clear()
        for conn in list(self._outgoing.values()):
            self._close_outgoing(conn)
        for incoming in list(self._incoming.values()):
            self._close_incoming(incoming)
        self._udp.close()
        self._listener.close()

    @property
    def drained(self) -> bool:
        """Whether every frame handed to :meth:`send` has been written (or dropped)."""
        return not any(conn.frames for conn in self._outgoing.values())

    @property
    def receiving(self) -> bool:
        """Whether a frame is on its way: an accepted connection that has sent nothing
        yet, or part of a frame (a node that leaves waits for it, within its timeout:
        it may be the push/pull answer that tells it whom to tell)."""
        return any(i.decoder.buffered or not i.heard for i in self._incoming.values())

    def _reckon(self) -> None:
        """Recompute :attr:`deadline` after any connection's changed (TCP events are
        rare: the loop reads one attribute a turn)."""
        deadlines = [conn.deadline for conn in self._outgoing.values()]
        deadlines.extend(min(i.deadline, i.frame_deadline) for i in self._incoming.values())
        deadlines.append(self._accept_paused)
        deadlines.append(self._names.deadline)
        self.deadline = min(deadlines)

    def expire(self, now: float) -> None:
        """Act on every deadline that has passed."""
        for conn in [c for c in self._outgoing.values() if c.deadline <= now]:
            if not conn.connected:
                self._fail(conn, "tcp_connect_failures", "connect timed out")
            elif conn.frames:
                self._fail(conn, "tcp_send_failures", "write timed out")
            else:  # idle
                self._close_outgoing(conn)
        for incoming in [i for i in self._incoming.values() if i.frame_deadline <= now]:
            self._count("tcp_frame_timeouts", incoming.source)
            self._close_incoming(incoming)
        for incoming in [i for i in self._incoming.values() if i.deadline <= now]:
            self._close_incoming(incoming)  # idle (a frame under way expires first)
        if self._accept_paused <= now:
            self._accept_paused = math.inf
            self._poller.register(self._listener, READ, self._accept)
        for name in self._names.expire(now):
            for packet in self._held.pop(name, ()):
                self._unreachable(packet, "host name lookup timed out")
        self._reckon()

    # -- sending -------------------------------------------------------------------------

    def send(self, packet: Packet) -> None:
        """Send a datagram at once, or queue a frame on the peer's connection; drop
        (counted) what cannot go."""
        destination = packet.destination
        sockaddr = self._sockaddrs.get(destination)
        if sockaddr is None:
            sockaddr = self._sockaddr(packet)
            if sockaddr is None:
                return
        data = packet.data if self._sealing is None else self._sealing.seal(packet.data)
        if packet.reliable:
            self._send_frame(destination, data, sockaddr)
            return
        try:
            self._udp.sendto(data, sockaddr)
        except BlockingIOError:  # the socket buffer is full: UDP may drop, and so do we
            self._count("udp_send_dropped", destination)
        except OSError as exc:
            self._count("udp_send_errors", destination, exc)
        else:
            self._udp_sent += 1
            self._udp_bytes_sent += len(data)

    def _sockaddr(self, packet: Packet) -> SockAddr | None:
        """Where to send ``packet``: an IP literal's address, found at once; a host name's
        last answer (looked up again off this thread once stale); or None: ``packet``
        waits for a name's first answer, or is dropped (counted)."""
        destination = packet.destination
        if self._closed:
            self._unreachable(packet, "closed")
            return None
        if _is_literal(destination[0]):
            try:
                sockaddr = _sockaddr_on(self._family, destination)
            except OSError as exc:
                self._unreachable(packet, exc)
                return None
            if len(self._sockaddrs) >= self.limits.resolve_cache:
                self._sockaddrs.clear()
            self._sockaddrs[destination] = sockaddr
            return sockaddr
        names = self._names
        if names.due(destination, self._clock()):
            self._look_up(destination)
        known = names.answer(destination)
        if known is not None:
            return known
        if not names.under_way(destination):
            self._unreachable(packet, "host name not found lately, or too many being looked up")
            return None
        held = self._held.setdefault(destination, [])
        if len(held) >= self.limits.peer_queue:
            self._unreachable(packet, "too many packets waiting for a lookup")
        else:
            held.append(packet)
        return None

    def _look_up(self, destination: Address) -> None:
        """Look ``destination``'s host name up on a thread of its own, unless as many
        lookups or threads as the limits allow are busy already."""
        if self._threads >= self.limits.lookup_threads:
            return
        if not self._names.begin(destination, self._clock(), self.heard_from(destination)):
            return
        self._threads += 1
        family, post, answered = self._family, self._post, self._looked_up

        def look_up() -> None:
            try:
                found: SockAddr | OSError = _sockaddr_on(family, destination)
            except OSError as exc:
                found = exc
            post(answered, destination, found)

        threading.Thread(target=look_up, name="swimactors-lookup", daemon=True).start()
        self._reckon()

    def _looked_up(self, destination: Address, found: SockAddr | OSError) -> None:
        """On the loop's thread: a lookup's answer, however late; send what waited for it
        (or drop it, when the name has no answer)."""
        self._threads -= 1
        if self._closed:
            return
        self._names.finish(destination, found, self._clock())
        self._reckon()
        held = self._held.pop(destination, ())
        if self._names.answer(destination) is None:
            for packet in held:
                self._unreachable(packet, found)
            return
        for packet in held:
            self.send(packet)

    def _unreachable(self, packet: Packet, detail: object) -> None:
        """Count ``packet`` as not sent: its destination has no address."""
        if packet.reliable:
            self._count("tcp_connect_failures", packet.destination, detail)
            self._count("tcp_dropped_frames", packet.destination)
        else:
            self._count("udp_send_errors", packet.destination, detail)

    def _send_frame(self, destination: Address, data: bytes, sockaddr: SockAddr) -> None:
        conn = self._outgoing.get(destination)
        if conn is None:
            if len(self._outgoing) >= self.limits.max_outgoing:
                self._count("tcp_dropped_frames", destination)
                return
            conn = self._dial(destination, sockaddr)
            if conn is None:
                self._count("tcp_dropped_frames", destination)
                return
        if len(conn.frames) >= self.limits.peer_queue:
            self._count("tcp_dropped_frames", destination)
            return
        conn.frames.append(memoryview(wire.encode_frame(data)))
        if conn.connected:
            self._write(conn)

    def _dial(self, destination: Address, sockaddr: SockAddr) -> _Outgoing | None:
        """Start a non-blocking connect (None, counted, if it fails at once)."""
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self._count("tcp_connect_failures", destination, errno.errorcode.get(code, code))
            return None
        conn = _Outgoing(sock, destination, self._clock() + self._tcp_timeout)
        self._outgoing[destination] = conn
        self._poller.register(sock, WRITE, lambda mask: self._on_outgoing(conn, mask))
        self._reckon()
        return conn

    def _on_outgoing(self, conn: _Outgoing, mask: int) -> None:
        if self._outgoing.get(conn.destination) is not conn:  # closed earlier this round
            return
        if not conn.connected:
            code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._fail(conn, "tcp_connect_failures", errno.errorcode.get(code, code))
                return
            conn.connected = True
            self._counters["tcp_connections_opened"] += 1
        elif mask & READ:  # peers never write on our outgoing connections: closed
            self._close_outgoing(conn)
            return
        self._write(conn)

    def _write(self, conn: _Outgoing) -> None:
        """Write what the socket takes; wait for writability while frames remain."""
        frames, counters = conn.frames, self._counters
        while frames:
            view = frames[0]
            try:
                sent = conn.sock.send(view)
            except BlockingIOError:
                break
            except OSError as exc:
                self._fail(conn, "tcp_send_failures", exc)
                return
            counters["tcp_bytes_sent"] += sent
            if sent < len(view):
                frames[0] = view[sent:]
                break
            frames.popleft()
            counters["tcp_frames_sent"] += 1
        limit = self._tcp_timeout if frames else self.limits.outgoing_idle
        conn.deadline = self._clock() + limit
        self._poller.modify(conn.sock, READ | WRITE if frames else READ)
        self._reckon()

    def _fail(self, conn: _Outgoing, what: str, detail: object) -> None:
        self._count(what, conn.destination, detail)
        self._close_outgoing(conn)

    def _close_outgoing(self, conn: _Outgoing) -> None:
        if self._outgoing.get(conn.destination) is conn:
            del self._outgoing[conn.destination]
        self._poller.unregister(conn.sock)
        conn.sock.close()
        for _ in conn.frames:
            self._count("tcp_dropped_frames", conn.destination)
        conn.frames.clear()
        self._reckon()

    # -- receiving -----------------------------------------------------------------------

    def _read_datagrams(self, mask: int) -> None:
        """Read one datagram: the poller is level-triggered, so another one waiting
        wakes the next turn at once, and a quiet socket costs no failed ``recvfrom``."""
        buffer = self._buffer
        try:
            size, source = self._udp.recvfrom_into(buffer)
        except BlockingIOError:
            return
        except OSError as exc:  # e.g. ICMP errors surfaced by some platforms
            self._count("udp_receive_errors", None, exc)
            return
        self._udp_received += 1
        self._udp_bytes_received += size
        self._deliver(source if self._ipv4 else normalize_source(source), bytes(buffer[:size]))

    def _accept(self, mask: int) -> None:
        for _ in range(self.limits.receive_batch):
            try:
                sock, peer = self._listener.accept()
            except BlockingIOError:
                break
            except OSError as exc:  # EMFILE and friends: back off instead of spinning
                self._count("tcp_accept_errors", None, exc)
                self._poller.unregister(self._listener)
                self._accept_paused = self._clock() + 0.1
                break
            source = normalize_source(peer)
            if self._allowed is not None and not self._allowed(source[0]):
                self._count("tcp_not_allowed", source)
                sock.close()
                continue
            if (
                len(self._incoming) >= self.limits.max_incoming
                or self._per_host[source[0]] >= self.limits.max_incoming_per_address
            ):
                self._count("tcp_connections_refused", source)
                sock.close()
                continue
            sock.setblocking(False)
            now = self._clock()
            idle, due = now + self.limits.incoming_idle, now + self._tcp_timeout
            incoming = _Incoming(sock, source, self.limits.max_frame, idle, due)
            self._incoming[sock] = incoming
            self._per_host[source[0]] += 1
            self._counters["tcp_connections_accepted"] += 1
            self._poller.register(sock, READ, functools.partial(self._read, incoming))
        self._reckon()

    def _read(self, incoming: _Incoming, mask: int) -> None:
        if incoming.sock not in self._incoming:  # closed earlier this round
            return
        source, decoder, counters = incoming.source, incoming.decoder, self._counters
        try:
            data = incoming.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._count("tcp_receive_errors", source, exc)
            self._close_incoming(incoming)
            return
        if not data:
            if decoder.buffered:
                self._count("tcp_truncated_frames", source)
            self._close_incoming(incoming)
            return
        counters["tcp_bytes_received"] += len(data)
        incoming.heard = True
        for frame in decoder.feed(data):
            counters["tcp_frames_received"] += 1
            self._deliver(source, frame, None)
        if decoder.error is not None:
            self._count("tcp_oversized_frames", source, decoder.error)
            self._close_incoming(incoming)
            return
        now = self._clock()
        incoming.deadline = now + self.limits.incoming_idle
        if not decoder.buffered:
            incoming.frame_deadline = math.inf
        elif incoming.frame_deadline == math.inf:
            incoming.frame_deadline = now + self._tcp_timeout
        for over in self._receiving.hold(incoming, decoder.buffered):
            self._count("tcp_receive_budget", over.source)
            self._close_incoming(over)
        self._reckon()

    def _close_incoming(self, incoming: _Incoming) -> None:
        self._receiving.release(incoming)
        if self._incoming.pop(incoming.sock, None) is not None:
            host = incoming.source[0]
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]
            self._poller.unregister(incoming.sock)
            incoming.sock.close()
            self._reckon()

    # -- bookkeeping ---------------------------------------------------------------------

    def _count(self, what: str, peer: Address | None, detail: object = None) -> None:
        self._counters[what] += 1
        if log.isEnabledFor(logging.DEBUG):
            where = format_address(peer) if peer else "-"
            log.debug("%s (peer %s): %s", what.replace("_", " "), where, detail or "")


def _discard(source: Address, data: bytes, peer: frozenset[str] | None = None) -> None:
    """Delivery before :meth:`LeanSockets.start`."""
