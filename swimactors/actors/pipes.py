"""Pipes: an awaitable run beside an actor whose result becomes a message (Akka's and
GoAkt's ``pipeTo``).

``ctx.pipe_to(work, to=None)`` lets an actor start slow work (an HTTP call, a query, an
ask of another actor) without blocking its mailbox: a :class:`Pipe` task awaits ``work``
and tells its value to ``to`` (default: the actor itself).  When ``work`` raises, or its
value cannot be told to ``to``, the actor itself gets :class:`PipeFailed` instead, with the
error: the failure stays with the actor that owns the work, never lost.  A pipe is
cancelled, nothing delivered, when its actor stops or restarts, as ``add_stream`` is.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import attrs

from .cell_task import CellTask
from .ref import ActorRef

if TYPE_CHECKING:
    pass

__all__ = ["Pipe", "PipeFailed"]


@attrs.frozen(eq=False)
class PipeFailed:
    """Delivered to the actor that started ``pipe`` when its work raised ``error``, or its
    value could not be told to ``to`` (raise ``error`` in ``receive`` to hand it to
    supervision)."""

    pipe: Pipe
    error: Exception
    to: ActorRef | None = None


class Pipe(CellTask):
    """One awaitable being run for an actor (``ctx.pipe_to``)."""

    __slots__ = ()

    async def run(self, work: Awaitable[Any], to: ActorRef | None) -> None:
        """Await ``work``, then tell its value to ``to`` (the actor when None); the actor
        gets :class:`PipeFailed` when either step raised."""
        cell = self._cell
        try:
            if self._scope.cancel_called:  # the actor stopped before this task ran
                if inspect.iscoroutine(work):
                    work.close()
                return
            with self._scope:
                try:
                    value = await work
                    if to is None:
                        await cell.feed(value)
                    else:
                        await to.tell(value)
                except Exception as exc:
                    await cell.feed(PipeFailed(self, exc, to))
        finally:
            cell.forget_stream(self)
