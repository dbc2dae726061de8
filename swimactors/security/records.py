"""A trio stream carried as sealed records: what is sent is sealed into :attr:`SecureStream.unsent`
(the caller may send those bytes with its own non-blocking ``send``), what is received is
opened strictly in order; a record that fails to open breaks the stream.

How bytes become records is the :class:`Records` codec's: :class:`KeyRecords` (the key
handshake's AES-GCM records, 4-byte length first) or TLS's (:mod:`.tls_stream`).
"""

from __future__ import annotations

import struct
from typing import Protocol

import trio

from .. import wire
from .handshake import HandshakeError, SealedStream

__all__ = ["RECORD", "KeyRecords", "Records", "SecureStream"]

RECORD = 64 * 1024
"""The most plaintext one keyed record carries (a write batch is one record)."""
_LENGTH = struct.Struct(">I")


class Records(Protocol):
    """Seals bytes into records and opens records, in order (sans-IO)."""

    def seal(self, data: bytes | bytearray | memoryview, out: bytearray) -> None:
        """Append the records carrying ``data`` to ``out``."""

    def open(self, data: bytes | bytearray, out: bytearray) -> bytes:
        """The plaintext of the records ``data`` completes (b"" if none); bytes the
        protocol must answer with go to ``out``; ``trio.BrokenResourceError`` if a record
        fails to open."""

    def end(self) -> None:
        """The peer closed: ``trio.BrokenResourceError`` if that cut a record."""


class KeyRecords:
    """Records under the key handshake's connection keys: a 4-byte length, then AES-GCM
    of up to :data:`RECORD` bytes (:class:`~.handshake.SealedStream`)."""

    def __init__(self, sealed: SealedStream) -> None:
        self._seal = sealed.seal
        self._open = sealed.open
        self._decoder = wire.FrameDecoder(RECORD + 64)

    def seal(self, data: bytes | bytearray | memoryview, out: bytearray) -> None:
        seal = self._seal
        if len(data) <= RECORD:
            record = seal(data)
            out += _LENGTH.pack(len(record))
            out += record
            return
        view = memoryview(data)
        for start in range(0, len(view), RECORD):
            out += wire.encode_frame(seal(view[start : start + RECORD]))

    def open(self, data: bytes | bytearray, out: bytearray) -> bytes:
        decoder = self._decoder
        records = decoder.feed(data)
        if decoder.error is not None:
            raise trio.BrokenResourceError(f"sealed record: {decoder.error}")
        try:
            if len(records) == 1:  # the usual read: one whole record
                return self._open(records[0])
            return b"".join(map(self._open, records))
        except HandshakeError as exc:
            raise trio.BrokenResourceError(str(exc)) from None

    def end(self) -> None:
        if self._decoder.buffered:
            raise trio.BrokenResourceError("connection closed inside a sealed record")


class SecureStream(trio.abc.Stream):
    """A stream that seals what is sent and opens what is received (``records`` says how)."""

    def __init__(self, inner: trio.abc.Stream, records: Records, buffered: bytes = b"") -> None:
        self.inner = inner
        self.records = records
        self.unsent = bytearray()
        """Sealed bytes not sent yet (a non-blocking send may take only part of them)."""
        self.pending = records.open(buffered, self.unsent)
        """Plaintext opened and not read yet."""

    def seal(self, data: bytes | bytearray | memoryview) -> None:
        """Seal ``data`` into :attr:`unsent` (bytes the caller must send in order)."""
        if data:
            self.records.seal(data, self.unsent)

    def open(self, data: bytes | bytearray) -> bytes:
        """The plaintext the bytes ``data`` (read from the inner stream, not empty)
        complete, after any not read yet; b"" if none."""
        plain = self.records.open(data, self.unsent)
        if self.pending:
            plain, self.pending = self.pending + plain, b""
        return plain

    def end(self) -> None:
        """The inner stream ended: ``trio.BrokenResourceError`` if inside a record."""
        self.records.end()

    def take(self, max_bytes: int | None = None) -> bytes:
        """The plaintext opened and not read yet, up to ``max_bytes`` (b"" if none)."""
        chunk, self.pending = self.pending, b""
        if max_bytes is not None and len(chunk) > max_bytes:
            chunk, self.pending = chunk[:max_bytes], chunk[max_bytes:]
        return chunk

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Seal ``data`` and send it after whatever sealed bytes were not sent yet."""
        self.seal(data)
        out = bytes(self.unsent)
        self.unsent.clear()
        await self.inner.send_all(out)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while not self.pending:
            data = await self.inner.receive_some()
            if not data:
                self.records.end()
                return b""
            self.pending = self.open(data)
        return self.take(max_bytes)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()
