"""Cluster-wide key rotation carried by gossip (Serf's ``keys`` command, without queries).

The keyring is one last-writer-wins register: ``[clock, primary, [key, ...]]``.  Every
change made on any node (install, use, remove) produces the next clock and is broadcast;
a node adopts a keyring with a higher clock (ties broken by the larger SHA-256 of its
encoding) and hands its own to every push/pull, so a node that missed the gossip, or
restarted with an old keyring file, catches up.  Clock 0 is the keyring a node was started
with: never sent, never adopted.  Keys only ever travel sealed: nothing is sent or accepted
while the keyring's plaintext policy lets plaintext through (during a migration).
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Callable
from typing import Any

from .. import wire
from ..security.keyring import KEY_SIZES, MAX_KEYS, Keyring, KeyringError, decode_key
from .delegate import Delegate

__all__ = ["KEYS_CHANNEL", "MAX_CLOCK", "KeyGossip"]

KEYS_CHANNEL = "keys"
MAX_CLOCK = 2**53 - 1
"""The highest keyring clock a node sends or adopts."""


def _encode(clock: int, primary: bytes, keys: list[bytes]) -> bytes:
    return wire.dumps([clock, primary, keys])


def _decode(data: bytes) -> tuple[int, bytes, list[bytes]] | None:
    """``(clock, primary, keys)`` from a peer's keyring, or None if malformed."""
    try:
        value: Any = wire.loads(data)
    except wire.WireError:
        return None
    if not (isinstance(value, list) and len(value) == 3):
        return None
    clock, primary, keys = value
    if not (isinstance(clock, int) and 0 < clock <= MAX_CLOCK and isinstance(keys, list)):
        return None
    if not 0 < len(keys) <= MAX_KEYS or primary not in keys:
        return None
    if not all(isinstance(k, bytes) and len(k) in KEY_SIZES for k in keys):
        return None
    return clock, primary, keys


class KeyGossip(Delegate):
    """Applies and spreads changes to one node's keyring."""

    def __init__(
        self,
        keyring: Keyring,
        broadcast: Callable[[bytes], None],
        on_change: Callable[[Keyring], None] | None = None,
    ) -> None:
        self.keyring = keyring
        self.clock = 0
        self.counters: collections.Counter[str] = collections.Counter()
        self._digest = b""
        self._broadcast = broadcast
        self.on_change = on_change
        """Called with the keyring after every change (the agent saves its keyring file)."""

    # -- changes made here (the agent's HTTP API) ----------------------------------------

    def install(self, key: str | bytes) -> None:
        """Accept ``key`` cluster-wide (raises KeyringError if it cannot be)."""
        raw = decode_key(key)
        trial = self._copy()
        trial.install(raw)
        self._change(trial)

    def use(self, key: str | bytes) -> None:
        """Seal with ``key`` cluster-wide; it must be installed here already."""
        trial = self._copy()
        trial.use(key)
        self._change(trial)

    def remove(self, key: str | bytes) -> None:
        """Stop accepting ``key`` cluster-wide (never the primary)."""
        trial = self._copy()
        trial.remove(key)
        self._change(trial)

    def _copy(self) -> Keyring:
        if self.keyring.plaintext != "refuse":
            raise KeyringError(
                "keys can change only once the cluster refuses plaintext (they travel sealed)"
            )
        return Keyring(self.keyring.primary, self.keyring.keys)

    def _change(self, wanted: Keyring) -> None:
        if self.clock >= MAX_CLOCK:  # the change would be this node's alone, refused by peers
            raise KeyringError(
                f"the keyring's clock is at its maximum ({MAX_CLOCK}), so no further change "
                "can spread: restart every node with the keyring it should have (a restarted "
                "cluster starts again at clock 0; docs/security.md)"
            )
        data = _encode(self.clock + 1, wanted.primary, wanted.keys)
        self._adopt(self.clock + 1, wanted.primary, wanted.keys, data)
        self._broadcast(data)

    # -- changes heard from peers --------------------------------------------------------

    def notify_message(self, payload: bytes, now: float) -> None:
        self._merge(payload)

    def local_state(self, join: bool) -> bytes:
        if self.clock == 0 or self.keyring.plaintext != "refuse":
            return b""
        return _encode(self.clock, self.keyring.primary, self.keyring.keys)

    def merge_remote_state(self, data: bytes, join: bool, now: float) -> None:
        if data:
            self._merge(data)

    def _merge(self, data: bytes) -> None:
        if self.keyring.plaintext != "refuse":
            self.counters["keyring_ignored_unsealed"] += 1
            return
        decoded = _decode(data)
        if decoded is None:
            self.counters["rejected_keyring"] += 1
            return
        clock, primary, keys = decoded
        digest = hashlib.sha256(data).digest()
        if (clock, digest) <= (self.clock, self._digest):
            return
        self._adopt(clock, primary, keys, data)

    def _adopt(self, clock: int, primary: bytes, keys: list[bytes], data: bytes) -> None:
        ring, previous = self.keyring, self.keyring.primary
        try:
            for key in ring.keys:
                if key not in keys and key != previous:
                    ring.remove(key)
            for key in keys:
                ring.install(key)
            ring.use(primary)
            if previous not in keys:
                ring.remove(previous)
        except KeyringError:
            self.counters["rejected_keyring"] += 1
            return
        self.clock, self._digest = clock, hashlib.sha256(data).digest()
        self.counters["keyring_changes"] += 1
        if self.on_change is not None:
            self.on_change(ring)
