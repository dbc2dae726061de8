"""What the runtime reports about itself: dead letters and counters.

Nothing here grows without bound: the dead-letter log keeps the most recent entries, and a
subscriber that falls behind loses letters (counted in ``dropped``) rather than stalling
the actors that produce them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from .ref import ActorRef

__all__ = ["DeadLetter", "DeadLetters", "Stats"]


@attrs.frozen
class DeadLetter:
    """A message that reached no actor: its recipient was stopped, or stopped first."""

    recipient: ActorRef
    message: Any
    sender: ActorRef | None


@attrs.define
class Stats:
    """Counters of the things that happen to messages besides being received."""

    late_replies: int = 0
    """Replies that arrived after their ask had timed out or been cancelled (dropped)."""
    failures: int = 0
    """Exceptions raised by actor code (``receive`` and the lifecycle hooks)."""
    restarts: int = 0
    """Actors rebuilt by a restart strategy (including all-for-one siblings)."""


class DeadLetters:
    """The dead-letter stream: a counter, a short log, and optional live subscribers."""

    def __init__(self, keep: int = 100) -> None:
        self.count = 0
        self.dropped = 0
        """Letters a full subscriber channel could not take."""
        self.recent: deque[DeadLetter] = deque(maxlen=keep)
        self._subscribers: list[trio.MemorySendChannel[DeadLetter]] = []

    def publish(self, recipient: ActorRef, message: Any, sender: ActorRef | None) -> None:
        self.count += 1
        letter = DeadLetter(recipient, message, sender)
        self.recent.append(letter)
        for channel in self._subscribers:
            try:
                channel.send_nowait(letter)
            except (trio.WouldBlock, trio.BrokenResourceError):  # behind, or stopped reading
                self.dropped += 1

    @contextmanager
    def subscribe(self, buffer: int = 1000) -> Iterator[trio.MemoryReceiveChannel[DeadLetter]]:
        """Receive every dead letter published while the block is open."""
        send, receive = trio.open_memory_channel[DeadLetter](buffer)
        self._subscribers.append(send)
        try:
            yield receive
        finally:
            self._subscribers.remove(send)
            send.close()
