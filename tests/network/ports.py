"""A loopback port held for a node that starts later: picking a free port and binding it
later let another process (other tests, other users) take it in between."""

from __future__ import annotations

import socket
from types import TracebackType


class ReservedPort:
    """Holds ``127.0.0.1:port`` for UDP and TCP (bound, not listening: connections are
    refused, as with nothing there) until :meth:`release`, called right before the bind."""

    def __init__(self) -> None:
        while True:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            self.port: int = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", self.port))
            except OSError:  # taken for TCP only: try another
                udp.close()
                tcp.close()
                continue
            self._sockets = [udp, tcp]
            return

    def release(self) -> None:
        for held in self._sockets:
            held.close()

    def __enter__(self) -> ReservedPort:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
