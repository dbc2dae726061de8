"""Readiness for the lean membership thread: sockets mapped to handlers, and one wait for
whichever are ready (``epoll`` where the system has it, else ``poll``).

The stdlib ``selectors`` module does the same with a key object per socket and a Python
loop over every ready event to rebuild them; the lean loop waits about fifteen times a
second at a 0.2 s probe interval, and each wait is paid with cold caches.
"""

from __future__ import annotations

import math
import select
import socket
from collections.abc import Callable

__all__ = ["READ", "WRITE", "Handler", "Poller", "available"]

READ, WRITE = select.POLLIN, select.POLLOUT

Handler = Callable[[int], None]
"""Called with the ready events (``READ``, ``WRITE``, or an error or hang-up bit)."""


def available() -> bool:
    """Whether this platform has a poller (not Windows)."""
    return hasattr(select, "epoll") or hasattr(select, "poll")


class Poller:
    """Sockets, what each waits for, and its handler; :meth:`wait` returns the ready ones."""

    def __init__(self) -> None:
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._poll = self._epoll if self._epoll is not None else select.poll()
        self.handlers: dict[int, Handler] = {}
        """By file descriptor (a handler may close another socket during a batch: look
        each one up as its turn comes)."""
        self.wait: Callable[[float], list[tuple[int, int]]] = (
            self._epoll.poll if self._epoll is not None else self._poll_wait
        )
        """``(fd, events)`` of the sockets ready within ``timeout`` seconds (negative: no
        limit); ``epoll``'s own method, no Python call in between."""

    def register(self, sock: socket.socket | int, events: int, handler: Handler) -> None:
        """Watch ``sock`` (a socket or a file descriptor) for ``events``."""
        fd = _fd(sock)
        self._poll.register(fd, events)
        self.handlers[fd] = handler

    def modify(self, sock: socket.socket | int, events: int) -> None:
        """Wait for ``events`` on ``sock`` from now on."""
        self._poll.modify(_fd(sock), events)

    def unregister(self, sock: socket.socket | int) -> None:
        """Stop watching ``sock``."""
        fd = _fd(sock)
        self._poll.unregister(fd)
        del self.handlers[fd]

    def _poll_wait(self, timeout: float) -> list[tuple[int, int]]:
        return self._poll.poll(math.ceil(timeout * 1000) if timeout >= 0 else -1)

    def close(self) -> None:
        """Release the epoll object and forget every handler."""
        if self._epoll is not None:
            self._epoll.close()
        self.handlers.clear()


def _fd(sock: socket.socket | int) -> int:
    return sock if isinstance(sock, int) else sock.fileno()
