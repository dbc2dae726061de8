"""Mailbox policies: how many messages an actor may have queued, what a full mailbox does
with one more, and in what order queued messages are handled.

A policy is a :class:`Mailbox` value given to ``spawn(..., mailbox_size=Mailbox(...))``
(a plain int is ``Mailbox(size=n)``).  Overflow policies (Akka's bounded mailboxes):

- ``"backpressure"``: the sender waits for room (``tell_nowait`` raises :class:`MailboxFull`);
- ``"drop-newest"``: the message that does not fit is dropped;
- ``"drop-oldest"``: the message that would be handled first is dropped to make room
  (with a priority mailbox: the one that would be handled last);
- ``"fail"``: the sender gets :class:`MailboxFull` at once.

A dropped message is counted (``Stats.mailbox_drops``), published as a dead letter, and an
ask it carried fails with :class:`MailboxFull`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from itertools import count
from typing import Any, Literal, get_args

import attrs

__all__ = ["OVERFLOWS", "Mailbox", "Overflow", "PriorityQueue", "Queue", "as_mailbox", "evict"]

Overflow = Literal["backpressure", "drop-newest", "drop-oldest", "fail"]
OVERFLOWS: tuple[str, ...] = get_args(Overflow)


def _check_size(instance: Mailbox, attribute: Any, size: int) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"mailbox_size must be at least 1, not {size!r}")


def _check_overflow(instance: Mailbox, attribute: Any, overflow: str) -> None:
    if overflow not in OVERFLOWS:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOWS)}, not {overflow!r}")


@attrs.frozen
class Mailbox:
    """A mailbox policy: ``size`` messages at most, ``overflow`` when full, and with
    ``priority`` (a key function on messages) the lowest key first, FIFO among equals."""

    size: int = attrs.field(validator=_check_size)
    overflow: Overflow = attrs.field(default="backpressure", validator=_check_overflow)
    priority: Callable[[Any], Any] | None = None

    def new_queue(self) -> Queue:
        """An empty queue for one mailbox: FIFO, or ordered by ``priority``."""
        return deque() if self.priority is None else PriorityQueue(self.priority)


def as_mailbox(spec: int | Mailbox) -> Mailbox:
    """The policy a ``mailbox_size`` argument stands for (ValueError when invalid)."""
    return spec if isinstance(spec, Mailbox) else Mailbox(spec)


class PriorityQueue:
    """Envelopes ordered by ``key(message)``, then by arrival: the deque operations the
    cell uses (``append``, ``popleft`` the most urgent, ``pop`` the least urgent).

    A key function that raises puts its message after every keyed one (still FIFO), so
    a bad message cannot stop delivery to the actor."""

    __slots__ = ("_heap", "_key", "_seq")

    def __init__(self, key: Callable[[Any], Any]) -> None:
        self._heap: list[tuple[int, Any, int, Any]] = []
        self._key = key
        self._seq = count()

    def append(self, envelope: Any) -> None:
        try:
            entry = (0, self._key(envelope[0]), next(self._seq), envelope)
        except Exception:
            entry = (1, None, next(self._seq), envelope)
        heapq.heappush(self._heap, entry)

    def popleft(self) -> Any:
        return heapq.heappop(self._heap)[3]

    def pop(self) -> Any:
        heap = self._heap
        last = max(range(len(heap)), key=heap.__getitem__)
        heap[last], heap[-1] = heap[-1], heap[last]
        entry = heap.pop()
        heapq.heapify(heap)
        return entry[3]

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)


Queue = deque[Any] | PriorityQueue


def evict(queue: Queue) -> Any:
    """Take out the message drop-oldest drops: the oldest, or the least urgent."""
    return queue.pop() if isinstance(queue, PriorityQueue) else queue.popleft()
