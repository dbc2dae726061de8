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

WAITING_DELTAS = 256
"""Gossiped deltas (parts) kept while membership does not know their writer yet; the
oldest goes first (a later push/pull brings what it carried)."""
RECENT_MEMBERS = 1024
"""Members of the latest events remembered: a mirrored node's member table catches up
with an event after the delegate hears of it, and a delta right behind must not wait."""


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
        self._waiting: collections.deque[State] = collections.deque()
        """Parts of gossiped deltas whose writers membership does not know yet."""
        self._recent: collections.OrderedDict[str, Member] = collections.OrderedDict()
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
        if incoming is not None:
            self._wait(self._hold_back(incoming))
            self._merge_delta(incoming)

    def _merge_delta(self, incoming: State) -> None:
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
        if self._hold_back(incoming).context.replicas():
            self.counters["states_held_back"] += 1  # its writers' news comes first
        news = self._floors_dropping_others(incoming)
        self.registry.merge(incoming)
        for node, floor in news:
            self.counters["floors_spread"] += 1
            self.publish(self.registry.node_down(node, floor))
        self._follow_incarnation()

    def on_member_event(self, event: MemberEvent) -> None:
        member = event.member
        self._recent[member.name] = member
        self._recent.move_to_end(member.name)
        if len(self._recent) > RECENT_MEMBERS:
            self._recent.popitem(last=False)
        if isinstance(event, MemberDown | MemberLeft):
            self.publish(self.registry.node_down(member.name, member.incarnation))
        elif any(
            member.name == node for part in self._waiting for node, _ in part.context.replicas()
        ):
            waiting, self._waiting = self._waiting, collections.deque()
            for part in waiting:
                still = self._hold_back(part)
                if still.context.replicas():
                    self._waiting.append(still)
                self._merge_delta(part)

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
        """Floors of nodes membership does not know, or above the incarnation it knows
        for their node: a floor is raised only when a node is seen DOWN or LEFT at an
        incarnation, so a higher one is forged (or runs ahead of our membership view, and
        comes back with a later push/pull)."""
        for node, floor in list(incoming.floors.items()):
            known = self._incarnation(node)
            if known is None or floor > known:
                del incoming.floors[node]
                self.counters["rejected_floors"] += 1

    def _hold_back(self, incoming: State) -> State:
        """Split off (and return) the processes membership cannot vouch for yet: of a
        node it does not know, or at an incarnation above the one it knows (a new member,
        or a restart, whose news is still on its way: from gossip they wait for it in
        :meth:`_wait`; a full state's come again with a later push/pull).  A made-up node
        so never enters the registry.  Nodes whose part would take them past the
        registry's limits are dropped too (``rejected_over_limit``)."""
        waiting = []
        for replica in incoming.context.replicas():
            known = self._incarnation(replica[0])
            if known is None or replica[1] > known:
                waiting.append(replica)
        held_back = incoming.split_off(waiting)
        over = self.registry.over_limits(incoming)
        if over:
            self.counters["rejected_over_limit"] += len(over)
            incoming.split_off([r for r in incoming.context.replicas() if r[0] in over])
        return held_back

    def _incarnation(self, node: str) -> int | None:
        """The incarnation membership knows for ``node`` (None: not a member), or that of
        its latest event if higher."""
        member = self.core.member(node)
        recent = self._recent.get(node)
        known = [m.incarnation for m in (member, recent) if m is not None]
        return max(known) if known else None

    def _wait(self, part: State) -> None:
        """Keep a gossiped delta's part until membership knows its writers (counted
        ``held_back``; the oldest is dropped past :data:`WAITING_DELTAS`)."""
        if part.context.replicas():
            self.counters["held_back"] += 1
            self._waiting.append(part)
            if len(self._waiting) > WAITING_DELTAS:
                self._waiting.popleft()
                self.counters["held_back_dropped"] += 1

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
