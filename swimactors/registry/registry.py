"""One node's replica of the cluster-wide name registry (sans-IO).

Wraps the CRDT state with what a node needs: registering its own names (each mutation
returns the delta to disseminate), the winner of each name under the total order of
:meth:`Registration.rank`, a change stream, and the incarnation rules below.

Incarnations.  A registration carries the *epoch* it was made under: the incarnation the
registry was created with, not the SWIM incarnation of the moment, so refutation bumps
while the process lives never touch its names.  ``node_down(node, inc)`` (from MemberDown
or MemberLeft, whose member carries the incarnation it was declared at) raises the node's
floor and drops every registration of that node with epoch ``<= inc``.  A new process
starts at a higher incarnation and floors its own previous ones, so its predecessor's
stale registrations never return.  A live node that was declared DOWN by mistake finds its
own floor at or above its epoch; once membership has refuted to a higher incarnation,
:meth:`Registry.set_incarnation` moves the epoch there and re-registers every name the node
still holds, with a fresh Lamport clock: a takeover this replica has already merged keeps
its name (so the delegate calls it after a full-state merge).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

from ..errors import SwimactorsError
from .changes import Change, NameAdded, NameChanged, NameLost, NameRemoved
from .codec import MAX_ACTOR_ID_BYTES, MAX_COUNTER, MAX_META_BYTES, MAX_NAME_BYTES, decode, encode
from .crdt import CLOCK, META, NODE, Dot, Entry, Registration, Replica, State, entry_dot
from .parts import PART_BYTES, PART_ITEMS, Key, Part, Piece, cut

__all__ = ["MAX_NAMES_PER_PROCESS", "MAX_REPLICAS_PER_NODE", "Registry", "RegistryError"]

MAX_NAMES_PER_PROCESS = 65536
"""Most registrations (and most out-of-order dots) one process of a node may hold: past
it, its new ones are refused (here) or dropped (from a peer)."""
MAX_REPLICAS_PER_NODE = 8
"""Most processes (incarnations) of one node held at once; a node holds one, and briefly
two or three across restarts and false DOWNs."""
_BUILT_MOST = 1024
"""Registrations :meth:`Registry.lookup` keeps built for names looked up again."""


class RegistryError(SwimactorsError, ValueError):
    """A bad argument to the registry API (empty or oversized name, negative incarnation)."""


def _check_text(value: object, what: str, limit: int) -> None:
    if not isinstance(value, str) or not 0 < len(value.encode()) <= limit:
        raise RegistryError(f"{what} must be a non-empty string of at most {limit} bytes")


def _check_incarnation(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNTER:
        raise RegistryError(f"incarnation must be an integer in 0..{MAX_COUNTER}, got {value!r}")


class Registry:
    """The registry replica of node ``node_name`` running at ``incarnation``."""

    encode = staticmethod(encode)
    decode = staticmethod(decode)

    def __init__(self, node_name: str, incarnation: int = 0, max_changes: int = 65536) -> None:
        _check_text(node_name, "node name", MAX_NAME_BYTES)
        _check_incarnation(incarnation)
        self.node = node_name
        self.incarnation = incarnation
        """The epoch this node's registrations are made under."""
        self.changes_dropped = 0
        """Changes discarded because nobody took them and the stream reached max_changes."""
        self._state = State()
        self._held: dict[str, tuple[str, bytes]] = {}
        self._clock = 0
        self._winners: dict[str, Entry] = {}
        self._built: dict[str, tuple[Entry, Registration]] = {}
        """Registrations :meth:`lookup` built lately, by name, with the stored winner each
        was built from: a name looked up again costs a dict lookup.  At most
        :data:`_BUILT_MOST`, then forgotten at once, so the collector still tracks no
        object per name held."""
        self._reported: set[Dot] = set()
        self._changes: deque[Change] = deque(maxlen=max_changes)
        self.on_change: Callable[[], None] | None = None
        """Called (synchronously) whenever a change is queued, so a driver can wake up
        and ``take_changes()`` instead of polling."""
        if incarnation > 0:
            self._state.raise_floor(node_name, incarnation - 1)

    # -- mutations: each returns the delta to disseminate ---------------------------------

    def register(self, name: str, actor_id: str, meta: bytes = b"") -> State:
        """Claim ``name`` for ``actor_id`` on this node (replacing this node's own claim).

        Replacing keeps the old claim's place in the order; a new claim ranks after every
        registration this replica has seen, so registering a name another node already
        holds loses (a :class:`NameLost` follows at once).  Check :meth:`lookup` first.
        While this node stands declared dead (its floor reached the epoch) the name is only
        held, and published by :meth:`set_incarnation` once membership has refuted.
        """
        return self.register_all([(name, actor_id, meta)])

    def register_all(self, claims: Iterable[tuple[str, str, bytes]]) -> State:
        """:meth:`register` each ``(name, actor_id, meta)``, in one delta: one merge here and
        one broadcast for a batch (a later claim on a name replaces an earlier one)."""
        wanted: dict[str, tuple[str, bytes]] = {}
        for name, actor_id, meta in claims:
            _check_text(name, "name", MAX_NAME_BYTES)
            _check_text(actor_id, "actor id", MAX_ACTOR_ID_BYTES)
            if not isinstance(meta, bytes) or len(meta) > MAX_META_BYTES:
                raise RegistryError(f"meta must be bytes of at most {MAX_META_BYTES} bytes")
            wanted[name] = (actor_id, meta)
        owned = {name: self._own(name) for name in wanted}
        held = len(self._state.by_replica.get((self.node, self.incarnation), ()))
        if held + sum(1 for name in wanted if not owned[name]) > MAX_NAMES_PER_PROCESS:
            raise RegistryError(f"a node holds at most {MAX_NAMES_PER_PROCESS} names")
        delta = self._delta(replaced=[e for mine in owned.values() for e in mine])
        if not self._state.is_floored(self.node, self.incarnation):
            for offset, (name, (actor_id, meta)) in enumerate(wanted.items()):
                mine = owned[name]
                clock = mine[0][CLOCK] if mine else self._clock + 1
                delta.add(self._new_registration(name, actor_id, meta, clock, offset))
        self._held.update(wanted)
        self._apply(delta)
        return delta

    def unregister(self, name: str) -> State:
        """Withdraw this node's claim on ``name`` (other nodes' claims are theirs to drop)."""
        self._held.pop(name, None)
        delta = self._delta(replaced=self._own(name))
        self._apply(delta)
        return delta

    def node_down(self, node_name: str, incarnation: int) -> State:
        """Drop ``node_name``'s registrations made at incarnations up to ``incarnation``."""
        _check_text(node_name, "node name", MAX_NAME_BYTES)
        _check_incarnation(incarnation)
        delta = State()
        delta.floors[node_name] = incarnation
        self._apply(delta)
        return delta

    def set_incarnation(self, incarnation: int) -> State | None:
        """Tell the registry this node's membership incarnation (call on every change).

        Does nothing unless this node's own registrations were dropped (its floor reached
        the epoch) and ``incarnation`` is above that floor; then the epoch moves to
        ``incarnation`` and every name still held is re-registered: the delta is returned.
        """
        _check_incarnation(incarnation)
        floor = self.floor(self.node)
        if not self.dropped() or incarnation <= floor:
            return None
        self.incarnation = incarnation
        delta = self._delta(replaced=[])
        for offset, (name, (actor_id, meta)) in enumerate(sorted(self._held.items())):
            delta.add(self._new_registration(name, actor_id, meta, self._clock + 1, offset))
            self._clock += 1
        self._apply(delta)
        return delta

    def over_limits(self, incoming: State | Piece) -> set[str]:
        """Nodes whose part of ``incoming`` (a delta, a state or a full state's piece)
        would take one of their processes past :data:`MAX_NAMES_PER_PROCESS`
        registrations (or out-of-order dots), or the node past
        :data:`MAX_REPLICAS_PER_NODE` processes, here (floored processes do not count: the
        merge drops them).  Costs what ``incoming`` holds, and a scan of this state's
        processes only when ``incoming`` brings a new one."""
        shares: list[tuple[Replica, Iterable[Dot], int]]
        if isinstance(incoming, Piece):
            piece_dots = [entry_dot(e) for e in incoming.entries]
            shares = [(incoming.replica, piece_dots, len(incoming.cloud))]
        else:
            shares = [
                (r, incoming.by_replica.get(r, ()), len(incoming.context.cloud.get(r, ())))
                for r in incoming.context.replicas()
                if not incoming.is_floored(*r)
            ]
        state = self._state
        held = state.context
        over = set()
        fresh: dict[str, set[Replica]] = {}
        for replica, dots, cloud_size in shares:
            if state.is_floored(*replica):
                continue
            added = sum(1 for dot in dots if dot not in state.entries)
            names = len(state.by_replica.get(replica, ())) + added
            cloud = len(held.cloud.get(replica, ())) + cloud_size
            if max(names, cloud) > MAX_NAMES_PER_PROCESS:
                over.add(replica[0])
            if replica not in held.vv and replica not in held.cloud:
                fresh.setdefault(replica[0], set()).add(replica)
        if fresh:
            for replica in held.replicas():
                if replica[0] in fresh and not state.is_floored(*replica):
                    fresh[replica[0]].add(replica)
            over.update(node for node, mine in fresh.items() if len(mine) > MAX_REPLICAS_PER_NODE)
        return over

    def merge(self, delta_or_state: State) -> None:
        """Join a delta or a full state received from any node (idempotent, any order)."""
        self._apply(delta_or_state)

    def takes_piece(self, piece: Piece) -> bool:
        """Whether :meth:`merge_piece` can join ``piece`` now: this replica has observed
        the counters of its process below it (or the piece needs none of them)."""
        return piece.applies_to(self._state)

    def merge_piece(self, piece: Piece) -> bool:
        """Join a full state part's piece, if :meth:`takes_piece` (else nothing is done:
        False, try again later)."""
        if not piece.applies_to(self._state):
            return False
        touched = self._state.merge_range(
            piece.replica, piece.low, piece.seen, piece.cloud, piece.entries
        )
        self._settled(touched, piece.entries)
        return True

    # -- queries --------------------------------------------------------------------------

    def state(self) -> State:
        """A snapshot of the full state (for push/pull, or to merge elsewhere)."""
        return self._state.copy()

    def part(self, start: Key | None, items: int = PART_ITEMS, size: int = PART_BYTES) -> Part:
        """The full state's part from key ``start`` (None: the first) of about ``items``
        CBOR items and ``size`` bytes at most (:func:`~swimactors.registry.parts.cut`)."""
        return cut(self._state, start, items, size)

    def floor(self, node_name: str) -> int:
        """The incarnation up to which ``node_name``'s registrations are dead (-1: none)."""
        return self._state.floors.get(node_name, -1)

    def holds_for(self, node_name: str, incarnation: int) -> bool:
        """Whether any registration of ``node_name`` made at or below ``incarnation`` is
        held here (a floor there would drop it)."""
        return any(n == node_name and i <= incarnation for n, i in self._state.by_replica)

    def dropped(self) -> bool:
        """Whether this node's own registrations stand dropped (its floor reached the
        epoch): they return, re-registered, once :meth:`set_incarnation` moves past it."""
        return self.floor(self.node) >= self.incarnation

    def lookup(self, name: str) -> Registration | None:
        """The winning registration of ``name``, or None if nobody holds it."""
        winner = self._winners.get(name)
        if winner is None:
            return None
        built = self._built.get(name)
        if built is not None and built[0] is winner:
            return built[1]
        registration = Registration(*winner)
        if len(self._built) >= _BUILT_MOST:
            self._built.clear()
        self._built[name] = (winner, registration)
        return registration

    def winners(
        self, prefix: str = "", with_meta: bool = False
    ) -> Iterator[tuple[str, Registration]]:
        """Every name starting with ``prefix`` and its winning registration, by name; with
        ``with_meta``, only the names whose winner carries meta (singletons, say).  A name
        left out costs a comparison, not a :class:`Registration` (the registry stores
        none: :data:`~swimactors.registry.crdt.Entry`)."""
        winners = self._winners
        chosen = sorted(
            name
            for name, entry in winners.items()
            if name.startswith(prefix) and (entry[META] or not with_meta)
        )
        for name in chosen:
            entry = winners.get(name)  # the caller may have changed the registry meanwhile
            if entry is not None:
                yield name, Registration(*entry)

    def count_by_node(self, prefix: str = "") -> dict[str, int]:
        """How many of the names starting with ``prefix`` each node holds (wins)."""
        counts: dict[str, int] = {}
        for name, entry in self._winners.items():
            if name.startswith(prefix):
                node = entry[NODE]
                counts[node] = counts.get(node, 0) + 1
        return counts

    def lookup_all(self, name: str) -> list[Registration]:
        """Every registration of ``name``, winner first."""
        return self._state.registrations(name)

    def __len__(self) -> int:
        """How many names resolve."""
        return len(self._winners)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._state.by_name)

    def take_changes(self) -> list[Change]:
        """The changes since the last call, oldest first."""
        changes = list(self._changes)
        self._changes.clear()
        return changes

    def size(self) -> int:
        """State entries: registrations + causal-context entries + floors."""
        return self._state.size()

    # -- internals ------------------------------------------------------------------------

    def _own(self, name: str) -> list[Entry]:
        return [e for e in self._state.ranked(name) if e[NODE] == self.node]

    def _delta(self, replaced: list[Entry]) -> State:
        """An empty delta that removes ``replaced`` and carries this node's own floor."""
        delta = State()
        for entry in replaced:
            delta.context.add(entry_dot(entry))
        floor = self._state.floors.get(self.node)
        if floor is not None:
            delta.floors[self.node] = floor
        return delta

    def _new_registration(
        self, name: str, actor_id: str, meta: bytes, clock: int, offset: int = 0
    ) -> Entry:
        """A registration under the next free dot (``offset`` more for a batch)."""
        counter = self._state.context.next_counter((self.node, self.incarnation)) + offset
        clock = min(clock, MAX_COUNTER)  # after a forged clock at the maximum: ties, by node
        return (name, self.node, self.incarnation, actor_id, meta, counter, clock)

    def _apply(self, delta: State) -> None:
        self._settled(self._state.merge(delta), delta.entries.values())

    def _settled(self, touched: set[str], entries: Iterable[Entry]) -> None:
        """Follow the clocks of the registrations merged, and settle the names touched."""
        self._clock = max(self._clock, *(e[CLOCK] for e in entries), 0)
        if self._reported and touched:
            self._reported.intersection_update(self._state.entries)
        for name in sorted(touched):
            self._settle(name)

    def _settle(self, name: str) -> None:
        """Recompute the winner of ``name`` and emit what changed."""
        ranked = self._state.ranked(name)
        old = self._winners.get(name)
        if not ranked:
            if old is not None:
                del self._winners[name]
                self._emit(NameRemoved(name, Registration(*old)))
            return
        new = ranked[0]
        if new != old:
            self._winners[name] = new
            winner = Registration(*new)
            self._emit(
                NameAdded(name, winner)
                if old is None
                else NameChanged(name, Registration(*old), winner)
            )
        if new[NODE] == self.node:
            return
        for lost in ranked[1:]:
            dot = entry_dot(lost)
            if lost[NODE] == self.node and dot not in self._reported:
                self._reported.add(dot)
                self._emit(NameLost(name, Registration(*lost), Registration(*new)))

    def _emit(self, change: Change) -> None:
        if len(self._changes) == self._changes.maxlen:
            self.changes_dropped += 1
        self._changes.append(change)
        if self.on_change is not None:
            self.on_change()
