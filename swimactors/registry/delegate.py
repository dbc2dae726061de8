"""The registry riding on SWIM: deltas on gossip, full state on push/pull, pruning on DOWN.

:class:`RegistryDelegate` plugs a :class:`Registry` into a membership core on the
``"registry"`` channel.  Local mutations go through it so their deltas are broadcast at
once (split to fit a gossip packet; a registration too large for any packet is left to
push/pull and counted as ``deferred``).  The core spreads each broadcast epidemically and
deduplicates it, so the delegate never relays.  A lost delta is repaired by push/pull,
which carries the full state (in parts, key ranges in turn, when it is too large for one
message: :mod:`~swimactors.registry.parts`).  MemberDown and MemberLeft drop the member's
registrations here and are broadcast as a floor.  A node declared dead by mistake
re-registers its names once, after refuting, it has merged parts covering every key.
After a cut heals, the floors each side raised reach the other side in push/pulls: one
that drops registrations here is gossiped on, so the floored node hears it within gossip
rounds and asks for a push/pull at once (its names are missing everywhere until it
re-registers).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Protocol, TypeVar

import attrs

from ..membership.core import BroadcastTooLarge
from ..membership.delegate import Delegate
from ..membership.types import Member, MemberDown, MemberEvent, MemberLeft
from .codec import RegistryDecodeError, decode, decode_part, encode_part, split
from .crdt import Registration, State
from .parts import PART_BYTES, PART_ITEMS, Coverage, Key, Part, Piece, after_replica
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
WAITING_PIECES = 4
"""Full-state pieces kept until the counters below them arrive (a process larger than a
part comes in several, in any order); the oldest goes first (the next cycle brings it).
Each holds up to a part's registrations, so this bounds what peers can park here."""

Range = tuple[Key | None, Key | None]
_Decoded = TypeVar("_Decoded", State, Part)


@attrs.define
class _Waiting:
    """A piece waiting for the counters below it, the key range it covers, and the
    episode (:meth:`RegistryDelegate._episode`) it arrived in (None: none, or not known
    before the merge it arrived with ends)."""

    piece: Piece
    covers: Range
    episode: int | None = None
    arrived: bool = True
    """Still in the merge it arrived with."""


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
        self.part_items = PART_ITEMS
        self.part_bytes = PART_BYTES
        """How large a full-state part may be (CBOR items, bytes)."""
        self._next: Key | None = None
        """Where the next full-state part starts (None: at the first key)."""
        self._pieces: collections.deque[_Waiting] = collections.deque()
        """Pieces of peers' full states waiting for the counters below them."""
        self._coverage: Coverage | None = None
        """Key ranges of full-state parts merged since this node stood dropped and
        refuted (None: it does not), and its floor then (:meth:`_follow_incarnation`)."""
        self._coverage_floor = -1
        core.register_delegate(CHANNEL, self)

    # -- local mutations ----------------------------------------------------------------

    def register(self, name: str, actor_id: str, meta: bytes = b"") -> Registration | None:
        """Register ``name`` here and broadcast the delta; returns the new registration,
        or None while this node stands declared dead (the name is held and published
        once membership has refuted: :meth:`Registry.register`)."""
        delta = self.registry.register(name, actor_id, meta)
        self.publish(delta)
        return next(iter(delta.registrations_all()), None)

    def unregister(self, name: str) -> State:
        """Withdraw this node's claim on ``name`` and broadcast the delta (returned, for a
        caller that may have to gossip it again)."""
        delta = self.registry.unregister(name)
        self.publish(delta)
        return delta

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
        incoming = self._decode(payload, "deltas", decode)
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
        """The full state, whole when it fits the decoders' limits, else its next part
        (key ranges in turn, so successive push/pulls carry all of it)."""
        part = self.registry.part(self._next, self.part_items, self.part_bytes)
        self._next = part.end
        data = encode_part(part)
        self.counters["state_bytes_sent"] += len(data)
        if not part.whole:
            self.counters["state_parts_sent"] += 1
        return data

    def merge_remote_state(self, data: bytes, join: bool, now: float) -> None:
        part = self._decode(data, "states", decode_part)
        if part is None:
            return
        incoming = part.state
        if self._hold_back(incoming).context.replicas():
            self.counters["states_held_back"] += 1  # its writers' news comes first
        news = self._floors_dropping_others(incoming)
        self.registry.merge(incoming)
        for node, floor in news:
            self.counters["floors_spread"] += 1
            self.publish(self.registry.node_down(node, floor))
        covered = self._merge_piece(part)
        episode = self._episode()
        for item in self._merge_waiting_pieces():
            if item.arrived or item.episode == episode:
                covered.append(item.covers)
        for item in self._pieces:
            if item.arrived:
                item.arrived, item.episode = False, episode
        self._follow_incarnation(covered, episode)

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

    def _decode(
        self, data: bytes, kind: str, decoder: Callable[[bytes], _Decoded]
    ) -> _Decoded | None:
        """A peer's delta or full state's part, its unverifiable floors dropped (None:
        malformed)."""
        self.counters[f"{kind}_received"] += 1
        self.counters["bytes_received"] += len(data)
        try:
            incoming = decoder(data)
        except RegistryDecodeError:
            self.counters["rejected_malformed"] += 1
            return None
        self._drop_unverified_floors(incoming if isinstance(incoming, State) else incoming.state)
        return incoming

    def _merge_piece(self, part: Part) -> list[Range]:
        """Merge the part's piece, or keep it until the counters below it arrive (a piece
        of a process membership does not vouch for is dropped); the key ranges merged."""
        piece = part.piece
        if piece is None:
            return [(part.start, part.end)]
        end = after_replica(piece.replica)
        if part.end is not None and part.end < end:
            end = part.end
        if self.registry.takes_piece(piece) or not self._known(piece):
            self._merge_vouched(piece)
            return [(part.start, part.end)]
        self.counters["pieces_waiting"] += 1
        self._pieces.append(_Waiting(piece, (part.start, end)))
        if len(self._pieces) > WAITING_PIECES:
            self._pieces.popleft()
            self.counters["pieces_dropped"] += 1
        return [(end, part.end)]

    def _merge_waiting_pieces(self) -> list[_Waiting]:
        """Merge the waiting pieces whose earlier counters have arrived; those merged."""
        merged: list[_Waiting] = []
        while True:
            ready = [item for item in self._pieces if self.registry.takes_piece(item.piece)]
            if not ready:
                return merged
            for item in ready:
                self._pieces.remove(item)
                self._merge_vouched(item.piece)
                merged.append(item)

    def _merge_vouched(self, piece: Piece) -> None:
        """Merge ``piece`` unless membership cannot vouch for its process or it would take
        it past the limits (dropped as a state's process is: it comes again)."""
        if self._vouched(piece):
            self.registry.merge_piece(piece)

    def _known(self, piece: Piece) -> bool:
        """Whether membership knows the piece's process (its node, at an incarnation at
        least the process's)."""
        known = self._incarnation(piece.replica[0])
        return known is not None and piece.replica[1] <= known

    def _vouched(self, piece: Piece) -> bool:
        """Whether membership vouches for the piece's process and it stays within the
        limits (counted ``states_held_back`` or ``rejected_over_limit`` if not)."""
        if not self._known(piece):
            self.counters["states_held_back"] += 1
            return False
        if self.registry.over_limits(piece):
            self.counters["rejected_over_limit"] += 1
            return False
        return True

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

    def _episode(self) -> int | None:
        """This node's floor while it stands dropped and refuted (its names wait for a
        full state to be re-registered), else None.  Floors only rise, and past a
        re-registration the epoch is above the old floor, so a floor names one episode."""
        registry = self.registry
        floor = registry.floor(registry.node)
        return floor if registry.dropped() and self.core.incarnation > floor else None

    def _follow_incarnation(self, covered: list[Range], episode: int | None) -> None:
        """Re-register our names if we were declared dead and have since refuted it.

        Only after merging a full state: by then this node has seen what the cluster did
        while it was counted dead, so a name taken over meanwhile ranks before its
        re-registration (a floor alone, gossiped, would not carry those takeovers).  A
        full state in parts counts once the key ranges ``covered`` by the parts merged in
        this ``episode`` cover every key: parts from any peers, in any order; a lost one
        leaves a gap, which a later one fills.
        """
        if episode is None:
            self._coverage = None
            return
        if self._coverage is None or self._coverage_floor != episode:
            self._coverage, self._coverage_floor = Coverage(), episode
        for start, end in covered:
            self._coverage.add(start, end)
        if not self._coverage.complete():
            self.counters["syncs_requested"] += 1
            self.core.sync_soon()  # the next part, at once
            return
        self._coverage = None
        delta = self.registry.set_incarnation(self.core.incarnation)
        if delta is not None:
            self.counters["reregistrations"] += 1
            self.publish(delta)
