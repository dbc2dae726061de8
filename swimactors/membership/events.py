"""Fan-out of events (membership's, and a system's lifecycle events) to any number of
subscribers, each with a bounded buffer.

Publishing never blocks and never fails: a subscriber that falls behind loses its oldest
events, and the next thing it reads is an :class:`EventsDropped` saying how many, so a slow
consumer can never stall the protocol loop or grow memory without bound.
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

import attrs
import trio

__all__ = ["DEFAULT_EVENT_BUFFER", "EventBuffer", "EventHub", "EventsDropped", "Subscription"]

E = TypeVar("E")

DEFAULT_EVENT_BUFFER = 1024
"""Events a subscriber may have unread before the oldest are dropped."""


@attrs.frozen
class EventsDropped:
    """``count`` events were dropped here because this subscriber read too slowly."""

    count: int


class EventBuffer(Generic[E]):
    """One subscriber's bounded queue: when full the oldest event goes, and the next read
    is an :class:`EventsDropped` saying how many went (not thread-safe by itself)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"an event buffer must hold at least 1 event, got {size}")
        self._queue: collections.deque[E] = collections.deque(maxlen=size)
        self._pending_drop = 0
        self.dropped = 0
        """Total events lost by reading too slowly."""

    def push(self, event: E) -> None:
        """Queue ``event``; when full, the oldest goes and is counted as lost."""
        if len(self._queue) == self._queue.maxlen:
            self.lost(1)
        self._queue.append(event)

    def lost(self, count: int) -> None:
        """``count`` events were lost before they reached this buffer."""
        self._pending_drop += count
        self.dropped += count

    @property
    def empty(self) -> bool:
        """Whether there is nothing to read, not even a loss to report."""
        return not self._queue and not self._pending_drop

    def pop(self) -> E | EventsDropped | None:
        """The next thing to read, or None when there is none."""
        if self._pending_drop:
            dropped, self._pending_drop = self._pending_drop, 0
            return EventsDropped(dropped)
        return self._queue.popleft() if self._queue else None


class Subscription(Generic[E]):
    """One subscriber's view of the event stream: ``async for event in subscription``.

    Iteration yields events (:class:`MemberEvent` values from a node), and
    :class:`EventsDropped` where events were lost; it ends when the node closes or
    :meth:`close` is called.  Use it as a context manager (``with node.events() as
    events:``) to unsubscribe deterministically.
    """

    def __init__(self, hub: EventHub[E], buffer: int) -> None:
        self._hub = hub
        self._buffer: EventBuffer[E] = EventBuffer(buffer)
        self._wakeup = trio.Event()
        self._closed = False

    @property
    def dropped(self) -> int:
        """Total events this subscriber lost by reading too slowly."""
        return self._buffer.dropped

    def _push(self, event: E | EventsDropped) -> None:
        if isinstance(event, EventsDropped):  # lost upstream: reported as lost here
            self._buffer.lost(event.count)
        else:
            self._buffer.push(event)
        self._wakeup.set()

    def _lost(self, count: int) -> None:
        self._buffer.lost(count)
        self._wakeup.set()

    def close(self) -> None:
        """Stop receiving events; a pending or later iteration step ends the loop."""
        if not self._closed:
            self._closed = True
            self._hub._discard(self)
            self._wakeup.set()

    def __aiter__(self) -> Subscription[E]:
        return self

    async def __anext__(self) -> E | EventsDropped:
        while True:
            item = self._buffer.pop()
            if item is not None:
                return item
            if self._closed:
                raise StopAsyncIteration
            await self._wakeup.wait()
            self._wakeup = trio.Event()

    def __enter__(self) -> Subscription[E]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventHub(Generic[E]):
    """Holds subscribers weakly (an abandoned subscription costs nothing) and fans out."""

    def __init__(self) -> None:
        self._subscribers: weakref.WeakSet[Subscription[E]] = weakref.WeakSet()
        self._relays: list[Callable[[E], None]] = []
        self._closed = False
        self.dropped = 0
        """Events lost across all subscribers (the node reports it in its counters)."""

    def relay(self, deliver: Callable[[E], None]) -> None:
        """Hand every event to ``deliver`` too, as it is published: a subscription's reader
        is a task that runs later, so what it passes on to subscribers of its own (the
        membership thread's) could reach one that subscribed after the event."""
        self._relays.append(deliver)

    def subscribe(self, buffer: int = DEFAULT_EVENT_BUFFER) -> Subscription[E]:
        """A new subscription with its own ``buffer`` (ended at once if the hub is closed)."""
        subscription = Subscription(self, buffer)
        if self._closed:
            subscription.close()
        else:
            self._subscribers.add(subscription)
        return subscription

    @property
    def active(self) -> bool:
        """Whether anyone is subscribed (publishers skip building events otherwise)."""
        return bool(self._subscribers)

    def publish(self, event: E | EventsDropped) -> None:
        """Hand ``event`` to every subscription (never blocks; a full one drops its oldest)."""
        for subscription in list(self._subscribers):
            before = subscription.dropped
            subscription._push(event)
            self.dropped += subscription.dropped - before
        if not isinstance(event, EventsDropped):
            for deliver in self._relays:
                deliver(event)

    def lost(self, count: int) -> None:
        """``count`` events never reached this hub: every subscriber is told of the gap."""
        for subscription in list(self._subscribers):
            subscription._lost(count)
        self.dropped += count

    def close(self) -> None:
        """End every subscription (after it drains what it already holds)."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.close()

    def _discard(self, subscription: Subscription[E]) -> None:
        self._subscribers.discard(subscription)
