"""The transmit-limited broadcast queue behind SWIM's piggybacked dissemination.

Each update rides on outgoing packets until it has been sent ``limit`` times
(``retransmit_mult * ceil(log10(n + 1))``).  Updates that have been sent fewer times go
first, newest first among equals (memberlist's ``TransmitLimitedQueue`` ordering), and a
newer update with the same key replaces the older one, so news about a member never
travels behind stale news about it.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

__all__ = ["BroadcastQueue"]


@attrs.define
class _Item:
    key: Hashable
    kind: str
    data: bytes
    order: int
    transmits: int = 0


class BroadcastQueue:
    """Keyed, size-aware queue of encoded messages with per-item transmit counts."""

    def __init__(self, max_items: int = 8192) -> None:
        self.max_items = max_items
        self.dropped = 0
        """Items evicted because the queue was full (oldest, most-sent first)."""
        self._items: dict[Hashable, _Item] = {}
        self._order = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def push(self, key: Hashable, kind: str, data: bytes) -> None:
        """Queue ``data`` (a message of ``kind``), replacing anything under the same key."""
        self._order += 1
        self._items[key] = _Item(key, kind, data, self._order)
        if len(self._items) > self.max_items:
            victim = max(self._items.values(), key=lambda i: (i.transmits, -i.order))
            del self._items[victim.key]
            self.dropped += 1

    def discard(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def take(self, budget: int, limit: int) -> list[tuple[str, bytes]]:
        """``(kind, data)`` of the messages fitting in ``budget`` bytes, each counted as
        sent once more; items reaching ``limit`` transmissions leave the queue."""
        chosen: list[tuple[str, bytes]] = []
        if not self._items or budget <= 0:
            return chosen
        for item in sorted(self._items.values(), key=lambda i: (i.transmits, -i.order)):
            size = len(item.data)
            if size > budget:
                if budget < 16:
                    break
                continue
            budget -= size
            chosen.append((item.kind, item.data))
            item.transmits += 1
            if item.transmits >= limit:
                del self._items[item.key]
        return chosen

    def transmits(self, key: Hashable) -> int | None:
        """How often the item under ``key`` has been sent, or None if it is gone."""
        item = self._items.get(key)
        return None if item is None else item.transmits
