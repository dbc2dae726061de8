"""The key handshake that opens an actor connection, and the sealed frames after it (sans-IO).

Both ends prove they hold the cluster key before any frame is accepted, and derive fresh
keys for this one connection::

    each end -> HELLO  = 0x1d | version | key id (4) | nonce (32) | name length (1) | name
    each end -> PROOF  = HMAC-SHA256(its proof key, transcript)
    then records       = length (4) | AES-GCM(its send key, nonce = record number) with
                         the label as AD

The transcript is the label and both hellos, the initiator's first; from it and the key,
``HKDF-SHA256(key, salt=nonce_i || nonce_r, info=transcript hash)`` gives four keys: a
proof key and a send key per direction.  Fresh nonces on both sides make every
connection's keys new (a recorded connection cannot be replayed into another), the roles
in the derivation stop a reflected proof, and the names in the transcript make each end's
claimed node name authentic: only a key holder can complete the handshake under a name.
Records are opened strictly in order (TCP delivers them so): a dropped, repeated, reordered
or altered record fails and breaks the connection.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .. import wire
from ..errors import SwimactorsError
from .keyring import Keyring

__all__ = ["HELLO_MAGIC", "RECORD", "HandshakeError", "SealedStream", "StreamHandshake"]

HELLO_MAGIC = 0x1D
VERSION = 1
NONCE_SIZE = 32
MAX_NAME = 255
TAG_SIZE = 16
RECORD = 64 * 1024
"""The most plaintext one sealed record carries (a write batch is one record)."""
_HELLO_HEAD = struct.Struct(">BB4s32sB")
_LENGTH = struct.Struct(">I")
_SEALED = RECORD + TAG_SIZE
_VIEW_FROM = 4096


class HandshakeError(SwimactorsError):
    """The peer did not prove the key (or spoke something else): close the connection."""


class SealedStream:
    """The sealed records of one authenticated connection, both ways (a
    :class:`~.records.Records` codec): a 4-byte length, then AES-GCM of up to
    :data:`RECORD` bytes, the nonce the record's number in its direction, the label as
    associated data; records open strictly in order, and one that does not is a
    :class:`HandshakeError` (close the connection)."""

    def __init__(self, send_key: bytes, receive_key: bytes, label: bytes) -> None:
        self._encrypt = AESGCM(send_key).encrypt
        self._decrypt = AESGCM(receive_key).decrypt
        self._label = label or None
        """An empty label is no associated data: the same tag, one cipher call less."""
        self._sent = 0
        self._received = 0
        self._decoder = wire.FrameDecoder(_SEALED)
        self._partial = False
        """The decoder holds the start of a record."""

    def seal(self, data: bytes | bytearray | memoryview, out: bytearray) -> None:
        """Append the records carrying ``data`` to ``out``."""
        if len(data) > RECORD:
            view = memoryview(data)
            for start in range(0, len(view), RECORD):
                self.seal(view[start : start + RECORD], out)
            return
        sent = self._sent
        self._sent = sent + 1
        out += _LENGTH.pack(len(data) + TAG_SIZE)
        out += self._encrypt(sent.to_bytes(12, "big"), data, self._label)

    def open(self, data: bytes | bytearray, out: bytearray) -> bytes:
        """The plaintext of the records ``data`` completes (b"" if none); nothing goes to
        ``out`` (keyed records never answer)."""
        size = len(data) - 4
        if not self._partial and size > 0 and _LENGTH.unpack_from(data)[0] == size <= _SEALED:
            # the usual read: one whole record (a small one is copied: cheaper than a view)
            return self._open(data[4:] if size < _VIEW_FROM else memoryview(data)[4:])
        decoder = self._decoder
        records = decoder.feed(data)
        if decoder.error is not None:
            raise HandshakeError(f"sealed record: {decoder.error}")
        self._partial = decoder.buffered > 0
        return b"".join(map(self._open, records))

    def end(self) -> None:
        """The peer closed: :class:`HandshakeError` if that cut a record."""
        if self._partial:
            raise HandshakeError("connection closed inside a sealed record")

    def _open(self, record: bytes | bytearray | memoryview) -> bytes:
        received = self._received
        try:
            plain = self._decrypt(received.to_bytes(12, "big"), record, self._label)
        except InvalidTag:
            raise HandshakeError(
                "a sealed record failed to open: altered, replayed or out of order"
            ) from None
        self._received = received + 1
        return plain


class StreamHandshake:
    """One end of the handshake: send :meth:`hello`, feed the peer's hello to
    :meth:`on_hello` and send what it returns, feed the peer's proof to :meth:`on_proof`."""

    def __init__(
        self,
        keyring: Keyring,
        label: str,
        name: str,
        *,
        initiator: bool,
        nonce: bytes | None = None,
    ) -> None:
        encoded = name.encode()
        if not 0 < len(encoded) <= MAX_NAME:
            raise ValueError("a node name is 1..255 bytes")
        self._keyring = keyring
        self._label = label.encode()
        self._initiator = initiator
        self._nonce = nonce if nonce is not None else os.urandom(NONCE_SIZE)
        self._key_id = keyring.primary_id
        self._hello = _HELLO_HEAD.pack(
            HELLO_MAGIC, VERSION, self._key_id, self._nonce, len(encoded)
        )
        self._hello += encoded
        self._expected_proof: bytes | None = None
        self._stream: SealedStream | None = None
        self.peer_name: str | None = None
        """The peer's node name, authentic once :meth:`on_proof` returned."""

    def hello(self) -> bytes:
        """This side's hello frame, the first thing it sends."""
        return self._hello

    def on_hello(self, frame: bytes) -> bytes:
        """Check the peer's hello and derive this connection's keys; returns our proof."""
        if self._expected_proof is not None:
            raise HandshakeError("a second hello")
        if len(frame) < _HELLO_HEAD.size + 1:
            raise HandshakeError("not a handshake hello")
        magic, version, key_id, nonce, length = _HELLO_HEAD.unpack_from(frame)
        if magic != HELLO_MAGIC or version != VERSION:
            raise HandshakeError("not a handshake hello (plaintext peer or another protocol)")
        if len(frame) != _HELLO_HEAD.size + length:
            raise HandshakeError("malformed hello")
        try:
            peer_name = frame[_HELLO_HEAD.size :].decode()
        except UnicodeDecodeError:
            raise HandshakeError("malformed hello") from None
        # the initiator's primary key is used: the responder follows if it holds it
        key = self._keyring.lookup(self._key_id if self._initiator else key_id)
        if key is None:
            raise HandshakeError("the peer's key is not in our keyring")
        first, second = (self._hello, frame) if self._initiator else (frame, self._hello)
        transcript = hashlib.sha256(self._label + b"\0" + first + second).digest()
        salt = (self._nonce + nonce) if self._initiator else (nonce + self._nonce)
        material = HKDF(hashes.SHA256(), 128, salt=salt, info=transcript).derive(key)
        proof_i, proof_r, send_i, send_r = (material[i : i + 32] for i in range(0, 128, 32))
        mine, theirs = (proof_i, proof_r) if self._initiator else (proof_r, proof_i)
        self._expected_proof = hmac.new(theirs, transcript, "sha256").digest()
        send, receive = (send_i, send_r) if self._initiator else (send_r, send_i)
        self._stream = SealedStream(send, receive, self._label)
        self.peer_name = peer_name
        return hmac.new(mine, transcript, "sha256").digest()

    def on_proof(self, frame: bytes) -> SealedStream:
        """Check the peer's proof: the connection's sealed records once it holds."""
        if self._expected_proof is None or self._stream is None:
            raise HandshakeError("a proof before the hello")
        if not hmac.compare_digest(frame, self._expected_proof):
            raise HandshakeError("the peer did not prove the key (another key or label)")
        return self._stream
