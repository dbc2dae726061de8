"""Ask timeouts without a cancel scope per ask.

A trio cancel scope costs about as much as a trip through the scheduler, which would
double the price of an ask.  Instead every pending ask puts its deadline on one heap, and a
single task per system sleeps until the earliest one and expires what is due.  Answered
asks are left on the heap and swept out when it grows past twice its size after the last
sweep, so it stays proportional to the asks actually pending; the task sleeps until the
earliest ask still pending (it drops the answered ones before it), so it does not wake
once per answered ask when their deadlines come.
"""

from __future__ import annotations

import heapq
import math
from itertools import count

import trio

from .reply import Reply

__all__ = ["AskDeadlines"]

_MIN_SWEEP = 1024


class AskDeadlines:
    """The heap of ask deadlines and the task that enforces them."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Reply]] = []
        self._seq = count()
        self._sweep_at = _MIN_SWEEP
        self._scope = trio.CancelScope()
        self._wake_at = math.inf
        """The scope's deadline, kept here: reading ``CancelScope.deadline`` costs a call."""

    def add(self, deadline: float, reply: Reply) -> None:
        """Fail ``reply`` with AskTimeout at ``deadline`` unless it is answered first."""
        heap = self._heap
        if len(heap) >= self._sweep_at:
            heap[:] = [entry for entry in heap if entry[2].result is None]
            heapq.heapify(heap)
            self._sweep_at = max(_MIN_SWEEP, 2 * len(heap))
        heapq.heappush(heap, (deadline, next(self._seq), reply))
        if deadline < self._wake_at:
            self._scope.deadline = self._wake_at = deadline

    def __len__(self) -> int:
        return len(self._heap)

    async def run(self) -> None:
        """Expire due asks forever (until the system's nursery is cancelled)."""
        heap = self._heap
        while True:
            while heap and not heap[0][2].pending:  # answered: no wake-up for it
                heapq.heappop(heap)
            self._wake_at = heap[0][0] if heap else math.inf
            self._scope = trio.CancelScope(deadline=self._wake_at)
            with self._scope:
                await trio.sleep_forever()
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                heapq.heappop(heap)[2].expire()
