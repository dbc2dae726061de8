"""The Actor base class: subclass it and write ``receive``."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import Context

__all__ = ["Actor"]


class Actor:
    """One actor's behaviour and state; the runtime runs one message at a time through it.

    ``receive``'s return value answers an ``ask`` (and is ignored for a ``tell``).  The
    hooks run in the actor's own task: ``on_start`` before the first message, ``on_stop``
    after the last one (children are stopped by then), ``on_restart(error)`` on the fresh
    instance a restart builds, in place of ``on_start`` (by default it calls ``on_start``).
    An exception from ``receive``, ``on_start`` or ``on_restart`` is a failure handled by
    the supervision strategy; one from ``on_stop`` is logged and counted.
    """

    __slots__ = ("__dict__", "_context")
    _context: Context

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a plain ``def`` hook where it is written: the runtime awaits them."""
        super().__init_subclass__(**kwargs)
        for hook in ("on_start", "on_stop", "on_restart"):
            method = cls.__dict__.get(hook)
            if method is not None and not inspect.iscoroutinefunction(method):
                raise TypeError(f"{cls.__qualname__}.{hook} must be `async def` (it is awaited)")

    @property
    def context(self) -> Context:
        """This actor's context, for the hooks (``receive`` gets it as an argument)."""
        try:
            return self._context
        except AttributeError:
            raise RuntimeError(f"{type(self).__qualname__} has not been spawned") from None

    def receive(self, msg: Any, ctx: Context) -> Any:
        """Handle one message; ``async def`` normally, or a plain ``def`` if it never
        waits (then an ask to the idle actor runs it in the asker's task, no task switch)."""
        raise NotImplementedError(f"{type(self).__qualname__} must define receive")

    async def on_start(self) -> None:
        """Called once before the first message."""

    async def on_stop(self) -> None:
        """Called once after the last message; the actor's children have stopped."""

    async def on_restart(self, error: BaseException) -> None:
        """Called on the new instance after a failure; defaults to ``on_start``."""
        await self.on_start()
