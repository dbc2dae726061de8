"""The trio driver: runs one sans-IO SWIM core on real sockets for the life of a block.

``open_node`` binds a UDP socket and a TCP listener on one port (or takes any
:class:`~swimactors.membership.transport.NodeTransport`), feeds every datagram and frame to
the core, sends what the core hands back, ticks the core by its own
``next_deadline()`` on ``trio.current_time()`` (so a ``MockClock`` drives it in tests), and
fans events out to subscribers.  Leaving the block leaves the cluster gracefully.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import math
import random
import socket as stdlib_socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import trio

from .config import Config
from .core import Swim
from .delegate import Delegate
from .events import DEFAULT_EVENT_BUFFER, EventHub, Subscription
from .keys import KEYS_CHANNEL, KeyGossip
from .once import OncePerPeer
from .sealing import SealedTransport
from .transport import NodeTransport, Transport, normalize_source, resolve
from .types import Address, Member, MemberEvent, format_address, parse_address

__all__ = ["DEFAULT_PORT", "Node", "open_node"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 7946
"""memberlist's and Serf's default gossip port."""


class Node:
    """A running member of a cluster; get one from :func:`open_node`."""

    def __init__(self, core: Swim, transport: NodeTransport, leave_timeout: float) -> None:
        self._core = core
        self._transport = transport
        self._hub: EventHub[MemberEvent] = EventHub()
        self._leave_timeout = leave_timeout
        self._timer = trio.CancelScope()
        self._deadline = math.inf
        """The core's next deadline (inf: none), which the timer scope always carries."""
        self._leaving = False
        self._left = trio.Event()
        self._core_errors = 0
        self._foreign = OncePerPeer("dropping packets from another cluster", log)
        self._keys: KeyGossip | None = None
        if core.config.keyring is not None:
            self._keys = KeyGossip(core.config.keyring, self._broadcast_keyring)
            core.register_delegate(KEYS_CHANNEL, self._keys)

    # -- what users read -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def address(self) -> Address:
        """The address peers reach this node at (the real port when bound to port 0)."""
        return self._core.address

    @property
    def bound_address(self) -> Address:
        """The transport's own address (differs from :attr:`address` behind NAT)."""
        return self._transport.address

    @property
    def config(self) -> Config:
        return self._core.config

    @property
    def incarnation(self) -> int:
        return self._core.incarnation

    @property
    def awareness(self) -> int:
        """Lifeguard local health score: 0 is healthy, higher means slower probing."""
        return self._core.awareness

    @property
    def local_member(self) -> Member:
        member = self._core.member(self._core.name)
        assert member is not None, "the core always knows itself"
        return member

    @property
    def keys(self) -> KeyGossip | None:
        """Cluster-wide key rotation (install, use, remove); None without a keyring."""
        return self._keys

    def members(self) -> list[Member]:
        """Every member this node knows, itself included, in any status."""
        return self._core.members()

    def member(self, name: str) -> Member | None:
        return self._core.member(name)

    @property
    def counters(self) -> collections.Counter[str]:
        """Protocol counters (the core's) plus transport and event-delivery counters."""
        counters = collections.Counter(self._core.counters)
        counters.update(self._transport.counters)
        counters["events_dropped"] = self._hub.dropped
        counters["driver_errors"] = self._core_errors
        if self._keys is not None:
            counters.update(self._keys.counters)
        return counters

    def events(self, buffer: int = DEFAULT_EVENT_BUFFER) -> Subscription[MemberEvent]:
        """Subscribe to membership events from now on (``async for event in ...``).

        Each subscription buffers up to ``buffer`` unread events; past that the oldest are
        dropped and an :class:`~swimactors.membership.events.EventsDropped` marks the gap.
        """
        return self._hub.subscribe(buffer)

    # -- what users do -------------------------------------------------------------------

    @property
    def max_broadcast_size(self) -> int:
        """Largest payload :meth:`broadcast` takes (a channel name of up to 16 bytes)."""
        return self._core.max_broadcast_size

    def register_delegate(self, channel: str, delegate: Delegate) -> None:
        """Let a layer ride on this node's gossip under ``channel`` (see :class:`Delegate`)."""
        self._core.register_delegate(channel, delegate)

    def broadcast(self, channel: str, payload: bytes, key: str | None = None) -> None:
        """Spread ``payload`` to every member by gossip, starting now (raises
        :class:`~swimactors.membership.BroadcastTooLarge` past :attr:`max_broadcast_size`)."""
        self._core.broadcast(channel, payload, key)
        self._flush()

    def sync_soon(self) -> None:
        """Swap full states with a random alive member now (see ``Swim.sync_soon``)."""
        self._core.sync_soon()
        self._flush()

    def join(self, seeds: Iterable[str | Address]) -> None:
        """Join (or re-join) through more members at any time: push/pull with ``seeds``,
        retried with backoff until one answers (ValueError for a malformed address)."""
        self._join(_parse_seeds(seeds))

    def _broadcast_keyring(self, data: bytes) -> None:
        self.broadcast(KEYS_CHANNEL, data, key=KEYS_CHANNEL)

    def force_leave(self, name: str) -> bool:
        """Mark the DOWN member ``name`` LEFT cluster-wide (Serf's force-leave); False
        when it is not DOWN here."""
        done = self._core.force_leave(name, trio.current_time())
        self._flush()
        return done

    async def set_meta(self, meta: bytes) -> None:
        """Replace this node's metadata and announce it (raises ValueError if too large)."""
        self._core.set_meta(meta, trio.current_time())
        self._flush()
        await trio.lowlevel.checkpoint()

    async def leave(self, timeout: float | None = None) -> bool:
        """Leave the cluster gracefully; True once peers were told within ``timeout``."""
        if not self._leaving:
            self._leaving = True
            self._core.leave(trio.current_time())
            self._flush()
        with trio.move_on_after(self._leave_timeout if timeout is None else timeout):
            await self._left.wait()
            await self._transport.flush()
            return True
        return False

    # -- the driver ----------------------------------------------------------------------

    def _name_at(self, address: Address) -> str | None:
        """The member known at ``address`` (the name a TLS peer there must prove)."""
        return next((m.name for m in self._core.members() if m.address == address), None)

    def _deliver(self, source: Address, data: bytes, peer: frozenset[str] | None = None) -> None:
        """A datagram or frame arrived: hand it to the core and act on the result (``peer``:
        the names the TLS certificate of a frame's connection proved)."""
        counters = self._core.counters
        foreign = counters.get("rejected_label")  # .get: no Counter.__missing__ call
        try:
            self._core.receive(trio.current_time(), source, data, peer)
            if counters.get("rejected_label") != foreign:
                self._foreign(source, "another cluster label")
        except Exception:  # the core must not raise on input; a bug must not kill the node
            self._core_errors += 1
            log.exception("SWIM core raised on a packet from %s", source)
        self._flush()

    def _flush(self) -> None:
        """Send the core's outgoing packets, publish its events, and move the timer to the
        core's next deadline, earlier or later: an ack that beats the probe timeout moves
        it later, and the node must not wake at the old time to find nothing to do."""
        core = self._core
        for packet in core.take_outgoing():
            self._transport.send(packet)
        for event in core.take_events():
            self._hub.publish(event)
        if self._leaving and core.leave_finished:
            self._left.set()
        deadline = core.next_deadline()
        if deadline is None:
            deadline = math.inf
        if deadline != self._deadline:
            self._deadline = self._timer.deadline = deadline

    async def _run_timers(self) -> None:
        """Tick the core whenever its next deadline passes (one cancel scope a wake-up;
        :meth:`_flush` keeps the sleeping scope's deadline on the core's)."""
        core = self._core
        while True:
            with trio.CancelScope(deadline=self._deadline) as timer:
                self._timer = timer
                await trio.sleep_forever()
            now = trio.current_time()
            if now < self._deadline:  # moved later after the scope had already expired
                continue
            try:
                core.tick(now)
            except Exception:
                self._core_errors += 1
                log.exception("SWIM core raised in tick()")
                await trio.sleep(core.config.probe_interval)
            self._flush()

    def _join(self, seeds: list[Address]) -> None:
        """Push/pull with the seeds; the core retries with backoff until one answers, so
        agents may be started in any order."""
        self._core.join(seeds, trio.current_time())
        self._flush()

    def _close(self) -> None:
        self._hub.close()


def _parse_seeds(seeds: Iterable[str | Address]) -> list[Address]:
    return [
        parse_address(seed, DEFAULT_PORT) if isinstance(seed, str) else (seed[0], int(seed[1]))
        for seed in seeds
    ]


async def _advertised(
    advertise: str | Address | None, bound: Address, seeds: list[Address]
) -> Address:
    """The address to announce: ``advertise`` if given, else the bound one; for a wildcard
    bind, the local interface address that routes towards the first seed (or loopback)."""
    if advertise is not None:
        if isinstance(advertise, str):
            return parse_address(advertise, bound[1])
        return advertise[0], int(advertise[1])
    host, port = bound
    if host not in ("0.0.0.0", "::"):
        return bound
    family = stdlib_socket.AF_INET6 if host == "::" else stdlib_socket.AF_INET
    target = seeds[0] if seeds else ("192.0.2.1" if host == "0.0.0.0" else "2001:db8::1", 9)
    try:
        # a dual-stack [::] bind with an IPv4 seed advertises its IPv4 address
        seed_family, sockaddr = await resolve(target[0], target[1], 0 if seeds else family)
        with trio.socket.socket(seed_family, stdlib_socket.SOCK_DGRAM) as probe:
            await probe.connect(sockaddr)  # no packet is sent: this only asks for a route
            local = normalize_source(probe.getsockname())[0]
    except OSError:
        local = "127.0.0.1" if family == stdlib_socket.AF_INET else "::1"
    return local, port


@asynccontextmanager
async def open_node(
    *,
    name: str,
    bind: str | Address = f"0.0.0.0:{DEFAULT_PORT}",
    seeds: Iterable[str | Address] = (),
    config: Config | None = None,
    advertise: str | Address | None = None,
    meta: bytes = b"",
    rng: random.Random | None = None,
    leave_timeout: float | None = None,
    incarnation: int | None = None,
    transport: NodeTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Node]:
    """Run a cluster member for the life of the block.

    ``bind`` is ``host:port`` (IPv4, ``[IPv6]`` or a host name; port 0 picks a free one);
    ``seeds`` are members to join through; ``advertise`` is the address peers should use
    when it differs from the bound one (NAT, wildcard binds).  Leaving the block leaves
    the cluster (waiting at most ``leave_timeout`` seconds), then closes the sockets.
    ``incarnation`` defaults to the wall clock in milliseconds, so a restarted process is
    always newer than its past life; layers that tag their state with it (the registry)
    may pick it first and pass it in.  ``transport`` replaces the sockets (``bind`` is then
    unused and the transport's address is advertised); the node starts and closes it.
    ``clock`` reads the wall clock in seconds (a simulation gives its own): the default
    incarnation, the horizon for forged ones, and the period count that keeps every
    member's probes in step on the probe ring (docs/protocol.md) come from it.
    """
    config = config if config is not None else Config.lan()
    if config.tls is not None:
        config.tls.check_names(name)  # else every peer would refuse this node
    seed_addresses = _parse_seeds(seeds)
    if leave_timeout is None:
        leave_timeout = max(2.0, 10 * config.gossip_interval)
    node: Node | None = None
    on_sockets = transport is None
    sockets: Transport | None = None
    if transport is None:
        host, port = parse_address(bind, DEFAULT_PORT) if isinstance(bind, str) else bind
        sockets = Transport(tcp_timeout=config.tcp_timeout, tls=config.tls)
        await sockets.bind(host, int(port))
        transport = sockets
        if config.keyring is None and not ipaddress.ip_address(sockets.address[0]).is_loopback:
            log.warning(
                "node %s binds %s without a keyring: anyone who can reach it can join, "
                "read and forge membership (see docs/security.md)",
                name,
                format_address(sockets.address),
            )
    if config.keyring is not None:
        transport = SealedTransport(transport, config.keyring, config.label)
    try:
        if on_sockets or advertise is not None:
            address = await _advertised(advertise, transport.address, seed_addresses)
        else:
            address = transport.address
        wall_ms = int(clock() * 1000)
        core = Swim(
            name=name,
            address=address,
            config=config,
            rng=rng if rng is not None else random.Random(),
            meta=meta,
            incarnation=wall_ms if incarnation is None else incarnation,
            wall_ms=wall_ms,
        )
        node = Node(core, transport, leave_timeout)
        if sockets is not None:
            sockets.name_at = node._name_at
        body_error: BaseException | None = None
        async with trio.open_nursery() as nursery:
            transport.start(nursery, node._deliver)
            nursery.start_soon(node._run_timers)
            if seed_addresses:
                node._join(seed_addresses)
            try:
                yield node
            except BaseException as exc:  # re-raised below, outside the nursery's group
                body_error = exc
            finally:
                with trio.CancelScope(shield=True):
                    await node.leave()
                nursery.cancel_scope.cancel()
        if body_error is not None:
            raise body_error
    finally:
        if node is not None:
            node._close()
        await transport.aclose()
