"""A one-shot reply slot for ``ask``: the asker parks on it, the actor fills it once."""

from __future__ import annotations

from typing import Any

import outcome
import trio

from .errors import AskTimeout
from .observe import Stats

__all__ = ["Reply"]


class Reply:
    """Wakes the parked asker with the outcome; counts a reply that comes too late."""

    __slots__ = ("_stats", "abandoned", "recipient", "result", "task")

    def __init__(self, stats: Stats, recipient: object) -> None:
        self._stats = stats
        self.recipient = recipient
        self.task: trio.lowlevel.Task | None = None
        self.result: outcome.Outcome[Any] | None = None
        self.abandoned = False

    @property
    def pending(self) -> bool:
        return self.result is None and not self.abandoned

    def set(self, result: outcome.Outcome[Any]) -> None:
        if self.abandoned:
            self._stats.late_replies += 1
        elif self.result is None:
            self.result = result
            if self.task is not None:
                trio.lowlevel.reschedule(self.task, result)
                self.task = None

    def expire(self) -> None:
        """The deadline passed: the asker gets :class:`AskTimeout`; a later reply is late."""
        if self.pending:
            self.abandoned = True
            if self.task is not None:
                error = AskTimeout(f"no reply from {self.recipient} in time")
                trio.lowlevel.reschedule(self.task, outcome.Error(error))
                self.task = None

    async def wait(self) -> Any:
        """The receive's return value, or its error; parks until ``set`` unless already set."""
        if self.result is None:
            self.task = trio.lowlevel.current_task()
            return await trio.lowlevel.wait_task_rescheduled(self._abort)
        return self.result.unwrap()

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self.task = None
        self.abandoned = True
        return trio.lowlevel.Abort.SUCCEEDED
