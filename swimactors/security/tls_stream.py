"""TLS on a trio stream as sealed records (stdlib ``ssl.SSLObject`` over memory BIOs), and
the node names the peer's certificate proves.

The handshake runs over the stream; after it, :class:`TlsRecords` is the
:class:`~.records.Records` codec of a :class:`~.records.SecureStream`: writes become TLS
records in the stream's ``unsent`` bytes, so a caller sends them with its own
non-blocking ``send`` as it does keyed records (``trio.SSLStream`` cannot).
"""

from __future__ import annotations

import contextlib
import ssl

import trio

from .records import RECORD, RecordRejected, SecureStream
from .tls import certificate_names

__all__ = ["TlsRecords", "open_tls"]


class TlsRecords:
    """TLS records of one established connection (sans-IO)."""

    def __init__(self, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO):
        self._tls = tls
        self._incoming = incoming
        self._outgoing = outgoing
        self._partial = False
        """The last read stopped inside a record."""

    def seal(self, data: bytes | bytearray | memoryview, out: bytearray) -> None:
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:
            raise trio.BrokenResourceError(f"TLS: {exc}") from exc
        out += self._outgoing.read()

    def open(self, data: bytes | bytearray, out: bytearray) -> bytes:
        tls, incoming = self._tls, self._incoming
        incoming.write(data)
        chunks = []
        self._partial = False
        try:
            while incoming.pending or tls.pending():  # whole records: no failed read
                chunk = tls.read(RECORD)
                if not chunk:
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            self._partial = True
        except ssl.SSLZeroReturnError:
            pass  # the peer's close_notify: its FIN follows
        except ssl.SSLError as exc:
            raise RecordRejected(f"TLS: {exc}") from exc
        finally:
            if self._outgoing.pending:  # what TLS answers (an alert, a key update)
                out += self._outgoing.read()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def end(self) -> None:
        if self._incoming.pending or self._partial:
            raise trio.BrokenResourceError("connection closed inside a TLS record")


async def open_tls(
    stream: trio.abc.Stream, context: ssl.SSLContext, *, server_side: bool
) -> tuple[SecureStream, frozenset[str]]:
    """Run the TLS handshake on ``stream``: the TLS stream and the node names of the
    peer's verified certificate; ``trio.BrokenResourceError`` if the peer has no valid
    certificate or does not speak TLS (the caller bounds the time it may take)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=server_side)
    while True:
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        except ssl.SSLError as exc:
            if outgoing.pending:  # tell the peer why (an alert), if it still listens
                alert = outgoing.read()
                with trio.move_on_after(1), contextlib.suppress(OSError, trio.BrokenResourceError):
                    await stream.send_all(alert)
            raise trio.BrokenResourceError(f"TLS handshake: {exc}") from exc
        if outgoing.pending:
            await stream.send_all(outgoing.read())
        if done:
            break
        data = await stream.receive_some()
        if not data:
            raise trio.BrokenResourceError("the peer closed the connection in the TLS handshake")
        incoming.write(data)
    names = certificate_names(tls.getpeercert())
    return SecureStream(stream, TlsRecords(tls, incoming, outgoing)), names
