"""Ask timeouts without a cancel scope per ask.

A trio cancel scope costs about as much as a trip through the scheduler, which would
double the price of an ask.  Instead every pending ask puts its deadline on one heap, and a
single task per system sleeps until the earliest one and expires what is due.  Answered
asks are left on the heap and swept out when it grows past twice its size after the last
sweep, so it stays proportional to the asks actually pending; the task sleeps until the
earliest ask still pending (it drops the answered ones before it), so it does not wake
once per answered ask when their deadlines come.

Most asks are made one at a time (the asker waits for each answer before the next): an
ask made while the one before it is no longer pending takes that one's place in a slot of
its own, beside the heap, with no heap operation; the heap holds only the asks made while
another one was pending.  Slot and heap entries are ordered alike (deadline, then the order
in which the asks were made), so due asks time out in the same order either way.
"""

from __future__ import annotations

import heapq
import math
from itertools import count

import trio

from .reply import Reply

__all__ = ["AskDeadlines"]

_MIN_SWEEP = 1024

_Entry = tuple[float, int, Reply]


class AskDeadlines:
    """The heap of ask deadlines, the slot of the ask made alone, and the task that
    enforces them."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._seq = count()
        self._sweep_at = _MIN_SWEEP
        self._scope = trio.CancelScope()
        self._wake_at = math.inf
        """The scope's deadline, kept here: reading ``CancelScope.deadline`` costs a call."""
        self._alone: _Entry | None = None
        """The last ask made while no ask in this slot was pending (None: none yet, or its
        deadline came)."""

    def add(self, deadline: float, reply: Reply) -> None:
        """Fail ``reply`` with AskTimeout at ``deadline`` unless it is answered first."""
        alone = self._alone
        if alone is None or alone[2].result is not None or alone[2].abandoned:
            self._alone = (deadline, next(self._seq), reply)  # (no longer pending: replaced)
        else:
            heap = self._heap
            if len(heap) >= self._sweep_at:
                heap[:] = [entry for entry in heap if entry[2].result is None]
                heapq.heapify(heap)
                self._sweep_at = max(_MIN_SWEEP, 2 * len(heap))
            heapq.heappush(heap, (deadline, next(self._seq), reply))
        if deadline < self._wake_at:
            self._scope.deadline = self._wake_at = deadline

    def __len__(self) -> int:
        return len(self._heap) + (self._alone is not None)

    async def run(self) -> None:
        """Expire due asks forever (until the system's nursery is cancelled)."""
        heap = self._heap
        while True:
            while heap and not heap[0][2].pending:  # answered: no wake-up for it
                heapq.heappop(heap)
            alone = self._alone
            if alone is not None and not alone[2].pending:
                self._alone = alone = None
            wake_at = heap[0][0] if heap else math.inf
            if alone is not None and alone[0] < wake_at:
                wake_at = alone[0]
            self._wake_at = wake_at
            self._scope = trio.CancelScope(deadline=wake_at)
            with self._scope:
                await trio.sleep_forever()
            now = trio.current_time()
            alone = self._alone
            if alone is not None and alone[0] <= now:  # due: in order with the heap's
                self._alone = None
                heapq.heappush(heap, alone)
            while heap and heap[0][0] <= now:
                heapq.heappop(heap)[2].expire()
