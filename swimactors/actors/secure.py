"""Actor connections under the cluster key: the handshake on a fresh stream, then a stream
whose every write is sealed (:mod:`swimactors.security.handshake` does the cryptography:
the handshake and the records).

The actor protocol runs unchanged on top: the stream carries its bytes as sealed records
(a 4-byte length, then AES-GCM of up to 64 KiB of them), opened strictly in order; a
record that fails to open breaks the connection.
"""

from __future__ import annotations

import trio

from .. import wire
from ..security import HandshakeError, Keyring, StreamHandshake
from ..security.records import SecureStream

__all__ = ["secure"]

MAX_HELLO = 512


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
