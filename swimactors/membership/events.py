"""Fan-out of membership events to any number of subscribers, each with a bounded buffer.

Publishing never blocks and never fails: a subscriber that falls behind loses its oldest
events, and the next thing it reads is an :class:`EventsDropped` saying how many, so a slow
consumer can never stall the protocol loop or grow memory without bound.
"""

from __future__ import annotations

import collections
import weakref
from types import TracebackType

import attrs
import trio

from .types import MemberEvent

__all__ = ["DEFAULT_EVENT_BUFFER", "EventHub", "EventsDropped", "Subscription"]

DEFAULT_EVENT_BUFFER = 1024
"""Events a subscriber may have unread before the oldest are dropped."""


@attrs.frozen
class EventsDropped:
    """``count`` events were dropped here because this subscriber read too slowly."""

    count: int


class Subscription:
    """One subscriber's view of the event stream: ``async for event in subscription``.

    Iteration yields :class:`MemberEvent` values (and :class:`EventsDropped` where events
    were lost) and ends when the node closes or :meth:`close` is called.  Use it as a
    context manager (``with node.events() as events:``) to unsubscribe deterministically.
    """

    def __init__(self, hub: EventHub, buffer: int) -> None:
        if buffer < 1:
            raise ValueError(f"an event buffer must hold at least 1 event, got {buffer}")
        self._hub = hub
        self._queue: collections.deque[MemberEvent] = collections.deque(maxlen=buffer)
        self._pending_drop = 0
        self._wakeup = trio.Event()
        self._closed = False
        self.dropped = 0
        """Total events this subscriber lost by reading too slowly."""

    def _push(self, event: MemberEvent) -> None:
        if len(self._queue) == self._queue.maxlen:
            self._pending_drop += 1
            self.dropped += 1
        self._queue.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """Stop receiving events; a pending or later iteration step ends the loop."""
        if not self._closed:
            self._closed = True
            self._hub._discard(self)
            self._wakeup.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> MemberEvent | EventsDropped:
        while True:
            if self._pending_drop:
                dropped, self._pending_drop = self._pending_drop, 0
                return EventsDropped(dropped)
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise StopAsyncIteration
            await self._wakeup.wait()
            self._wakeup = trio.Event()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventHub:
    """Holds subscribers weakly (an abandoned subscription costs nothing) and fans out."""

    def __init__(self) -> None:
        self._subscribers: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._closed = False
        self.dropped = 0
        """Events lost across all subscribers (the node reports it in its counters)."""

    def subscribe(self, buffer: int = DEFAULT_EVENT_BUFFER) -> Subscription:
        subscription = Subscription(self, buffer)
        if self._closed:
            subscription.close()
        else:
            self._subscribers.add(subscription)
        return subscription

    def publish(self, event: MemberEvent) -> None:
        for subscription in list(self._subscribers):
            before = subscription.dropped
            subscription._push(event)
            self.dropped += subscription.dropped - before

    def close(self) -> None:
        """End every subscription (after it drains what it already holds)."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.close()

    def _discard(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
