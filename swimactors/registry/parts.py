"""A registry full state too large for one message, cut into parts by key range.

Every item of a state has a *key* in one total order: a node's floor is ``(node, 0, 0)``,
the dot ``(node, incarnation, counter)`` of a registration or of the causal context is
its own key (counters start at 1).  A :class:`Part` is the sender's state restricted to
the keys in ``[start, end)`` (None: open on that side): the floors, context dots and
registrations in that range, so it is a valid delta, and parts whose ranges cover every
key join to the whole, in any order.

A range may start inside a process (one larger than a part): that process's share, a
:class:`Piece`, observes the counters ``low..seen`` (and its cloud), which this CRDT's
context can record only where the receiver has observed ``1..low - 1`` already; until
then it waits (:meth:`Piece.applies_to`).  Every other process in a part starts at
counter 1, so it is an ordinary state.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import attrs

from .crdt import COUNTER, Entry, Replica, State

__all__ = ["PART_BYTES", "PART_ITEMS", "Coverage", "Key", "Part", "Piece", "cut"]

Key = tuple[str, int, int]
"""A position in the state's key order: ``(node, incarnation, counter)``."""

PART_ITEMS = 32768
"""CBOR items a part holds at most (5,460 registrations, six items each): an eighth of
the decoders' 262,144, and a bounded time to decode and merge (docs/registry.md)."""
PART_BYTES = 1 << 20
"""Bytes a part holds at most (names, actor ids and meta, estimated), however large each
registration is (a registration larger than this goes alone)."""
_REGISTRATION_ITEMS = 6
_GROUP_ITEMS = 6
_FLOOR_ITEMS = 2
_FRAMING_BYTES = 24
"""Bytes a registration takes in a part besides its strings (generous)."""


def floor_key(node: str) -> Key:
    """The key of ``node``'s floor: before every process of the node."""
    return (node, 0, 0)


def after_replica(replica: Replica) -> Key:
    """The first key after every dot of ``replica``."""
    return (replica[0], replica[1] + 1, 0)


@attrs.define
class Piece:
    """A share of one process's state that starts at counter ``low`` > 1: the counters
    ``low..seen`` (none if ``seen < low``) and ``cloud`` observed, ``entries`` those of
    them still registered."""

    replica: Replica
    low: int
    seen: int
    cloud: list[int]
    entries: list[Entry]

    def applies_to(self, state: State) -> bool:
        """Whether ``state`` can record it: it has observed every counter below ``low``
        (the range cannot be kept apart from the version vector), or it has no range, or
        ``state`` has floored its process (it drops it)."""
        return (
            self.seen < self.low
            or state.context.vv.get(self.replica, 0) >= self.low - 1
            or state.is_floored(*self.replica)
        )


@attrs.define
class Part:
    """The state of the keys in ``[start, end)``: ``state`` holds every process that
    starts in range at counter 1 and the floors, ``piece`` the process ``start`` falls
    inside, if any.  A whole state is the part ``[None, None)``."""

    start: Key | None
    end: Key | None
    state: State
    piece: Piece | None = None

    @property
    def whole(self) -> bool:
        return self.start is None and self.end is None


def cut(state: State, start: Key | None, items: int = PART_ITEMS, size: int = PART_BYTES) -> Part:
    """The part of ``state`` from ``start`` holding about ``items`` CBOR items and ``size``
    bytes at most (and at least one registration or floor, so that successive parts
    advance; a process's cloud of out-of-order dots goes whole); its ``end`` is where the
    next one starts (None: the state's end)."""
    budget = _Budget(items, size)
    part = Part(start, None, State())
    held = state.context.replicas()
    keyed = sorted(
        [(floor_key(node), node) for node in state.floors]
        + [((*replica, 1), "") for replica in held]
    )
    first = 0
    if start is not None:
        keys = [key for key, _ in keyed]
        first = bisect.bisect_left(keys, start)
        inside = (start[0], start[1])
        if start[2] > 1 and inside in held:
            budget.charge(_GROUP_ITEMS)
            part.end = _take_replica(state, inside, start[2], part, budget)
            if part.end is not None:
                return part
    for key, node in keyed[first:]:
        if node:
            if not budget.admits(_FLOOR_ITEMS, len(node.encode())):
                part.end = key
                return part
            part.state.floors[node] = state.floors[node]
            budget.advanced = True
            continue
        if not budget.admits(_GROUP_ITEMS, 0):
            part.end = key
            return part
        part.end = _take_replica(state, (key[0], key[1]), 1, part, budget)
        if part.end is not None:
            return part
    return part


class _Budget:
    """What is left of a part's items and bytes."""

    def __init__(self, items: int, size: int) -> None:
        self.items = items
        self.size = size
        self.used = False
        """Whether anything was charged (a process with no registrations, a floor)."""
        self.advanced = False
        """Whether a registration or a floor was taken: the part moved past its start."""

    def admits(self, items: int, size: int) -> bool:
        """Charge a process's header or a floor if it fits (or nothing was charged yet)."""
        if self.used and (items > self.items or size > self.size):
            return False
        self.charge(items, size)
        return True

    def takes(self, items: int, size: int) -> bool:
        """Charge a registration if it fits (or the part has not advanced yet)."""
        if self.advanced and (items > self.items or size > self.size):
            return False
        self.charge(items, size)
        self.advanced = True
        return True

    def charge(self, items: int, size: int = 0) -> None:
        self.items -= items
        self.size -= size
        self.used = True


def _take_replica(
    state: State, replica: Replica, low: int, part: Part, budget: _Budget
) -> Key | None:
    """Add ``replica``'s share from counter ``low`` to ``part`` as far as ``budget`` goes;
    the key it stopped at (None: all of it was taken)."""
    context = state.context
    cloud = sorted(c for c in context.cloud.get(replica, ()) if c >= low)
    budget.charge(len(cloud))
    taken: list[Entry] = []
    stop: int | None = None
    for entry in _stored_from(state, replica, low, cloud):
        name, _, _, actor_id, meta, counter, _ = entry
        size = len(name.encode()) + len(actor_id.encode()) + len(meta) + _FRAMING_BYTES
        if not budget.takes(_REGISTRATION_ITEMS, size):
            stop = counter
            break
        taken.append(entry)
    seen = context.vv.get(replica, 0)
    if stop is not None:
        cloud = [c for c in cloud if c < stop]
        seen = min(seen, stop - 1)
    if low == 1:
        for entry in taken:
            part.state.add(entry)
        part.state.context.add_counters(replica, cloud, seen)
    else:
        part.piece = Piece(replica, low, seen if seen >= low else 0, cloud, taken)
    return None if stop is None else (*replica, stop)


def _stored_from(state: State, replica: Replica, low: int, cloud: list[int]) -> Iterator[Entry]:
    """``replica``'s stored registrations from counter ``low`` on, in counter order (of
    ``cloud``, its out-of-order counters from ``low``).  Counter by counter when the
    counters are not much sparser than the registrations, so a part costs what it takes,
    not what the process holds; else sorted."""
    held = state.by_replica.get(replica, ())
    top = max(state.context.vv.get(replica, 0), cloud[-1] if cloud else 0)
    if top - low >= 4 * len(held):  # mostly unregistered: sort what is held instead
        yield from sorted((state.entries[d] for d in held if d[2] >= low), key=_by_counter)
        return
    entries = state.entries
    node, incarnation = replica
    for counter in range(low, top + 1):  # a stored dot is observed: at most ``top``
        entry = entries.get((node, incarnation, counter))
        if entry is not None:
            yield entry


def _by_counter(entry: Entry) -> int:
    return entry[COUNTER]


class Coverage:
    """The key ranges of full-state parts merged so far, as sorted disjoint intervals;
    complete once they cover every key.  Bounded: past ``most`` intervals it forgets them
    all (so it may take longer to complete, never completes early)."""

    def __init__(self, most: int = 1024) -> None:
        self.most = most
        self._ranges: list[tuple[Key | None, Key | None]] = []

    def add(self, start: Key | None, end: Key | None) -> None:
        """Record ``[start, end)`` as merged."""
        if start is not None and end is not None and start >= end:
            return
        merged: list[tuple[Key | None, Key | None]] = []
        for low, high in self._ranges:
            if _before(high, start) or _before(end, low):  # disjoint, not touching
                merged.append((low, high))
                continue
            start = None if low is None or start is None else min(low, start)
            end = None if high is None or end is None else max(high, end)
        merged.append((start, end))
        merged.sort(key=lambda r: (r[0] is not None, r[0] or ("", 0, 0)))
        self._ranges = merged if len(merged) <= self.most else []

    def complete(self) -> bool:
        """Whether every key has been covered."""
        return self._ranges == [(None, None)]


def _before(end: Key | None, start: Key | None) -> bool:
    """Whether a range ending at ``end`` stops short of one starting at ``start``."""
    return end is not None and start is not None and end < start
