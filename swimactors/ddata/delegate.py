"""Distributed data riding on SWIM: deltas on gossip, full state on push/pull.

:class:`DataDelegate` plugs a :class:`~swimactors.ddata.store.DataStore` into a membership
core on the ``"ddata"`` channel, as :class:`~swimactors.registry.RegistryDelegate` does for
the registry: an update's delta is broadcast at once (one part per group of keys that fits
a gossip packet; a key too large for any packet is left to push/pull and counted as
``deferred``), and a lost delta is repaired by the next push/pull.
"""

from __future__ import annotations

import collections

from ..membership.core import BroadcastTooLarge
from ..membership.delegate import Delegate
from ..registry.delegate import Gossip
from .codec import DataDecodeError, decode_entries, encode_entries
from .store import DataStore, Entries

__all__ = ["CHANNEL", "DataDelegate"]

CHANNEL = "ddata"

_BROADCAST_HEADROOM = 32
"""Bytes of a broadcast taken by the core's user-message framing (channel name, tags)."""


class DataDelegate(Delegate):
    """Binds ``store`` to ``core``; publish every local update's delta through it."""

    def __init__(self, store: DataStore, core: Gossip) -> None:
        self.store = store
        self.core = core
        self.counters: collections.Counter[str] = collections.Counter()
        """deltas_sent, parts_sent, bytes_sent, deferred, deltas/states_received,
        bytes_received, rejected_malformed, state_bytes_sent."""
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
        data = encode_entries(self.store.state())
        self.counters["state_bytes_sent"] += len(data)
        return data

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
