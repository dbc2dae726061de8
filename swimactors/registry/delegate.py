"""The registry riding on SWIM: deltas on gossip, full state on push/pull, pruning on DOWN.

:class:`RegistryDelegate` plugs a :class:`Registry` into a membership core on the
``"registry"`` channel.  Local mutations go through it so their deltas are broadcast at
once (split to fit a gossip packet; a registration too large for any packet is left to
push/pull and counted as ``deferred``).  The core spreads each broadcast epidemically and
deduplicates it, so the delegate never relays.  A lost delta is repaired by the next
push/pull, which exchanges full states.  MemberDown and MemberLeft drop the member's
registrations here and are broadcast as a floor.  A node declared dead by mistake
re-registers its names at its first push/pull after refuting.  After a cut heals, the
floors each side raised reach the other side in push/pulls: one that drops registrations
here is gossiped on, so the floored node hears it within gossip rounds and asks for a
push/pull at once (its names are missing everywhere until it re-registers).
"""

from __future__ import annotations

import collections
from typing import Protocol

from ..membership.core import BroadcastTooLarge
from ..membership.delegate import Delegate
from ..membership.types import Member, MemberDown, MemberEvent, MemberLeft
from .codec import RegistryDecodeError, decode, encode, split
from .crdt import Registration, State
from .registry import Registry

__all__ = ["CHANNEL", "RegistryDelegate"]

CHANNEL = "registry"

_BROADCAST_HEADROOM = 32
"""Bytes of a broadcast taken by the core's user-message framing (channel name, tags)."""


class Gossip(Protocol):
    """What the delegate needs from a membership core (:class:`~swimactors.membership.Swim`)."""

    @property
    def incarnation(self) -> int: ...

    def member(self, name: str) -> Member | None: ...

    @property
    def max_broadcast_size(self) -> int: ...

    def register_delegate(self, channel: str, delegate: Delegate) -> None: ...

    def broadcast(self, channel: str, payload: bytes, key: str | None = None) -> None: ...

    def sync_soon(self) -> None: ...


class RegistryDelegate(Delegate):
    """Binds ``registry`` to ``core``; mutate the registry through this object."""

    def __init__(self, registry: Registry, core: Gossip) -> None:
        self.registry = registry
        self.core = core
        self.counters: collections.Counter[str] = collections.Counter()
        """deltas_sent, parts_sent, bytes_sent, deferred, deltas/states_received,
        bytes_received, rejected_malformed, state_bytes_sent."""
        core.register_delegate(CHANNEL, self)

    # -- local mutations ----------------------------------------------------------------

    def register(self, name: str, actor_id: str, meta: bytes = b"") -> Registration:
        """Register ``name`` here and broadcast the delta; returns the new registration."""
        delta = self.registry.register(name, actor_id, meta)
        self.publish(delta)
        return next(iter(delta.entries.values()))

    def unregister(self, name: str) -> None:
        """Withdraw this node's claim on ``name`` and broadcast the delta."""
        self.publish(self.registry.unregister(name))

    def publish(self, delta: State) -> None:
        """Broadcast a delta in parts that each fit one gossip packet."""
        budget = self.core.max_broadcast_size - _BROADCAST_HEADROOM
        parts, deferred = split(delta, budget)
        self.counters["deltas_sent"] += 1
        self.counters["deferred"] += deferred
        for part in parts:
            try:
                self.core.broadcast(CHANNEL, part)
            except BroadcastTooLarge:
                self.counters["deferred"] += 1
                continue
            self.counters["parts_sent"] += 1
            self.counters["bytes_sent"] += len(part)

    # -- the membership hooks -------------------------------------------------------------

    def notify_message(self, payload: bytes, now: float) -> None:
        incoming = self._decode(payload, "deltas")
        if incoming is None:
            return
        was_dropped = self.registry.dropped()
        self.registry.merge(incoming)
        if self.registry.dropped() and not was_dropped:
            self.counters["syncs_requested"] += 1
            self.core.sync_soon()  # re-registers after that full state (_follow_incarnation)

    def local_state(self, join: bool) -> bytes:
        data = encode(self.registry.state())
        self.counters["state_bytes_sent"] += len(data)
        return data

    def merge_remote_state(self, data: bytes, join: bool, now: float) -> None:
        incoming = self._decode(data, "states")
        if incoming is None:
            return
        news = self._floors_dropping_others(incoming)
        self.registry.merge(incoming)
        for node, floor in news:
            self.counters["floors_spread"] += 1
            self.publish(self.registry.node_down(node, floor))
        self._follow_incarnation()

    def on_member_event(self, event: MemberEvent) -> None:
        if isinstance(event, MemberDown | MemberLeft):
            member = event.member
            self.publish(self.registry.node_down(member.name, member.incarnation))

    # -- internals ----------------------------------------------------------------------

    def _decode(self, data: bytes, kind: str) -> State | None:
        """A peer's delta or full state, its unverifiable floors dropped (None: malformed)."""
        self.counters[f"{kind}_received"] += 1
        self.counters["bytes_received"] += len(data)
        try:
            incoming = decode(data)
        except RegistryDecodeError:
            self.counters["rejected_malformed"] += 1
            return None
        self._drop_unverified_floors(incoming)
        return incoming

    def _floors_dropping_others(self, incoming: State) -> list[tuple[str, int]]:
        """Floors in a full state that drop other nodes' registrations held here.  After
        a cut heals they arrive by push/pull only (their gossip died out on the other
        side); gossiped on, they reach the floored node, which may be alive and must
        re-register, at once rather than at its own next push/pull."""
        registry = self.registry
        return [
            (node, floor)
            for node, floor in sorted(incoming.floors.items())
            if node != registry.node and registry.holds_for(node, floor)
        ]

    def _drop_unverified_floors(self, incoming: State) -> None:
        """Floors above the incarnation membership knows for their node: a floor is
        raised only when a node is seen DOWN or LEFT at an incarnation, so a higher one is
        forged (or runs ahead of our membership view, and comes back with a later
        push/pull).  Floors of nodes membership does not know cannot be checked."""
        for node, floor in list(incoming.floors.items()):
            known = self.core.member(node)
            if known is not None and floor > known.incarnation:
                del incoming.floors[node]
                self.counters["rejected_floors"] += 1

    def _follow_incarnation(self) -> None:
        """Re-register our names if we were declared dead and have since refuted it.

        Only after merging a full state: by then this node has seen what the cluster did
        while it was counted dead, so a name taken over meanwhile ranks before its
        re-registration (a floor alone, gossiped, would not carry those takeovers).
        """
        delta = self.registry.set_incarnation(self.core.incarnation)
        if delta is not None:
            self.counters["reregistrations"] += 1
            self.publish(delta)
