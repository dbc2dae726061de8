"""The transmit-limited broadcast queue behind SWIM's piggybacked dissemination.

Each update rides on outgoing packets until it has been sent ``limit`` times
(``retransmit_mult * ceil(log10(n + 1))``).  Least-sent updates go first, and among equals
the most recently queued or sent (memberlist's ``TransmitLimitedQueue`` orders the same
way), and a newer update with the same key replaces the older one, so news about a member
never travels behind stale news about it.  Items live in buckets by transmit count, so
filling a packet touches only the items it takes, not the whole queue.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

__all__ = ["BroadcastQueue"]

SKIP_LIMIT = 32
"""Items too large for the room left that one packet may pass over before giving up."""


@attrs.define
class _Item:
    key: Hashable
    kind: str
    data: bytes
    transmits: int = 0


class BroadcastQueue(dict[Hashable, _Item]):
    """Keyed, size-aware queue of encoded messages with per-item transmit counts: a
    mapping of its items by key (so ``len``, ``in`` and truth are the dict's own, read by
    the core every turn without a Python call); change it only by its methods."""

    def __init__(self, max_items: int = 8192) -> None:
        super().__init__()
        self.max_items = max_items
        self.dropped = 0
        """Items evicted because the queue was full (the most-sent, oldest first)."""
        self._buckets: dict[int, dict[Hashable, _Item]] = {}  # transmits -> oldest first

    def push(self, key: Hashable, kind: str, data: bytes) -> None:
        """Queue ``data`` (a message of ``kind``), replacing anything under the same key."""
        self.discard(key)
        item = _Item(key, kind, data)
        self[key] = item
        self._buckets.setdefault(0, {})[key] = item
        if len(self) > self.max_items:
            most_sent = self._buckets[max(self._buckets)]
            self.discard(next(iter(most_sent)))
            self.dropped += 1

    def discard(self, key: Hashable) -> None:
        """Drop the queued update ``key``, if any."""
        item = self.pop(key, None)
        if item is not None:
            bucket = self._buckets[item.transmits]
            del bucket[key]
            if not bucket:
                del self._buckets[item.transmits]

    def take(self, budget: int, limit: int) -> list[tuple[str, bytes]]:
        """``(kind, data)`` of the messages fitting in ``budget`` bytes, each counted as
        sent once more; items reaching ``limit`` transmissions leave the queue."""
        chosen: list[_Item] = []
        skipped = 0
        for transmits in sorted(self._buckets):
            for item in reversed(self._buckets[transmits].values()):
                if len(item.data) > budget:
                    skipped += 1
                    if skipped > SKIP_LIMIT:
                        break
                    continue
                budget -= len(item.data)
                chosen.append(item)
            if skipped > SKIP_LIMIT:
                break
        for item in reversed(chosen):
            self.discard(item.key)
            if item.transmits + 1 < limit:
                item.transmits += 1
                self[item.key] = item
                self._buckets.setdefault(item.transmits, {})[item.key] = item
        return [(item.kind, item.data) for item in chosen]

    def transmits(self, key: Hashable) -> int | None:
        """How often the item under ``key`` has been sent, or None if it is gone."""
        item = self.get(key)
        return None if item is None else item.transmits
