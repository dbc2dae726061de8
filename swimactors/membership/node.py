"""The trio driver: runs one sans-IO SWIM core on real sockets for the life of a block.

``open_node`` binds a UDP socket and a TCP listener on one port (or takes any
:class:`~swimactors.membership.transport.NodeTransport`), feeds every datagram and frame to
the core, sends what the core hands back, ticks the core by its own
``next_deadline()`` on ``trio.current_time()`` (so a ``MockClock`` drives it in tests), and
fans events out to subscribers.  Leaving the block leaves the cluster gracefully.
"""

from __future__ import annotations

import math
import random
import socket as stdlib_socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import trio

from .config import Config
from .core import Swim
from .driven import (
    DEFAULT_PORT,
    DrivenNode,
    leave_timeout_for,
    new_core,
    parse_seeds,
    warn_if_open,
)
from .events import DEFAULT_EVENT_BUFFER, EventHub, Subscription
from .sealing import SealedTransport
from .transport import NodeTransport, Transport, normalize_source, resolve
from .types import Address, MemberEvent, parse_address

__all__ = ["DEFAULT_PORT", "Node", "open_node"]


class Node(DrivenNode):
    """A running member of a cluster; get one from :func:`open_node`."""

    def __init__(self, core: Swim, transport: NodeTransport, leave_timeout: float) -> None:
        super().__init__(core, transport, leave_timeout)
        self._transport: NodeTransport = transport
        self._hub: EventHub[MemberEvent] = EventHub()
        self._timer = trio.CancelScope()
        self._deadline = math.inf
        """The core's next deadline (inf: none), which the timer scope always carries."""
        self._left = trio.Event()

    def events(self, buffer: int = DEFAULT_EVENT_BUFFER) -> Subscription[MemberEvent]:
        """Subscribe to membership events from now on (``async for event in ...``).

        Each subscription buffers up to ``buffer`` unread events; past that the oldest are
        dropped and an :class:`~swimactors.membership.events.EventsDropped` marks the gap.
        """
        return self._hub.subscribe(buffer)

    async def set_meta(self, meta: bytes) -> None:
        """Replace this node's metadata and announce it (raises ValueError if too large)."""
        await super().set_meta(meta)
        await trio.lowlevel.checkpoint()

    async def leave(self, timeout: float | None = None) -> bool:
        """Leave the cluster gracefully; True once peers were told within ``timeout``."""
        self._begin_leave()
        with trio.move_on_after(self._leave_timeout if timeout is None else timeout):
            await self._left.wait()
            await self._transport.flush()
            return True
        return False

    # -- the driver ----------------------------------------------------------------------

    def _now(self) -> float:
        return trio.current_time()

    def _publish(self, event: MemberEvent) -> None:
        self._hub.publish(event)

    def _events_dropped(self) -> int:
        return self._hub.dropped

    def _flush(self) -> None:
        """Send and publish what the core handed back, then move the timer to the core's
        next deadline, earlier or later: an ack that beats the probe timeout moves it
        later, and the node must not wake at the old time to find nothing to do."""
        super()._flush()
        core = self._core
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
            if not self._tick(now):
                await trio.sleep(core.config.probe_interval)
            self._flush()

    def _close(self) -> None:
        self._hub.close()


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
        with stdlib_socket.socket(seed_family, stdlib_socket.SOCK_DGRAM) as probe:
            probe.connect(sockaddr)  # no packet is sent: this only asks for a route
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
    seed_addresses = parse_seeds(seeds)
    node: Node | None = None
    on_sockets = transport is None
    sockets: Transport | None = None
    if transport is None:
        host, port = parse_address(bind, DEFAULT_PORT) if isinstance(bind, str) else bind
        sockets = Transport(
            tcp_timeout=config.tcp_timeout, tls=config.tls, allowed=config.allow_list()
        )
        await sockets.bind(host, int(port))
        transport = sockets
        warn_if_open(name, config, sockets.address)
    if config.keyring is not None:
        transport = SealedTransport(transport, config.keyring, config.label)
    try:
        if on_sockets or advertise is not None:
            address = await _advertised(advertise, transport.address, seed_addresses)
        else:
            address = transport.address
        core = new_core(name, address, config, rng, meta, incarnation, clock)
        node = Node(core, transport, leave_timeout_for(config, leave_timeout))
        if sockets is not None:
            sockets.name_at = node._name_at
            sockets.heard_from = core.heard_from
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
