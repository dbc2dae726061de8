"""ORSet: an add-wins observed-remove set, the registry's dot store over plain elements.

Each add tags the element with a fresh dot ``(node, incarnation, counter)``; the causal
context (:class:`~swimactors.registry.crdt.CausalContext`) records every dot observed.  A
remove is "observed, no longer stored", so an add concurrent with a remove survives.  An
add replaces the element's observed dots with one new dot, so a set holds one dot per
element per concurrent writer.

Floors compact the context as in the registry: ``floors[node] = f`` drops every dot of
``node`` at incarnation ``<= f``.  Only a node's own later process raises its floor, on its
first write: it re-adds the elements its predecessors added under its own dots in the same
delta, so their elements survive and the context keeps one entry per node name.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..registry.crdt import CausalContext, Dot, Replica
from .base import MAX_ELEMENT_BYTES, MAX_ENTRIES, MAX_INT, DataError, Writer, check_value

__all__ = ["Element", "ORSet"]

Element = str | int | bytes
"""What an ORSet holds: hashable plain data."""


def check_element(element: object) -> None:
    """DataError unless ``element`` is a str, int or bytes within the size limit."""
    if isinstance(element, bool) or not isinstance(element, str | int | bytes):
        raise DataError(f"an ORSet element is a str, int or bytes, got {element!r}")
    check_value(element, MAX_ELEMENT_BYTES, "an ORSet element")


class ORSet:
    """The set's dot store (dot -> element), causal context and per-node floors.

    ``by_element`` maps each element to its dots (a tuple: one, or one per concurrent
    writer) and ``by_replica`` each process to its dots (a dict used as a set), as the
    registry's state does: tuples of atomics, and dicts holding only them, are dropped
    from CPython's cyclic collector at their first collection, whereas a set is tracked
    and walked by every full collection whatever it holds (a set per element made a full
    collection with 50,000 elements held take 12-28 ms instead of 2: docs/ddata.md).
    """

    __slots__ = ("by_element", "by_replica", "context", "entries", "floors")

    def __init__(self) -> None:
        self.entries: dict[Dot, Element] = {}
        self.by_element: dict[Element, tuple[Dot, ...]] = {}
        self.by_replica: dict[Replica, dict[Dot, None]] = {}
        self.context = CausalContext()
        self.floors: dict[str, int] = {}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ORSet)
            and self.entries == other.entries
            and self.context == other.context
            and self.floors == other.floors
        )

    def __repr__(self) -> str:
        return f"ORSet({sorted(self.entries.items())!r}, {self.context!r}, {self.floors!r})"

    @property
    def value(self) -> frozenset[Element]:
        return frozenset(self.by_element)

    def __contains__(self, element: object) -> bool:
        return element in self.by_element

    def __len__(self) -> int:
        return len(self.by_element)

    # -- mutators: each returns the delta ------------------------------------------------

    def add(self, writer: Writer, element: Element) -> ORSet:
        """Add ``element`` (an add wins over a concurrent remove); returns the delta."""
        check_element(element)
        if element not in self.by_element and len(self.by_element) >= MAX_ENTRIES:
            raise DataError(f"an ORSet holds at most {MAX_ENTRIES} elements")
        return self._update(writer, [element], ())

    def remove(self, writer: Writer, element: Element) -> ORSet:
        """Remove ``element`` as far as this replica has seen it; returns the delta."""
        return self._update(writer, [], [element])

    def clear(self, writer: Writer) -> ORSet:
        """Remove every element this replica has seen; returns the delta."""
        return self._update(writer, [], list(self.by_element))

    def _update(self, writer: Writer, adds: list[Element], removes: Iterable[Element]) -> ORSet:
        """One delta: drop the observed dots of ``adds`` and ``removes``, tag each add anew,
        and fold this node's earlier processes (re-add their elements, raise the floor)."""
        node, incarnation = writer.replica
        delta = ORSet()
        older = [r for r in self.context.replicas() if r[0] == node and r[1] < incarnation]
        if older:
            skip = {*adds, *removes}
            for replica in older:
                for dot in sorted(self.by_replica.get(replica, ())):
                    if self.entries[dot] not in skip:
                        skip.add(self.entries[dot])
                        adds.append(self.entries[dot])
            delta.floors[node] = incarnation - 1
        for element in [*adds, *removes]:
            for dot in self.by_element.get(element, ()):
                if dot[0] != node or dot[1] >= incarnation:  # older ones: the floor drops them
                    delta.context.add(dot)
        counter = self.context.next_counter(writer.replica)
        if adds and counter + len(adds) - 1 > MAX_INT:  # a dot forged at the maximum
            raise DataError(f"{writer.replica} has no dots left: a new process gets fresh ones")
        for offset, element in enumerate(adds):
            delta.insert((node, incarnation, counter + offset), element)
        self.merge(delta)
        return delta

    # -- the join ------------------------------------------------------------------------

    def merge(self, other: ORSet) -> bool:
        changed = False
        for node, incarnation in other.floors.items():
            changed |= self._raise_floor(node, incarnation)
        for replica, seen in other.context.vv.items():
            for dot in list(self.by_replica.get(replica, ())):
                if dot[2] <= seen and dot not in other.entries:
                    self._unstore(dot)
                    changed = True
        for replica, counters in other.context.cloud.items():
            for counter in counters:
                dot = (*replica, counter)
                if dot in self.entries and dot not in other.entries:
                    self._unstore(dot)
                    changed = True
        for dot, element in other.entries.items():
            if (
                dot not in self.entries
                and not self.context.contains(dot)
                and not self._floored((dot[0], dot[1]))
            ):
                self.insert(dot, element)
                changed = True
        live = [r for r in other.context.replicas() if not self._floored(r)]
        self.context.merge(other.context, live)
        return changed

    def copy(self) -> ORSet:
        result = ORSet()
        result.merge(self)
        return result

    # -- internals -----------------------------------------------------------------------

    def _floored(self, replica: Replica) -> bool:
        return replica[1] <= self.floors.get(replica[0], -1)

    def _raise_floor(self, node: str, incarnation: int) -> bool:
        if incarnation <= self.floors.get(node, -1):
            return False
        self.floors[node] = incarnation
        changed = False
        for replica in [r for r in self.context.replicas() if r[0] == node]:
            if replica[1] <= incarnation:
                for dot in list(self.by_replica.get(replica, ())):
                    self._unstore(dot)
                    changed = True
                self.context.drop(replica)
        return changed

    def insert(self, dot: Dot, element: Element) -> None:
        """Store ``element`` under ``dot`` and record the dot as observed."""
        self.entries[dot] = element
        self.by_element[element] = (*self.by_element.get(element, ()), dot)
        self.by_replica.setdefault((dot[0], dot[1]), {})[dot] = None
        self.context.add(dot)

    def _unstore(self, dot: Dot) -> None:
        element = self.entries.pop(dot)
        dots = self.by_element[element]
        if len(dots) == 1:
            del self.by_element[element]
        else:
            self.by_element[element] = tuple(d for d in dots if d != dot)
        replica = (dot[0], dot[1])
        held = self.by_replica[replica]
        del held[dot]
        if not held:
            del self.by_replica[replica]
