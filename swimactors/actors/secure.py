"""Actor connections under the cluster key: the handshake on a fresh stream, then a stream
whose every write is sealed (:mod:`swimactors.security.handshake` does the cryptography).

The actor protocol runs unchanged on top: :class:`SecureStream` carries its bytes as
sealed records (a 4-byte length, then AES-GCM of up to 64 KiB of them), opened strictly in
order; a record that fails to open breaks the connection.
"""

from __future__ import annotations

import struct

import trio

from .. import wire
from ..security import HandshakeError, Keyring, SealedStream, StreamHandshake

__all__ = ["SecureStream", "secure"]

RECORD = 64 * 1024
MAX_HELLO = 512
_LENGTH = struct.Struct(">I")


class SecureStream(trio.abc.Stream):
    """A stream that seals what is sent and opens what is received."""

    def __init__(self, inner: trio.abc.Stream, sealed: SealedStream, buffered: bytes) -> None:
        self.inner = inner
        self._sealed = sealed
        self._decoder = wire.FrameDecoder(RECORD + 64)
        self._pending: list[bytes] = []
        """Opened records not read yet, in order."""
        self.unsent = bytearray()
        """Sealed bytes not sent yet (a non-blocking send may take only part of them)."""
        self._feed(buffered)

    def _feed(self, data: bytes | bytearray) -> None:
        try:
            for record in self._decoder.feed(data):
                plain = self._sealed.open(record)
                if plain:  # an empty record is no data (and no end of stream)
                    self._pending.append(plain)
        except HandshakeError as exc:
            raise trio.BrokenResourceError(str(exc)) from None
        if self._decoder.error is not None:
            raise trio.BrokenResourceError(f"sealed record: {self._decoder.error}")

    def seal(self, data: bytes | bytearray | memoryview) -> None:
        """Seal ``data`` into :attr:`unsent` (records the caller must send in order):
        one record for up to :data:`RECORD` bytes, so a write batch is one record."""
        unsent, seal = self.unsent, self._sealed.seal
        if not data:
            return
        if len(data) <= RECORD:
            record = seal(data)
            unsent += _LENGTH.pack(len(record))
            unsent += record
            return
        view = memoryview(data)
        for start in range(0, len(view), RECORD):
            unsent += wire.encode_frame(seal(view[start : start + RECORD]))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Seal ``data`` and send it after whatever sealed bytes were not sent yet."""
        self.seal(data)
        out = bytes(self.unsent)
        self.unsent.clear()
        await self.inner.send_all(out)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while not self._pending:
            if not self.open(await self.inner.receive_some()):
                return b""
        return self.take(max_bytes)

    def open(self, data: bytes | bytearray) -> bool:
        """Open the records ``data`` (read from the inner stream) completes; False at the
        end of the stream (``data`` empty: BrokenResourceError inside a record)."""
        if data:
            self._feed(data)
            return True
        if self._decoder.buffered:
            raise trio.BrokenResourceError("connection closed inside a sealed record")
        return False

    def take(self, max_bytes: int | None = None) -> bytes:
        """The plaintext opened and not read yet, up to ``max_bytes`` (b"" if none)."""
        pending = self._pending
        chunk = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        if max_bytes is not None and len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            pending.append(rest)
        return chunk

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def secure(
    stream: trio.abc.Stream, keyring: Keyring, label: str, name: str, *, initiator: bool
) -> tuple[SecureStream, str]:
    """Run the key handshake on ``stream``: the sealed stream and the peer's authentic
    node name; :class:`HandshakeError` if the peer does not prove the key (the caller
    bounds the time it may take)."""
    handshake = StreamHandshake(keyring, label, name, initiator=initiator)
    await stream.send_all(wire.encode_frame(handshake.hello()))
    buffer = bytearray()

    async def next_frame() -> bytes:
        while True:
            if len(buffer) >= 4:
                length = int.from_bytes(buffer[:4], "big")
                if length > MAX_HELLO:
                    raise HandshakeError("not a handshake (plaintext peer or another protocol)")
                if len(buffer) >= 4 + length:
                    frame = bytes(buffer[4 : 4 + length])
                    del buffer[: 4 + length]
                    return frame
            data = await stream.receive_some()
            if not data:
                raise HandshakeError("the peer closed the connection during the handshake")
            buffer.extend(data)

    proof = handshake.on_hello(await next_frame())
    await stream.send_all(wire.encode_frame(proof))
    sealed = handshake.on_proof(await next_frame())
    assert handshake.peer_name is not None
    return SecureStream(stream, sealed, bytes(buffer)), handshake.peer_name
