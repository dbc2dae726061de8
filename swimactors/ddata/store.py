"""One node's replica of the keyed distributed data (sans-IO).

Each key holds one replicated value of one type.  :meth:`DataStore.update` applies a
mutator as this process and returns the delta to disseminate (``{key: delta}``);
:meth:`DataStore.merge` joins deltas or full states from any node, in any order, any number
of times.  Changes of a key's value are queued for :meth:`DataStore.take_changes`.
"""

from __future__ import annotations

import collections
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from ..registry.codec import MAX_INT
from .base import MAX_ENTRIES, MAX_KEY_BYTES, DataError, DataTypeError, ReplicatedData, Writer
from .codec import within_decode_limits
from .counters import GCounter, PNCounter
from .lww import MAX_AHEAD, Flag, LWWMap, LWWRegister, latest_stamp
from .orset import ORSet

__all__ = ["DATA_TYPES", "MAX_KEYS", "MAX_STORE_ENTRIES", "DataStore", "Entries", "KeyChanged"]

D = TypeVar("D", GCounter, PNCounter, ORSet, LWWRegister, LWWMap, Flag)

DATA_TYPES = (GCounter, PNCounter, ORSet, LWWRegister, LWWMap, Flag)

Entries = dict[str, ReplicatedData]
"""A store delta or full state: key -> value (or the value's delta)."""

MAX_KEYS = 65536
"""Most keys a store holds: a new key past it is refused (update) or dropped (merge)."""
MAX_STORE_ENTRIES = 1 << 20
"""Most entries all values hold together (counter slots, set elements and dots, map keys):
a merge that would take the store past it is dropped, so no stream of deltas, however
many writers it names, grows a node's store without bound."""


def entries_of(value: ReplicatedData) -> int:
    """What a key holding ``value`` counts against :data:`MAX_STORE_ENTRIES`: one, and one
    per slot, element, dot, floor or map key."""
    if isinstance(value, GCounter):
        return 1 + len(value.slots)
    if isinstance(value, PNCounter):
        return 1 + len(value.added.slots) + len(value.removed.slots)
    if isinstance(value, ORSet):
        return 1 + len(value.entries) + value.context.size() + len(value.floors)
    if isinstance(value, LWWMap):
        return 1 + len(value.writes)
    return 1


@attrs.frozen
class KeyChanged:
    """``key``'s value changed here (a local update, or a merge that brought news)."""

    key: str
    value: Any


def check_key(key: object) -> None:
    """DataError unless ``key`` is a non-empty str of at most 1,024 bytes."""
    if not isinstance(key, str) or not 0 < len(key.encode()) <= MAX_KEY_BYTES:
        raise DataError(f"a key is a non-empty string of at most {MAX_KEY_BYTES} bytes")


class DataStore:
    """The replica of node ``node`` running at epoch ``incarnation``."""

    def __init__(
        self,
        node: str,
        incarnation: int = 0,
        max_changes: int = 65536,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock``: the writers' time (seconds), against which a merged LWW stamp may be
        at most :data:`~.lww.MAX_AHEAD` ahead (None: not checked)."""
        check_key(node)
        if isinstance(incarnation, bool) or not 0 <= incarnation <= MAX_INT:
            raise DataError(f"incarnation must be an integer in 0..2**63-1, got {incarnation!r}")
        self.node = node
        self.incarnation = incarnation
        self.counters: collections.Counter[str] = collections.Counter()
        """type_conflicts (a merged key held another type here), changes_dropped,
        tombstones_pruned, rejected_over_limit (a merge past :data:`MAX_KEYS` or
        :data:`MAX_STORE_ENTRIES`), rejected_future (an LWW stamp past the horizon)."""
        self._data: dict[str, ReplicatedData] = {}
        self._entries = 0
        self._clock = clock
        """Entries of every value held (:func:`entries_of`)."""
        self._changes: deque[KeyChanged] = deque(maxlen=max_changes)
        self.on_change: Callable[[], None] | None = None
        """Called (synchronously) whenever a change is queued."""

    def writer(self, now: float) -> Writer:
        """The writer of an update made now by this replica."""
        return Writer(self.node, self.incarnation, now)

    # -- mutations ------------------------------------------------------------------------

    def update(
        self, key: str, kind: type[D], modify: Callable[[D, Writer], D], now: float
    ) -> Entries:
        """Apply ``modify(value, writer)`` to ``key`` (created empty as ``kind``).

        ``modify`` calls one mutator of the value and returns what it returned (the delta),
        e.g. ``lambda c, w: c.increment(w, 5)``.  Returns ``{key: delta}`` to disseminate.
        """
        check_key(key)
        if kind not in DATA_TYPES:
            raise DataError(f"{kind!r} is not a replicated data type")
        current = self._data.get(key)
        if current is None:
            if len(self._data) >= MAX_KEYS:
                raise DataError(f"a store holds at most {MAX_KEYS} keys")
            current = kind()
        elif not isinstance(current, kind):
            raise DataTypeError(f"{key!r} holds a {type(current).__name__}, not a {kind.__name__}")
        if self._entries >= MAX_STORE_ENTRIES:
            raise DataError(f"the store holds {MAX_STORE_ENTRIES} entries, its most")
        before, size = current.value, entries_of(current) if key in self._data else 0
        delta = modify(current, self.writer(now))
        if not isinstance(delta, kind):
            raise DataError(f"the update of {key!r} must return the mutator's delta")
        self._data[key] = current
        self._entries += entries_of(current) - size
        if current.value != before:
            self._emit(KeyChanged(key, current.value))
        return {key: delta}

    def merge(self, entries: Entries) -> list[str]:
        """Join a delta or full state from any node; returns the keys whose value changed."""
        changed = []
        horizon = None if self._clock is None else int((self._clock() + MAX_AHEAD) * 1_000_000)
        for key, incoming in sorted(entries.items()):
            if horizon is not None and latest_stamp(incoming) > horizon:
                self.counters["rejected_future"] += 1
                continue
            current = self._data.get(key)
            if current is None:
                if len(self._data) >= MAX_KEYS:
                    self.counters["rejected_over_limit"] += 1
                    continue
                current = type(incoming)()
            elif type(current) is not type(incoming):
                self.counters["type_conflicts"] += 1
                continue
            size = entries_of(current) if key in self._data else 0
            if (
                self._entries + entries_of(incoming) > MAX_STORE_ENTRIES
                or size + entries_of(incoming) > MAX_ENTRIES
            ):
                current = current.copy()  # near a limit: merge aside, keep it if it fits
            if current.merge(incoming):  # same type: checked above
                grown = entries_of(current) - size
                if self._entries + grown > MAX_STORE_ENTRIES or (
                    grown + size > MAX_ENTRIES and not within_decode_limits(current)
                ):
                    self.counters["rejected_over_limit"] += 1
                    continue
                self._data[key] = current
                self._entries += grown
                changed.append(key)
                self._emit(KeyChanged(key, current.value))
        return changed

    def prune_tombstones(self, horizon: float) -> int:
        """Drop LWW map tombstones written before ``horizon`` (seconds, the writers'
        clock); how many went.  Values do not change (see :meth:`LWWMap.prune`)."""
        clock = max(0, int(horizon * 1_000_000))
        pruned = sum(v.prune(clock) for v in self._data.values() if isinstance(v, LWWMap))
        self.counters["tombstones_pruned"] += pruned
        self._entries -= pruned
        return pruned

    # -- queries --------------------------------------------------------------------------

    def get(self, key: str) -> ReplicatedData | None:
        """A copy of ``key``'s replicated value, or None when no update reached here."""
        current = self._data.get(key)
        return None if current is None else current.copy()

    def value(self, key: str, default: Any = None) -> Any:
        """``key``'s plain value (int, frozenset, dict, ...), or ``default``."""
        current = self._data.get(key)
        return default if current is None else current.value

    def keys(self) -> list[str]:
        """Every key this replica holds, sorted."""
        return sorted(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def state(self) -> Entries:
        """A snapshot of every key (for push/pull, or to merge elsewhere)."""
        return {key: value.copy() for key, value in self._data.items()}

    def take_changes(self) -> list[KeyChanged]:
        """The changes since the last call (oldest dropped and counted past ``max_changes``)."""
        changes = list(self._changes)
        self._changes.clear()
        return changes

    def _emit(self, change: KeyChanged) -> None:
        if len(self._changes) == self._changes.maxlen:
            self.counters["changes_dropped"] += 1
        self._changes.append(change)
        if self.on_change is not None:
            self.on_change()
