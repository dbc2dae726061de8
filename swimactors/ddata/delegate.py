"""Distributed data riding on SWIM: deltas on gossip, the state in parts on push/pull.

:class:`DataDelegate` plugs a :class:`~swimactors.ddata.store.DataStore` into a membership
core on the ``"ddata"`` channel, as :class:`~swimactors.registry.RegistryDelegate` does for
the registry: an update's delta is broadcast at once (one part per group of keys that fits
a gossip packet; a key too large for any packet is left to push/pull and counted as
``deferred``), and a lost delta is repaired by push/pull, which carries the store's state
a part at a time.
"""

from __future__ import annotations

import bisect
import collections

from ..membership.core import BroadcastTooLarge
from ..membership.delegate import Delegate
from ..registry.delegate import Gossip
from .codec import DataDecodeError, decode_entries, encode_data, encode_entries
from .store import DataStore, Entries

__all__ = ["CHANNEL", "DataDelegate"]

CHANNEL = "ddata"

_BROADCAST_HEADROOM = 32
"""Bytes of a broadcast taken by the core's user-message framing (channel name, tags)."""

STATE_PART_BYTES = 256 * 1024
"""Bytes of the store's state one push/pull carries at most (keys in turn; one key larger
than this goes alone): a part holds no more CBOR items than bytes, so it stays under the
decoders' item limit however many keys the store holds.  Sent whole, a store of 30,000
counters was 300,000 items, and every peer refused it, all its keys with it."""
_ENTRY_FRAMING = 16
"""Bytes a key's entry takes in a part besides its key and value (generous)."""


class DataDelegate(Delegate):
    """Binds ``store`` to ``core``; publish every local update's delta through it."""

    def __init__(self, store: DataStore, core: Gossip) -> None:
        self.store = store
        self.core = core
        self.counters: collections.Counter[str] = collections.Counter()
        """deltas_sent, parts_sent, bytes_sent, deferred, deltas/states_received,
        bytes_received, rejected_malformed, state_bytes_sent."""
        self._after: str | None = None
        """The last key of the last state part sent (None: start from the first)."""
        core.register_delegate(CHANNEL, self)

    def publish(self, delta: Entries) -> None:
        """Broadcast ``delta`` in parts that each fit one gossip packet."""
        budget = self.core.max_broadcast_size - _BROADCAST_HEADROOM
        self.counters["deltas_sent"] += 1
        whole = encode_entries(delta)
        parts = (
            [whole] if len(whole) <= budget else [encode_entries({k: v}) for k, v in delta.items()]
        )
        for part in parts:
            if len(part) > budget:
                self.counters["deferred"] += 1
                continue
            try:
                self.core.broadcast(CHANNEL, part)
            except BroadcastTooLarge:
                self.counters["deferred"] += 1
                continue
            self.counters["parts_sent"] += 1
            self.counters["bytes_sent"] += len(part)

    # -- the membership hooks -------------------------------------------------------------

    def notify_message(self, payload: bytes, now: float) -> None:
        self._merge(payload, "deltas")

    def local_state(self, join: bool) -> bytes:
        """The next part of the store's state (:data:`STATE_PART_BYTES`), taking the keys
        in turn from where the last part ended, so successive push/pulls carry it all."""
        keys = self.store.keys()
        start = bisect.bisect_right(keys, self._after) if self._after is not None else 0
        part: Entries = {}
        size = 0
        for key in keys[start:] + keys[:start]:
            value = self.store.get(key)
            assert value is not None
            cost = len(encode_data(value)) + len(key.encode()) + _ENTRY_FRAMING
            if part and size + cost > STATE_PART_BYTES:
                break
            part[key] = value
            size += cost
        self._after = self._last_of(keys, start, len(part))
        data = encode_entries(part)
        self.counters["state_bytes_sent"] += len(data)
        return data

    @staticmethod
    def _last_of(keys: list[str], start: int, taken: int) -> str | None:
        """Where the next part starts after ``taken`` keys from ``start`` (None: from the
        first key, the whole state having been sent)."""
        if taken >= len(keys):
            return None
        return keys[(start + taken - 1) % len(keys)]

    def merge_remote_state(self, data: bytes, join: bool, now: float) -> None:
        self._merge(data, "states")

    def _merge(self, data: bytes, kind: str) -> None:
        self.counters[f"{kind}_received"] += 1
        self.counters["bytes_received"] += len(data)
        try:
            incoming = decode_entries(data)
        except DataDecodeError:
            self.counters["rejected_malformed"] += 1
            return
        self.store.merge(incoming)
