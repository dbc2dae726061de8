"""A one-shot reply slot for ``ask``: the asker parks on it (or is called back), the actor
fills it once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import outcome
import trio
from trio.lowlevel import current_task, reschedule, wait_task_rescheduled

from .errors import ActorError, AskTimeout
from .observe import Stats

__all__ = ["Notify", "Reply"]

Notify = Callable[[outcome.Outcome[Any]], None]
"""Called with an ask's outcome on the actors' loop, for an asker that is not a trio task
(:meth:`~swimactors.ActorRef.start_ask`)."""


class Reply:
    """Wakes the parked asker (or calls ``notify``) with the outcome; counts a reply that
    comes too late."""

    __slots__ = ("_stats", "abandoned", "notify", "recipient", "result", "task")

    def __init__(self, stats: Stats, recipient: object, notify: Notify | None = None) -> None:
        self._stats = stats
        self.recipient = recipient
        self.notify = notify
        self.task: trio.lowlevel.Task | None = None
        self.result: outcome.Outcome[Any] | None = None
        self.abandoned = False

    @property
    def pending(self) -> bool:
        """Whether an answer can still be taken (none yet, and the asker still waits)."""
        return self.result is None and not self.abandoned

    def set(self, result: outcome.Outcome[Any]) -> None:
        """Answer the ask once: wake the asker or call ``notify``; an answer after the asker gave
        up is counted as late."""
        if self.abandoned:
            self._stats.late_replies += 1
        elif self.result is None:
            self.result = result
            if self.task is not None:
                reschedule(self.task, result)
                self.task = None
            elif self.notify is not None:
                self.notify(result)

    def answer(self, value: Any) -> None:
        """``set`` with the receive's return value (a reply to another node sends it
        without making the outcome)."""
        self.set(outcome.Value(value))

    def expire(self) -> None:
        """The deadline passed: the asker gets :class:`AskTimeout`; a later reply is late."""
        self._abandon(AskTimeout(f"no reply from {self.recipient} in time"))

    def cancel(self) -> None:
        """The asker gave up (a cancelled asyncio task): a later reply is late."""
        self._abandon(ActorError(f"the ask of {self.recipient} was cancelled"))

    def _abandon(self, error: ActorError) -> None:
        if self.pending:
            self.abandoned = True
            if self.task is not None:
                reschedule(self.task, outcome.Error(error))
                self.task = None
            elif self.notify is not None:
                self.notify(outcome.Error(error))

    def wait(self) -> Awaitable[Any]:
        """The receive's return value, or its error; parks until ``set`` unless already set.
        A plain function handing back trio's own wait: no coroutine of ours per ask."""
        if self.result is None:
            self.task = current_task()
            return wait_task_rescheduled(self._abort)
        return _unwrap(self.result)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self.task = None
        self.abandoned = True
        return trio.lowlevel.Abort.SUCCEEDED


async def _unwrap(result: outcome.Outcome[Any]) -> Any:
    return result.unwrap()
