"""A trio stream carried as sealed records: what is sent is sealed into :attr:`SecureStream.unsent`
(the caller may send those bytes with its own non-blocking ``send``), what is received is
opened strictly in order; a record that fails to open breaks the stream.

How bytes become records is the :class:`Records` codec's: the key handshake's AES-GCM
records (:class:`~.handshake.SealedStream`, 4-byte length first) or TLS's
(:mod:`.tls_stream`).
"""

from __future__ import annotations

from typing import Protocol

import trio

from .handshake import RECORD, HandshakeError

__all__ = ["RECORD", "RecordRejected", "Records", "SecureStream"]


class RecordRejected(trio.BrokenResourceError):
    """A received record did not open (altered, replayed, reordered, or sealed under
    another key or label): the stream is broken, and its owner counts it."""


class Records(Protocol):
    """Seals bytes into records and opens records, in order (sans-IO)."""

    def seal(self, data: bytes | bytearray | memoryview, out: bytearray) -> None:
        """Append the records carrying ``data`` to ``out``."""

    def open(self, data: bytes | bytearray, out: bytearray) -> bytes:
        """The plaintext of the records ``data`` completes (b"" if none); bytes the
        protocol must answer with go to ``out``; :class:`RecordRejected` or
        :class:`~.handshake.HandshakeError` if a record fails to open."""

    def end(self) -> None:
        """The peer closed: ``trio.BrokenResourceError`` or
        :class:`~.handshake.HandshakeError` if that cut a record."""


class SecureStream(trio.abc.Stream):
    """A stream that seals what is sent and opens what is received (``records`` says how)."""

    def __init__(self, inner: trio.abc.Stream, records: Records, buffered: bytes = b"") -> None:
        self.inner = inner
        self.records = records
        self.unsent = bytearray()
        """Sealed bytes not sent yet (a non-blocking send may take only part of them)."""
        self.pending = b""
        """Plaintext opened and not read yet."""
        self.pending = self.open(buffered)

    def seal(self, data: bytes | bytearray | memoryview) -> None:
        """Seal ``data`` into :attr:`unsent` (bytes the caller must send in order)."""
        if data:
            self.records.seal(data, self.unsent)

    def open(self, data: bytes | bytearray) -> bytes:
        """The plaintext the bytes ``data`` (read from the inner stream, not empty)
        complete, after any not read yet; b"" if none."""
        try:
            plain = self.records.open(data, self.unsent)
        except HandshakeError as exc:
            raise RecordRejected(str(exc)) from None
        if self.pending:
            plain, self.pending = self.pending + plain, b""
        return plain

    def end(self) -> None:
        """The inner stream ended: ``trio.BrokenResourceError`` if inside a record."""
        try:
            self.records.end()
        except HandshakeError as exc:
            raise trio.BrokenResourceError(str(exc)) from None

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
                self.end()
                return b""
            self.pending = self.open(data)
        return self.take(max_bytes)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()
