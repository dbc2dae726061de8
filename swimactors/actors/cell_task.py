"""The part every task run for one actor shares: a timer, a stream read into it, a pipe.
Each runs inside its own cancel scope, which the actor's stop or restart cancels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .cell import ActorCell

__all__ = ["CellTask"]


class CellTask:
    """A task of one actor's, cancelled with it (or earlier by :meth:`cancel`)."""

    __slots__ = ("_cell", "_scope")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self._scope = trio.CancelScope()

    def cancel(self) -> None:
        """Stop it: nothing more is delivered (a message already queued stays queued)."""
        self._scope.cancel()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (or the actor stopped or restarted)."""
        return self._scope.cancel_called
