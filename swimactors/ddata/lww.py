"""Last-writer-wins values: LWWRegister, LWWMap, and Flag (a one-way switch).

A write is stamped ``(clock, node)``: ``clock`` is the writer's time in microseconds, but
never below one past the stamp it replaces, so a write made after reading a value orders
after it even across skewed clocks.  Copies join by keeping the higher stamp (ties, only
possible between distinct values from a faulty writer, go to the larger encoding, so the
join stays a join).  None of these types keep per-process metadata: nothing to prune when
a node goes DOWN.  A removed map key leaves a tombstone (its stamp), so a stale copy
cannot bring it back; :meth:`LWWMap.prune` drops tombstones older than a horizon, which
is safe once every replica holds them and no older write of their keys is still in flight
(the store prunes after a time bound: docs/ddata.md).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..wire import dumps
from .base import (
    MAX_ENTRIES,
    MAX_INT,
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    DataError,
    Writer,
    check_value,
)

__all__ = ["MAX_AHEAD", "Flag", "LWWMap", "LWWRegister", "Stamped", "latest_stamp"]

MAX_AHEAD = 2**30
"""Seconds (34 years) a stamp from another node may be ahead of the local clock.  A write
replaces a stamp by one past it, so a forged stamp near 2**63-1 would leave its key
unwritable for good; under this horizon every key stays writable (a stamp at the edge
delays others' acceptance of the next write by a microsecond)."""


@attrs.frozen
class Stamped:
    """One write: the value (or a removal, ``present=False``) and its stamp."""

    clock: int
    node: str
    present: bool
    value: Any

    def order(self) -> tuple[int, str, bool, bytes]:
        """The total order of writes: the later clock wins, then node, presence and value
        break ties."""
        return (self.clock, self.node, self.present, dumps(self.value))


def latest_stamp(value: object) -> int:
    """The highest stamp clock in an LWW value (-1: none, or not an LWW value)."""
    if isinstance(value, LWWRegister):
        return -1 if value.write is None else value.write.clock
    if isinstance(value, LWWMap):
        return max((write.clock for write in value.writes.values()), default=-1)
    return -1


def _later(mine: Stamped | None, theirs: Stamped) -> bool:
    return mine is None or theirs.order() > mine.order()


def _stamp(writer: Writer, replaced: Stamped | None, present: bool, value: Any) -> Stamped:
    clock = int(writer.now * 1_000_000)
    if replaced is not None:
        clock = max(clock, replaced.clock + 1)
    if not 0 <= clock <= MAX_INT:
        raise DataError(f"time {writer.now!r} gives a clock outside 0..2**63-1")
    return Stamped(clock, writer.node, present, value)


class LWWRegister:
    """One value; :attr:`value` is None until the first write."""

    __slots__ = ("write",)

    def __init__(self, write: Stamped | None = None) -> None:
        self.write = write

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LWWRegister) and self.write == other.write

    def __repr__(self) -> str:
        return f"LWWRegister({self.write!r})"

    @property
    def value(self) -> Any:
        return None if self.write is None else self.write.value

    def set(self, writer: Writer, value: Any) -> LWWRegister:
        """Write ``value`` (plain CBOR, at most 4,096 bytes) as ``writer``; returns the delta."""
        check_value(value, MAX_VALUE_BYTES, "an LWW value")
        delta = LWWRegister(_stamp(writer, self.write, True, value))
        self.merge(delta)
        return delta

    def merge(self, other: LWWRegister) -> bool:
        if other.write is None or not _later(self.write, other.write):
            return False
        self.write = other.write
        return True

    def copy(self) -> LWWRegister:
        return LWWRegister(self.write)


class LWWMap:
    """A map from str keys to last-writer-wins values; removed keys keep a tombstone."""

    __slots__ = ("writes",)

    def __init__(self, writes: dict[str, Stamped] | None = None) -> None:
        self.writes: dict[str, Stamped] = dict(writes or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LWWMap) and self.writes == other.writes

    def __repr__(self) -> str:
        return f"LWWMap({self.writes!r})"

    @property
    def value(self) -> dict[str, Any]:
        return {key: w.value for key, w in sorted(self.writes.items()) if w.present}

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default`` if it is absent or removed."""
        write = self.writes.get(key)
        return write.value if write is not None and write.present else default

    def set(self, writer: Writer, key: str, value: Any) -> LWWMap:
        """Write ``value`` at ``key`` as ``writer``; returns the delta."""
        check_value(value, MAX_VALUE_BYTES, "an LWW value")
        return self._write(writer, key, True, value)

    def remove(self, writer: Writer, key: str) -> LWWMap:
        """Remove ``key`` (a tombstone, pruned after the system's ``tombstone_ttl``); returns the
        delta."""
        return self._write(writer, key, False, None)

    def _write(self, writer: Writer, key: str, present: bool, value: Any) -> LWWMap:
        if not isinstance(key, str) or not 0 < len(key.encode()) <= MAX_KEY_BYTES:
            raise DataError(f"an LWW map key is a non-empty str of at most {MAX_KEY_BYTES} bytes")
        if key not in self.writes and len(self.writes) >= MAX_ENTRIES:
            raise DataError(f"an LWW map holds at most {MAX_ENTRIES} keys (tombstones included)")
        delta = LWWMap({key: _stamp(writer, self.writes.get(key), present, value)})
        self.merge(delta)
        return delta

    def prune(self, horizon: int) -> int:
        """Drop the tombstones stamped before ``horizon`` (a clock); how many went.  The
        value is unchanged; a write of such a key older than its tombstone that arrives
        later would bring the key back, hence the time bound on the caller's side."""
        dead = [k for k, w in self.writes.items() if not w.present and w.clock < horizon]
        for key in dead:
            del self.writes[key]
        return len(dead)

    def merge(self, other: LWWMap) -> bool:
        changed = False
        for key, theirs in other.writes.items():
            if _later(self.writes.get(key), theirs):
                self.writes[key] = theirs
                changed = True
        return changed

    def copy(self) -> LWWMap:
        return LWWMap(self.writes)


class Flag:
    """A boolean that can only be switched on (joins by ``or``)."""

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Flag) and self.enabled == other.enabled

    def __repr__(self) -> str:
        return f"Flag({self.enabled!r})"

    @property
    def value(self) -> bool:
        return self.enabled

    def switch_on(self, writer: Writer) -> Flag:
        """Turn the flag on for good; returns the delta."""
        self.enabled = True
        return Flag(True)

    def merge(self, other: Flag) -> bool:
        if other.enabled and not self.enabled:
            self.enabled = True
            return True
        return False

    def copy(self) -> Flag:
        return Flag(self.enabled)
