"""Counters: GCounter (grow-only) and PNCounter (increments and decrements).

A GCounter holds one *slot* per process ``(node, incarnation)``: the count that process
added.  Only the process itself writes its slot, so its slots only grow and two copies
join by taking the larger.  A restarted process would leave its predecessor's slot behind
for good, so each write *folds* the older slots of its node that it holds into its own
slot: it adds their sum and records ``covers``, its own incarnation - 1, and every slot of
that node at or below ``covers`` is then dropped everywhere.  A fold claims *every* earlier
process of its node, not just those it held: two successors that each folded the same
predecessor (one not knowing the other) would otherwise both count it, so the later one
wins and the earlier one's slot goes.  At most one folded slot per node survives, nothing is
counted twice, and a counter keeps one slot per node name.
"""

from __future__ import annotations

import attrs

from ..registry.crdt import Replica
from .base import MAX_ENTRIES, MAX_INT, DataError, Writer

__all__ = ["GCounter", "PNCounter", "Slot"]


@attrs.frozen
class Slot:
    """What one process added (``count``, its predecessors' totals included)."""

    count: int
    covers: int = -1
    """Every earlier incarnation of the same node up to this is folded into ``count``
    (the writer's incarnation - 1 once it has folded; -1: none)."""


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_INT:
        raise DataError(f"a counter grows by an integer in 0..2**63-1, got {amount!r}")


class GCounter:
    """A grow-only counter; :attr:`value` is the sum of its slots."""

    __slots__ = ("slots",)

    def __init__(self, slots: dict[Replica, Slot] | None = None) -> None:
        self.slots: dict[Replica, Slot] = dict(slots or {})
        _drop_covered(self.slots)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GCounter) and self.slots == other.slots

    def __repr__(self) -> str:
        return f"GCounter({self.slots!r})"

    @property
    def value(self) -> int:
        return sum(slot.count for slot in self.slots.values())

    def increment(self, writer: Writer, amount: int = 1) -> GCounter:
        """Add ``amount`` (>= 0) as ``writer``'s process; returns the delta.  The slot
        stops at MAX_INT, so a slot forged at the maximum never makes this node send a
        count its peers refuse (every delta and full state it sends would be dropped)."""
        _check_amount(amount)
        replica = writer.replica
        slot = self.slots.get(replica)
        if slot is None and len(self.slots) >= MAX_ENTRIES:
            raise DataError(f"a counter holds at most {MAX_ENTRIES} slots")
        slot = slot or Slot(0)
        older = [r for r in self.slots if r[0] == replica[0] and r[1] < replica[1]]
        count = min(slot.count + amount + sum(self.slots[r].count for r in older), MAX_INT)
        covers = replica[1] - 1 if older else slot.covers
        delta = GCounter({replica: Slot(count, covers)})
        self.merge(delta)
        return delta

    def merge(self, other: GCounter) -> bool:
        changed = False
        for replica, theirs in other.slots.items():
            mine = self.slots.get(replica)
            if mine is None:
                joined = theirs
            else:
                joined = Slot(max(mine.count, theirs.count), max(mine.covers, theirs.covers))
            if joined != mine:
                self.slots[replica] = joined
                changed = True
        if changed:
            _drop_covered(self.slots)
        return changed

    def copy(self) -> GCounter:
        return GCounter(self.slots)


def _drop_covered(slots: dict[Replica, Slot]) -> None:
    """Remove every slot a later process of the same node has folded into its own."""
    covers: dict[str, list[tuple[int, int]]] = {}
    for (node, incarnation), slot in slots.items():
        if slot.covers >= 0:
            covers.setdefault(node, []).append((incarnation, slot.covers))
    for replica in [r for r in slots if r[0] in covers]:
        node, incarnation = replica
        if any(later > incarnation and covered >= incarnation for later, covered in covers[node]):
            del slots[replica]


class PNCounter:
    """A counter that also decrements: two GCounters, :attr:`value` = added - removed."""

    __slots__ = ("added", "removed")

    def __init__(self, added: GCounter | None = None, removed: GCounter | None = None) -> None:
        self.added = added.copy() if added else GCounter()
        self.removed = removed.copy() if removed else GCounter()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PNCounter)
            and self.added == other.added
            and self.removed == other.removed
        )

    def __repr__(self) -> str:
        return f"PNCounter(added={self.added!r}, removed={self.removed!r})"

    @property
    def value(self) -> int:
        return self.added.value - self.removed.value

    def increment(self, writer: Writer, amount: int = 1) -> PNCounter:
        """Add ``amount`` (negative: subtract); returns the delta."""
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise DataError(f"a counter changes by an integer, got {amount!r}")
        if amount >= 0:
            return PNCounter(added=self.added.increment(writer, amount))
        return PNCounter(removed=self.removed.increment(writer, -amount))

    def decrement(self, writer: Writer, amount: int = 1) -> PNCounter:
        """Subtract ``amount``; returns the delta."""
        return self.increment(writer, -amount)

    def merge(self, other: PNCounter) -> bool:
        added = self.added.merge(other.added)
        return self.removed.merge(other.removed) or added

    def copy(self) -> PNCounter:
        return PNCounter(self.added, self.removed)
