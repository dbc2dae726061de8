"""What the runtime reports about itself: dead letters and counters.

Nothing here grows without bound: the dead-letter log keeps the most recent entries, and a
subscriber that falls behind loses letters (counted in ``dropped``) rather than stalling
the actors that produce them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from ..membership.events import EventHub
from .ref import ActorRef

__all__ = ["ASK_BUCKETS", "DeadLetter", "DeadLetters", "Histogram", "Stats"]

ASK_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds (seconds) of the remote-ask latency histogram's buckets."""


@attrs.frozen
class DeadLetter:
    """A message that reached no actor: its recipient was stopped, or stopped first."""

    recipient: ActorRef
    message: Any
    sender: ActorRef | None


class Histogram:
    """Counts of observations per bucket (Prometheus' cumulative buckets are summed when
    rendered), their count and their sum; fixed memory."""

    __slots__ = ("bounds", "buckets", "total")

    def __init__(self, bounds: tuple[float, ...] = ASK_BUCKETS) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.total = 0.0

    @property
    def count(self) -> int:
        """How many values were observed (summed when read: one add less per ask)."""
        return sum(self.buckets)

    def observe(self, value: float) -> None:
        """Count ``value`` in its bucket."""
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.total += value


@attrs.define
class Stats:
    """Counters of the things that happen to messages besides being received."""

    late_replies: int = 0
    """Replies that arrived after their ask had timed out or been cancelled (dropped)."""
    failures: int = 0
    """Exceptions raised by actor code (``receive`` and the lifecycle hooks)."""
    restarts: int = 0
    """Actors rebuilt by a restart strategy (including all-for-one siblings)."""
    mailbox_drops: int = 0
    """Messages a full mailbox dropped or refused under its overflow policy."""
    remote_asks: Histogram = attrs.Factory(Histogram)
    """Seconds from sending an ask to another node until its reply, timeout or failure."""


class DeadLetters:
    """The dead-letter stream: a counter, a short log, and optional live subscribers."""

    def __init__(self, keep: int = 100, events: EventHub[object] | None = None) -> None:
        self.count = 0
        self.events = events
        """Where letters are also published as system events."""
        self.dropped = 0
        """Letters a full subscriber channel could not take."""
        self.recent: deque[DeadLetter] = deque(maxlen=keep)
        self._subscribers: list[trio.MemorySendChannel[DeadLetter]] = []

    def publish(self, recipient: ActorRef, message: Any, sender: ActorRef | None) -> None:
        """Record an undelivered message and hand it to the subscribers (never blocks)."""
        self.count += 1
        letter = DeadLetter(recipient, message, sender)
        self.recent.append(letter)
        if self.events is not None and self.events.active:
            self.events.publish(letter)
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
