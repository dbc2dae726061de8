"""The TLS handshake on a trio stream, and the node names the peer's certificate proves."""

from __future__ import annotations

import ssl

import trio

from .tls import certificate_names

__all__ = ["open_tls"]


async def open_tls(
    stream: trio.abc.Stream, context: ssl.SSLContext, *, server_side: bool
) -> tuple[trio.SSLStream[trio.abc.Stream], frozenset[str]]:
    """Run the TLS handshake on ``stream``: the TLS stream and the node names of the
    peer's verified certificate; ``trio.BrokenResourceError`` if the peer has no valid
    certificate or does not speak TLS (the caller bounds the time it may take)."""
    tls = trio.SSLStream(stream, context, server_side=server_side)
    await tls.do_handshake()
    return tls, certificate_names(tls.getpeercert())
