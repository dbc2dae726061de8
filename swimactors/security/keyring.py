"""The cluster's shared keys: one primary that seals, others that still open (rotation).

Keys are 16, 24 or 32 random bytes (AES-128/192/256, memberlist's sizes), written in
base64 on command lines and in keyring files.  A keyring file is Serf's format: a JSON
array of base64 keys, the primary first.  Each key is known on the wire by a 4-byte id
(the start of its SHA-256), so a receiver picks the right key without trying them all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ..errors import SwimactorsError

__all__ = [
    "KEY_SIZES",
    "MAX_KEYS",
    "Keyring",
    "KeyringError",
    "PlaintextPolicy",
    "generate_key",
    "key_id",
]

KEY_SIZES = (16, 24, 32)
MAX_KEYS = 16
"""Keys a keyring may hold at once (the whole keyring must fit in one gossip packet)."""
PlaintextPolicy = Literal["refuse", "accept", "send"]
"""What a keyed node does with plaintext: ``refuse`` it (the default), ``accept`` it while
sending sealed, or ``send`` plaintext while accepting both (the first migration step)."""
_POLICIES = ("refuse", "accept", "send")


class KeyringError(SwimactorsError, ValueError):
    """A key or keyring file is malformed, or a keyring change is not allowed."""


def generate_key() -> str:
    """A new random 32-byte key in base64 (``swimactors keygen``)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def key_id(key: bytes) -> bytes:
    """The 4 bytes that name ``key`` on the wire."""
    return hashlib.sha256(key).digest()[:4]


def decode_key(key: str | bytes) -> bytes:
    """Raw key bytes from base64 text (or raw bytes), checked for size."""
    if isinstance(key, str):
        try:
            raw = base64.b64decode(key.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError("a key must be base64 (see `swimactors keygen`)") from None
    else:
        raw = bytes(key)
    if len(raw) not in KEY_SIZES:
        raise KeyringError(f"a key must be 16, 24 or 32 bytes, got {len(raw)}")
    return raw


def encode_key(key: bytes) -> str:
    """A key in base64, as keyring files, the CLI and the HTTP API show it."""
    return base64.b64encode(key).decode()


class Keyring:
    """The primary key (sealing) and the other installed keys (opening only).

    Mutable on purpose: rotation changes it while the node runs, and the sealers read it
    on every packet.  ``version`` goes up on every change.
    """

    def __init__(
        self,
        primary: str | bytes,
        others: Iterable[str | bytes] = (),
        *,
        plaintext: PlaintextPolicy = "refuse",
        max_age: float = 60.0,
    ) -> None:
        if plaintext not in _POLICIES:
            raise KeyringError(f"plaintext must be one of {_POLICIES}, got {plaintext!r}")
        if not max_age > 0:
            raise KeyringError(f"max_age must be positive, got {max_age!r}")
        self.plaintext: PlaintextPolicy = plaintext
        self.max_age = float(max_age)
        """Seconds a datagram stays valid (and the clock skew tolerated between nodes)."""
        self.version = 0
        self._keys: dict[bytes, bytes] = {}
        self._primary = decode_key(primary)
        self._primary_id = key_id(self._primary)
        self.install(self._primary)
        for key in others:
            self.install(key)
        self.version = 0

    @classmethod
    def load(cls, path: str | os.PathLike[str], **options: object) -> Keyring:
        """A keyring from a Serf-style file: a JSON array of base64 keys, primary first."""
        try:
            keys = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise KeyringError(f"cannot read keyring file {os.fspath(path)!r}: {exc}") from None
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise KeyringError("a keyring file is a non-empty JSON array of base64 keys")
        return cls(keys[0], keys[1:], **options)  # type: ignore[arg-type]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the keys in the format :meth:`load` reads (readable by the owner only)."""
        text = json.dumps([encode_key(k) for k in self.keys])
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text + "\n")

    # -- reading -------------------------------------------------------------------------

    @property
    def primary(self) -> bytes:
        """The key this node seals with."""
        return self._primary

    @property
    def primary_id(self) -> bytes:
        """The primary key's 4-byte id, as carried in each sealed packet's header (read
        per packet sealed: hashed once per primary, not per read)."""
        return self._primary_id

    @property
    def keys(self) -> list[bytes]:
        """Every installed key, the primary first."""
        return [self._primary, *(k for k in self._keys.values() if k != self._primary)]

    def lookup(self, wire_id: bytes) -> bytes | None:
        """The installed key named ``wire_id`` on the wire, if any."""
        return self._keys.get(wire_id)

    # -- rotation (Serf's install / use / remove) ----------------------------------------

    def install(self, key: str | bytes) -> bool:
        """Accept ``key`` for opening; True if it was new."""
        raw = decode_key(key)
        ident = key_id(raw)
        existing = self._keys.get(ident)
        if existing is not None:
            if existing != raw:
                raise KeyringError("two keys share a wire id; generate another key")
            return False
        if len(self._keys) >= MAX_KEYS:
            raise KeyringError(f"a keyring holds at most {MAX_KEYS} keys; remove one first")
        self._keys[ident] = raw
        self.version += 1
        return True

    def use(self, key: str | bytes) -> bool:
        """Seal with ``key`` from now on (it must be installed); True if it changed."""
        raw = decode_key(key)
        if self._keys.get(key_id(raw)) != raw:
            raise KeyringError("install a key before using it")
        if raw == self._primary:
            return False
        self._primary, self._primary_id = raw, key_id(raw)
        self.version += 1
        return True

    def remove(self, key: str | bytes) -> bool:
        """Stop accepting ``key`` (never the primary); True if it was installed."""
        raw = decode_key(key)
        if raw == self._primary:
            raise KeyringError("the primary key cannot be removed; use another key first")
        if self._keys.get(key_id(raw)) != raw:
            return False
        del self._keys[key_id(raw)]
        self.version += 1
        return True

    def __repr__(self) -> str:  # never print key material
        ids = ", ".join(key_id(k).hex() for k in self.keys)
        return f"Keyring(ids=[{ids}], plaintext={self.plaintext!r})"
