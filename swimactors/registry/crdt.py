"""The pure CRDT: a delta-state add-wins observed-remove set of registrations.

Follows Almeida, Shoker and Baquero, *Delta State Replicated Data Types* (2018): a state is
a dot store (each registration is tagged with the unique *dot* that created it) plus a
*causal context* (every dot this replica has observed).  Joining two states keeps a dot's
registration if both stores hold it, or if one holds it and the other has not observed it;
so a removal is just "observed, no longer stored" and a concurrent add survives (add wins).

Two extensions make it fit a membership-driven registry:

* A replica is one *process*: ``(node name, incarnation)``.  Its dots are
  ``(node, incarnation, counter)``, so a restarted process never reuses a dead one's dots.
* *Floors*: ``floors[node] = f`` says every registration of ``node`` at incarnation ``<= f``
  is dead (the node went DOWN or LEFT, or restarted).  Floors join by ``max``; a floored
  replica's registrations and context are discarded, so the state keeps one context entry
  per live process, one floor per departed node, and the live registrations: past churn
  leaves nothing behind (the causal context is compacted to a version vector plus the
  out-of-order dots still waiting for their predecessors).

Merging a normalised state with floors applied is still a join (floors only grow and the
filter commutes with the dot-store join), so merge stays commutative, associative and
idempotent; ``tests/registry/test_crdt_laws.py`` checks it.

A state stores each registration as an :data:`Entry`, a plain tuple of strings, bytes and
integers, and indexes names by tuples of dots, not as objects or sets: CPython's cyclic
garbage collector stops tracking such tuples at their first collection, so a registry of
tens of thousands of names adds almost nothing to what every full collection walks (an
object and a set per name did, and stalled the loop for 100 ms and more:
docs/registry.md).  :class:`Registration` objects are built where a caller asks for one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

import attrs

__all__ = ["CausalContext", "Dot", "Entry", "Registration", "Replica", "State", "joined"]

Replica = tuple[str, int]
"""One process: ``(node name, incarnation)``."""

Dot = tuple[str, int, int]
"""One event of one process: ``(node name, incarnation, counter)``; counters start at 1."""

Entry = tuple[str, str, int, str, bytes, int, int]
"""A stored registration: the fields of :class:`Registration` in order, ``(name, node,
incarnation, actor_id, meta, counter, clock)``, as a tuple of atomic values, which the
garbage collector does not track (``Registration(*entry)`` is the object)."""

NAME: Final = 0
NODE: Final = 1
INCARNATION: Final = 2
META: Final = 4
COUNTER: Final = 5
CLOCK: Final = 6
"""Positions in an :data:`Entry`."""


def entry_dot(entry: Entry) -> Dot:
    """The dot of a stored registration: ``(node, incarnation, counter)``."""
    return (entry[NODE], entry[INCARNATION], entry[COUNTER])


def entry_rank(entry: Entry) -> tuple[int, str, int, int]:
    """:meth:`Registration.rank` of a stored registration."""
    return (entry[CLOCK], entry[NODE], entry[INCARNATION], entry[COUNTER])


@attrs.frozen
class Registration:
    """One node's claim on a name: which actor holds it, and where it stands in the order.

    ``counter`` is the dot counter that created it; ``clock`` is a Lamport timestamp used
    only to rank competing registrations of the same name (see :meth:`rank`).
    """

    name: str
    node: str
    incarnation: int
    actor_id: str
    meta: bytes
    counter: int
    clock: int

    @property
    def dot(self) -> Dot:
        """This registration's dot: ``(node, incarnation, counter)``."""
        return (self.node, self.incarnation, self.counter)

    @property
    def replica(self) -> Replica:
        """The writing process: ``(node, incarnation)``."""
        return (self.node, self.incarnation)

    def rank(self) -> tuple[int, str, int, int]:
        """The total order every node applies to a name's registrations: lowest wins.

        Earliest Lamport clock first (an existing holder beats anyone who registered after
        seeing it), then the smaller node name, then the lower incarnation and counter.
        """
        return (self.clock, self.node, self.incarnation, self.counter)

    @property
    def entry(self) -> Entry:
        """This registration as a state stores it (see :data:`Entry`)."""
        return (
            self.name,
            self.node,
            self.incarnation,
            self.actor_id,
            self.meta,
            self.counter,
            self.clock,
        )


class CausalContext:
    """The dots a state has observed: a version vector plus a cloud of out-of-order dots.

    Kept compact: a cloud counter never sits at or below its replica's vector entry, and
    a counter that closes the gap above the vector is folded into it, so the form is
    canonical (two contexts holding the same dots compare equal).
    """

    __slots__ = ("cloud", "vv")

    def __init__(self) -> None:
        self.vv: dict[Replica, int] = {}
        self.cloud: dict[Replica, set[int]] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CausalContext):
            return NotImplemented
        return self.vv == other.vv and self.cloud == other.cloud

    def __repr__(self) -> str:
        return f"CausalContext(vv={self.vv!r}, cloud={self.cloud!r})"

    def contains(self, dot: Dot) -> bool:
        """Whether ``dot`` has been seen."""
        replica = (dot[0], dot[1])
        if self.vv.get(replica, 0) >= dot[2]:
            return True
        counters = self.cloud.get(replica)
        return counters is not None and dot[2] in counters

    def replicas(self) -> set[Replica]:
        """Every process (``(node, incarnation)``) with a dot seen."""
        return set(self.vv) | set(self.cloud)

    def dots(self, replica: Replica) -> Iterator[int]:
        """Every counter of ``replica`` held here (expands the vector: use on deltas)."""
        yield from range(1, self.vv.get(replica, 0) + 1)
        yield from sorted(self.cloud.get(replica, ()))

    def add(self, dot: Dot) -> None:
        """Record ``dot`` as seen."""
        self.add_counters((dot[0], dot[1]), (dot[2],))

    def add_counters(self, replica: Replica, counters: Iterable[int], seen: int = 0) -> None:
        """Add ``1..seen`` and ``counters`` for ``replica``, keeping the form compact."""
        top = self.vv.get(replica, 0)
        pending = self.cloud.pop(replica, None)
        if seen > top:
            top = seen
            if pending:
                pending = {c for c in pending if c > top}
        for counter in counters:
            if counter > top:
                if pending is None:
                    pending = set()
                pending.add(counter)
        if pending:
            while top + 1 in pending:
                top += 1
                pending.remove(top)
            if pending:
                self.cloud[replica] = pending
        if top:
            self.vv[replica] = top

    def merge(self, other: CausalContext, keep: Iterable[Replica]) -> None:
        """Union with ``other``, restricted to the replicas in ``keep``."""
        for replica in keep:
            self.add_counters(replica, other.cloud.get(replica, ()), other.vv.get(replica, 0))

    def next_counter(self, replica: Replica) -> int:
        """The counter after the highest one seen for ``replica``."""
        top = max(self.cloud.get(replica, ()), default=0)
        return max(top, self.vv.get(replica, 0)) + 1

    def drop(self, replica: Replica) -> None:
        """Forget every dot of ``replica``."""
        self.vv.pop(replica, None)
        self.cloud.pop(replica, None)

    def copy(self) -> CausalContext:
        result = CausalContext()
        result.vv = dict(self.vv)
        result.cloud = {replica: set(counters) for replica, counters in self.cloud.items()}
        return result

    def size(self) -> int:
        """Entries held: one per vector replica plus one per cloud dot."""
        return len(self.vv) + sum(len(c) for c in self.cloud.values())


class State:
    """A dot store of registrations, its causal context and the node floors.

    Used both as a replica's full state and as a delta: any state is a valid delta, and
    :meth:`merge` joins either into this one in place (cost proportional to ``other``
    plus this state's registrations of the replicas ``other``'s vector mentions).

    ``entries`` maps each stored dot to its :data:`Entry`; ``by_name`` each name to the
    dots of its registrations (a tuple: one, or a few after a conflict) and
    ``by_replica`` each process to its dots (a dict used as a set: unlike a set, the
    collector stops tracking a dict that holds only untracked keys and values).  None of
    them holds a tracked object per name.
    """

    __slots__ = ("by_name", "by_replica", "context", "entries", "floors")

    def __init__(self) -> None:
        self.entries: dict[Dot, Entry] = {}
        self.by_name: dict[str, tuple[Dot, ...]] = {}
        self.by_replica: dict[Replica, dict[Dot, None]] = {}
        self.context = CausalContext()
        self.floors: dict[str, int] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (
            self.entries == other.entries
            and self.context == other.context
            and self.floors == other.floors
        )

    def __repr__(self) -> str:
        return (
            f"State(entries={sorted(self.registrations_all(), key=Registration.rank)!r}, "
            f"context={self.context!r}, floors={self.floors!r})"
        )

    # -- queries -------------------------------------------------------------------------

    def registrations(self, name: str) -> list[Registration]:
        """The name's registrations, winner first (see :meth:`Registration.rank`)."""
        return [Registration(*entry) for entry in self.ranked(name)]

    def ranked(self, name: str) -> list[Entry]:
        """The name's stored registrations, winner first."""
        entries = self.entries
        dots = self.by_name.get(name, ())
        if len(dots) == 1:  # the usual name: no conflict
            return [entries[dots[0]]]
        return sorted((entries[dot] for dot in dots), key=entry_rank)

    def registration(self, dot: Dot) -> Registration | None:
        """The registration stored under ``dot``, if any."""
        entry = self.entries.get(dot)
        return None if entry is None else Registration(*entry)

    def registrations_all(self) -> list[Registration]:
        """Every stored registration (in no particular order)."""
        return [Registration(*entry) for entry in self.entries.values()]

    def is_floored(self, node: str, incarnation: int) -> bool:
        """Whether everything ``node`` wrote in ``incarnation`` is known to be gone."""
        return incarnation <= self.floors.get(node, -1)

    def copy(self) -> State:
        result = State()
        result.entries = dict(self.entries)
        result.by_name = dict(self.by_name)
        result.by_replica = {r: dict(dots) for r, dots in self.by_replica.items()}
        result.context = self.context.copy()
        result.floors = dict(self.floors)
        return result

    def size(self) -> int:
        """Entries held: registrations + causal-context entries + floors (the churn bound)."""
        return len(self.entries) + self.context.size() + len(self.floors)

    def split_off(self, replicas: Iterable[Replica]) -> State:
        """Move the registrations and dots of ``replicas`` out of this state, into the
        state returned (a valid delta on its own: a state's part per replica is one)."""
        moved = State()
        for replica in replicas:
            for dot in list(self.by_replica.get(replica, ())):
                moved.store(dot, self.entries[dot])
                self.remove(dot)
            context = self.context
            moved.context.add_counters(
                replica, context.cloud.get(replica, ()), context.vv.get(replica, 0)
            )
            context.drop(replica)
        return moved

    # -- building blocks ---------------------------------------------------------------

    def add(self, registration: Registration | Entry) -> None:
        """Store a registration and record its dot as observed."""
        entry = registration.entry if isinstance(registration, Registration) else registration
        dot = entry_dot(entry)
        self.store(dot, entry)
        if not self.context.contains(dot):
            self.context.add(dot)

    def store(self, dot: Dot, entry: Entry) -> None:
        """Store ``entry`` (whose dot is ``dot``); the caller records the dot as observed."""
        self.entries[dot] = entry
        name = entry[NAME]
        self.by_name[name] = (*self.by_name.get(name, ()), dot)
        self.by_replica.setdefault((dot[0], dot[1]), {})[dot] = None

    def remove(self, dot: Dot) -> str:
        """Drop a stored registration (its dot stays observed); returns its name."""
        name = self.entries.pop(dot)[NAME]
        dots = self.by_name[name]
        if len(dots) == 1:
            del self.by_name[name]
        else:
            self.by_name[name] = tuple(d for d in dots if d != dot)
        replica = (dot[0], dot[1])
        held = self.by_replica[replica]
        del held[dot]
        if not held:
            del self.by_replica[replica]
        return name

    def raise_floor(self, node: str, incarnation: int) -> set[str]:
        """Declare ``node``'s registrations up to ``incarnation`` dead; returns names touched."""
        if incarnation <= self.floors.get(node, -1):
            return set()
        self.floors[node] = incarnation
        touched: set[str] = set()
        for replica in [r for r in self.context.replicas() if r[0] == node]:
            if replica[1] <= incarnation:
                for dot in list(self.by_replica.get(replica, ())):
                    touched.add(self.remove(dot))
                self.context.drop(replica)
        return touched

    # -- the join ----------------------------------------------------------------------

    def merge(self, other: State) -> set[str]:
        """Join ``other`` (a delta or a full state) into this state; returns names touched."""
        touched: set[str] = set()
        for node, incarnation in other.floors.items():
            touched |= self.raise_floor(node, incarnation)
        other_context = other.context
        # Registrations ``other`` has observed but no longer stores were removed there.
        for replica, seen in other_context.vv.items():
            for dot in list(self.by_replica.get(replica, ())):
                if dot[2] <= seen and dot not in other.entries:
                    touched.add(self.remove(dot))
        for replica, counters in other_context.cloud.items():
            for counter in counters:
                dot = (replica[0], replica[1], counter)
                if dot in self.entries and dot not in other.entries:
                    touched.add(self.remove(dot))
        # Registrations ``other`` stores that this state has never observed are new here.
        for dot, entry in other.entries.items():
            if (
                dot not in self.entries
                and not self.context.contains(dot)
                and not self.is_floored(dot[0], dot[1])
            ):
                self.store(dot, entry)  # its dot: with the context, below
                touched.add(entry[NAME])
        live = [r for r in other_context.replicas() if not self.is_floored(*r)]
        self.context.merge(other_context, live)
        return touched

    def merge_range(
        self,
        replica: Replica,
        low: int,
        seen: int,
        cloud: Iterable[int],
        stored: Iterable[Entry],
    ) -> set[str]:
        """Join a share of ``replica``'s state that observed the counters ``low..seen``
        and ``cloud`` and still stores ``stored`` (of those): the join of a state
        restricted to them.  This state must have observed ``1..low - 1`` if the range is
        not empty (the context keeps no range apart from its version vector)."""
        if self.is_floored(*replica):
            return set()
        cloud = set(cloud)
        entries = {entry_dot(entry): entry for entry in stored}
        touched: set[str] = set()
        held = self.by_replica.get(replica, {})
        observed = range(low, seen + 1)
        if len(observed) + len(cloud) < len(held):  # the share's counters, not all held
            node, incarnation = replica
            candidates = {(node, incarnation, c) for c in (*observed, *cloud)}  # may overlap
            removed = [dot for dot in candidates if dot in held and dot not in entries]
        else:
            removed = [
                dot
                for dot in held
                if (low <= dot[2] <= seen or dot[2] in cloud) and dot not in entries
            ]
        for dot in removed:
            touched.add(self.remove(dot))
        for dot, entry in entries.items():
            if dot not in self.entries and not self.context.contains(dot):
                self.store(dot, entry)  # its dot: in range or cloud, recorded below
                touched.add(entry[NAME])
        self.context.add_counters(replica, cloud, seen if seen >= low else 0)
        return touched


def joined(*states: State) -> State:
    """The join of ``states`` as a new state (the inputs are left untouched)."""
    result = State()
    for state in states:
        result.merge(state)
    return result
