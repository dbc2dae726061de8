"""Sealing of datagrams and one-way frames with the cluster key (sans-IO, no clock read).

A sealed packet is ``header || AES-GCM(timestamp || data)``, the cluster label as
associated data, so a packet from another cluster (wrong key or wrong label), a tampered or
truncated one, fails to open and is never decoded.

Header (25 bytes)::

    0x1c        magic and version (never the first byte of valid CBOR: plaintext and
                sealed packets are told apart by it)
    key id      4 bytes, names the keyring key
    session     12 random bytes chosen by the sender at start-up
    sequence    8 bytes, counts the sender's packets in this session

Inside the ciphertext, 4 bytes of the sender's wall clock in whole seconds come first.
Each session seals with its own key, ``HKDF-SHA256(key, salt=session)``, and the sequence
number is the nonce, so nonces never repeat under one key however much is sent (random
96-bit nonces would limit a key to about 2**32 packets).  Every header field is bound by
the tag without being associated data: the key id and session choose the key, the
sequence number is the nonce (a fixed associated data is also about 2 us faster per packet
with ``cryptography`` than one that changes each time).

Replay protection: a receiver keeps, per sender session, the highest sequence number seen
and a bitmap of the 1,024 before it (IPsec's sliding window), and refuses any packet whose
timestamp is more than ``max_age`` seconds from its own clock.  A window is forgotten only
after its session has been silent for ``2 * max_age``, when every packet it could replay is
already too old, so a recorded packet is accepted at most once.
"""

from __future__ import annotations

import collections
import enum
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .keyring import Keyring

__all__ = ["MAGIC", "OVERHEAD", "PacketSealer", "Rejected", "is_sealed"]

MAGIC = 0x1C
_HEADER = struct.Struct(">B4s12sQ")
_STAMP = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
OVERHEAD = HEADER_SIZE + 4 + 16
"""Bytes sealing adds to a packet."""
WINDOW = 1024
_WINDOW_BITS = (1 << WINDOW) - 1
_INFO = b"swimactors packet v1"


class Rejected(enum.Enum):
    """Why a packet was dropped; each is counted as ``rejected_sealing_<value>``."""

    UNSEALED = "unsealed"  # plaintext while the keyring refuses it
    TRUNCATED = "truncated"  # shorter than a header and a tag
    UNKNOWN_KEY = "unknown_key"  # sealed with a key this node does not hold
    FORGED = "forged"  # fails to open: tampered, wrong key or wrong label
    STALE = "stale"  # timestamp more than max_age from our clock
    REPLAYED = "replayed"  # this session's sequence number was seen (or is too old)
    BUSY = "busy"  # too many live sender sessions to track another


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` starts like a sealed packet (its first byte is :data:`MAGIC`)."""
    return bool(data) and data[0] == MAGIC


def session_cipher(key: bytes, session: bytes) -> AESGCM:
    """The AEAD a sender session seals with under ``key``."""
    derived = HKDF(hashes.SHA256(), 32, salt=session, info=_INFO).derive(key)
    return AESGCM(derived)


class _Window:
    """The sequence numbers seen from one sender session (sliding bitmap)."""

    __slots__ = ("bits", "cipher", "highest", "last_seen")

    def __init__(self, cipher: AESGCM) -> None:
        self.cipher = cipher
        self.highest = -1
        self.bits = 0  # bit i set: sequence (highest - i) was seen
        self.last_seen = 0.0

    def fresh(self, sequence: int) -> bool:
        offset = self.highest - sequence
        return offset < 0 or (offset < WINDOW and not (self.bits >> offset) & 1)

    def mark(self, sequence: int) -> None:
        offset = self.highest - sequence
        if offset < 0:
            self.bits = ((self.bits << -offset) | 1) & _WINDOW_BITS
            self.highest = sequence
        else:
            self.bits |= 1 << offset


class PacketSealer:
    """Seals this node's packets and opens its peers', counting every rejection."""

    def __init__(
        self,
        keyring: Keyring,
        label: str,
        *,
        session: bytes | None = None,
        max_sessions: int = 65536,
    ) -> None:
        self.keyring = keyring
        self._counters: collections.Counter[str] = collections.Counter()
        self._sealed = self._opened = 0  # per packet: plain ints, cheaper than the Counter
        self._label = label.encode()
        self._session = session if session is not None else os.urandom(12)
        if len(self._session) != 12:
            raise ValueError("a session id is 12 bytes")
        self._sequence = 0
        self._ciphers: dict[bytes, AESGCM] = {}  # our session's cipher per key id
        self._windows: collections.OrderedDict[tuple[bytes, bytes], _Window] = (
            collections.OrderedDict()
        )  # least recently used first
        self._max_sessions = max_sessions

    def seal(self, data: bytes, wall: float) -> bytes:
        """``data`` sealed with the primary key (as is while the policy sends plaintext)."""
        if self.keyring.plaintext == "send":
            return data
        ident = self.keyring.primary_id
        cipher = self._ciphers.get(ident)
        if cipher is None:
            cipher = self._ciphers[ident] = session_cipher(self.keyring.primary, self._session)
        self._sequence += 1
        stamp = _STAMP.pack(min(max(int(wall), 0), 0xFFFFFFFF))
        nonce = self._sequence.to_bytes(12, "big")
        self._sealed += 1
        header = _HEADER.pack(MAGIC, ident, self._session, self._sequence)
        return header + cipher.encrypt(nonce, stamp + data, self._label)

    def open(self, data: bytes, wall: float) -> bytes | Rejected:
        """The plaintext of a sealed packet, or why it was dropped (counted)."""
        result = self._open(data, wall)
        if isinstance(result, Rejected):
            self._counters[f"rejected_sealing_{result.value}"] += 1
        return result

    def _open(self, data: bytes, wall: float) -> bytes | Rejected:
        if not is_sealed(data):
            if self.keyring.plaintext == "refuse":
                return Rejected.UNSEALED
            self._counters["plaintext_accepted"] += 1
            return data
        if len(data) < OVERHEAD:
            return Rejected.TRUNCATED
        _magic, ident, session, sequence = _HEADER.unpack_from(data)
        key = self.keyring.lookup(ident)
        if key is None:
            return Rejected.UNKNOWN_KEY
        slot = (ident, session)
        window = self._windows.get(slot)
        cipher = window.cipher if window is not None else session_cipher(key, session)
        try:
            plain = cipher.decrypt(sequence.to_bytes(12, "big"), data[HEADER_SIZE:], self._label)
        except InvalidTag:
            return Rejected.FORGED
        (stamp,) = _STAMP.unpack_from(plain)
        if abs(wall - stamp) > self.keyring.max_age:
            return Rejected.STALE
        if window is None:
            window = self._new_window(slot, cipher, wall)
            if window is None:
                return Rejected.BUSY
        if not window.fresh(sequence):
            return Rejected.REPLAYED
        window.mark(sequence)
        window.last_seen = wall
        self._windows.move_to_end(slot)
        self._opened += 1
        return plain[4:]

    def _new_window(self, slot: tuple[bytes, bytes], cipher: AESGCM, wall: float) -> _Window | None:
        """Track a new sender session, forgetting the least recent one if it has been silent
        long enough that all its packets are stale; None when every tracked one is live."""
        if len(self._windows) >= self._max_sessions:
            oldest = next(iter(self._windows.values()))
            if wall - oldest.last_seen <= 2 * self.keyring.max_age:
                return None
            self._windows.popitem(last=False)
        window = self._windows[slot] = _Window(cipher)
        return window

    @property
    def counters(self) -> collections.Counter[str]:
        """Packets sealed and opened, plaintext accepted, and each rejection."""
        counters = collections.Counter(self._counters)
        if self._sealed:
            counters["sealed_packets"] = self._sealed
        if self._opened:
            counters["opened_packets"] = self._opened
        return counters

    @property
    def sessions(self) -> int:
        """Sender sessions currently tracked (bounded by ``max_sessions``)."""
        return len(self._windows)
