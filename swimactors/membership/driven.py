"""What every driver of one SWIM core on real sockets shares: the node's reads and writes on
its core, delivery of what arrives, and flushing what the core hands back.

Two drivers build on it: the trio driver (:class:`~swimactors.membership.node.Node`, what
``open_node`` gives a trio program) and the lean driver of the membership thread
(:class:`~swimactors.membership.lean.LeanNode`, a stdlib ``poll`` loop).  A driver adds
its clock, how it publishes events, how it waits for the core's next deadline (read after
each :meth:`DrivenNode._flush`), and how ``leave`` waits.
"""

from __future__ import annotations

import abc
import collections
import ipaddress
import random
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from ..logs import logger
from .config import Config
from .core import Swim
from .delegate import Delegate
from .keys import KEYS_CHANNEL, KeyGossip
from .messages import PROTOCOL_VERSION
from .once import OncePerPeer
from .types import Address, Member, MemberEvent, Packet, format_address, parse_address

__all__ = [
    "DEFAULT_PORT",
    "DrivenNode",
    "Sender",
    "leave_timeout_for",
    "new_core",
    "parse_seeds",
    "warn_if_open",
]

log = logger("swimactors.membership.node")
"""The trio driver's logger name, kept for both drivers (operators filter on it)."""

DEFAULT_PORT = 7946
"""memberlist's and Serf's default gossip port."""


class Sender(Protocol):
    """What a driven node needs of its network to send (every transport has it)."""

    @property
    def address(self) -> Address: ...

    @property
    def counters(self) -> collections.Counter[str]: ...

    def send(self, packet: Packet) -> None: ...


class DrivenNode(abc.ABC):
    """A running member of a cluster: its core, and what a driver does with the core."""

    def __init__(self, core: Swim, transport: Sender, leave_timeout: float) -> None:
        self._core = core
        self._transport = transport
        self._leave_timeout = leave_timeout
        self._leaving = False
        self._core_errors = 0
        self._foreign = OncePerPeer("dropping packets from another cluster", log)
        self._other_version = OncePerPeer(
            "dropping packets of another membership protocol version", log
        )
        self._keys: KeyGossip | None = None
        if core.config.keyring is not None:
            self._keys = KeyGossip(core.config.keyring, self._broadcast_keyring)
            core.register_delegate(KEYS_CHANNEL, self._keys)

    # -- what the driver provides ----------------------------------------------------------

    @abc.abstractmethod
    def _now(self) -> float:
        """The driver's clock, in seconds (what the core is fed)."""

    @abc.abstractmethod
    def _publish(self, event: MemberEvent) -> None:
        """Hand one membership event to whoever listens."""

    def _events_dropped(self) -> int:
        """Events lost by the driver's own buffering (per-reader losses are the reader's)."""
        return 0

    @abc.abstractmethod
    async def leave(self, timeout: float | None = None) -> bool:
        """Leave the cluster gracefully; True once peers were told within ``timeout``."""

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

    def unreached(self) -> frozenset[str]:
        """Live members whose last probe from this node failed (``Swim.unreached``)."""
        return self._core.unreached()

    def member(self, name: str) -> Member | None:
        return self._core.member(name)

    @property
    def counters(self) -> collections.Counter[str]:
        """Protocol counters (the core's) plus transport and event-delivery counters."""
        counters = collections.Counter(self._core.counters)
        counters.update(self._transport.counters)
        counters["events_dropped"] = self._events_dropped()
        counters["driver_errors"] = self._core_errors
        if self._keys is not None:
            counters.update(self._keys.counters)
        return counters

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
        self._join(parse_seeds(seeds))

    def _broadcast_keyring(self, data: bytes) -> None:
        self.broadcast(KEYS_CHANNEL, data, key=KEYS_CHANNEL)

    def force_leave(self, name: str) -> bool:
        """Mark the DOWN member ``name`` LEFT cluster-wide (Serf's force-leave); False
        when it is not DOWN here."""
        done = self._core.force_leave(name, self._now())
        self._flush()
        return done

    async def set_meta(self, meta: bytes) -> None:
        """Replace this node's metadata and announce it (raises ValueError if too large)."""
        self._core.set_meta(meta, self._now())
        self._flush()

    def _begin_leave(self) -> None:
        """Start spreading LEFT (once); the core keeps ticking until it has."""
        if not self._leaving:
            self._leaving = True
            self._core.leave(self._now())
            self._flush()

    # -- the driver ----------------------------------------------------------------------

    def _name_at(self, address: Address) -> str | None:
        """The member known at ``address`` (the name a TLS peer there must prove)."""
        return next((m.name for m in self._core.members() if m.address == address), None)

    def _deliver(self, source: Address, data: bytes, peer: frozenset[str] | None = None) -> None:
        """A datagram or frame arrived: hand it to the core and act on the result (``peer``:
        the names the TLS certificate of a frame's connection proved)."""
        try:
            refused = self._core.receive(self._now(), source, data, peer)
        except Exception:  # the core must not raise on input; a bug must not kill the node
            self._core_errors += 1
            log.exception("SWIM core raised on a packet from %s", source)
        else:
            if refused == "label":
                self._foreign(source, "another cluster label")
            elif refused == "version":
                self._other_version(source, f"this node speaks version {PROTOCOL_VERSION}")
        self._flush()

    def _tick(self, now: float) -> bool:
        """Tick the core; False (logged and counted) if it raised."""
        try:
            self._core.tick(now)
        except Exception:
            self._core_errors += 1
            log.exception("SWIM core raised in tick()")
            return False
        return True

    def _flush(self) -> None:
        """Send the core's outgoing packets and publish its events."""
        core = self._core
        if core.outgoing:  # (most turns send or publish nothing: no calls then)
            send = self._transport.send
            for packet in core.take_outgoing():
                send(packet)
        if core.events:
            for event in core.take_events():
                self._publish(event)

    def _join(self, seeds: list[Address]) -> None:
        """Push/pull with the seeds; the core retries with backoff until one answers, so
        agents may be started in any order."""
        self._core.join(seeds, self._now())
        self._flush()


def parse_seeds(seeds: Iterable[str | Address]) -> list[Address]:
    """Seed addresses from ``host:port`` strings or pairs (the default port when none)."""
    return [
        parse_address(seed, DEFAULT_PORT) if isinstance(seed, str) else (seed[0], int(seed[1]))
        for seed in seeds
    ]


def leave_timeout_for(config: Config, leave_timeout: float | None) -> float:
    """How long leaving waits for LEFT to spread (default: ten gossip rounds, at least 2 s)."""
    return max(2.0, 10 * config.gossip_interval) if leave_timeout is None else leave_timeout


def warn_if_open(name: str, config: Config, bound: Address) -> None:
    """Warn when a node without a keyring binds an address others can reach."""
    if config.keyring is None and not ipaddress.ip_address(bound[0]).is_loopback:
        log.warning(
            "node %s binds %s without a keyring: anyone who can reach it can join, "
            "read and forge membership (see docs/security.md)",
            name,
            format_address(bound),
        )


def new_core(
    name: str,
    address: Address,
    config: Config,
    rng: random.Random | None,
    meta: bytes,
    incarnation: int | None,
    clock: Callable[[], float] = time.time,
) -> Swim:
    """The node's core; ``incarnation`` defaults to the wall clock (``clock``, seconds)
    in milliseconds.  Warns when ``address``, the one advertised, is outside the config's
    own ``cidrs_allowed``: peers with the same list refuse this node."""
    if not config.ip_allowed(address[0]):
        log.warning(
            "node %s advertises %s, outside its own cidrs_allowed: peers with the same "
            "list will refuse it (see docs/security.md)",
            name,
            format_address(address),
        )
    wall_ms = int(clock() * 1000)
    return Swim(
        name=name,
        address=address,
        config=config,
        rng=rng if rng is not None else random.Random(),
        meta=meta,
        incarnation=wall_ms if incarnation is None else incarnation,
        wall_ms=wall_ms,
    )
