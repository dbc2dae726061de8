"""Asks and tells for a caller on another thread (the asyncio and blocking fronts): each
is begun on the actors' loop by :meth:`~swimactors.loop_thread.LoopThread.begin`, without
a task when it can start at once, and settles its ``done`` there once."""

from __future__ import annotations

from typing import Any

import outcome

from ..loop_thread import Begin, Cancel, Done, LoopThread
from .ref import READY, ActorRef

__all__ = ["ForeignRef", "begin_ask", "begin_tell"]

_DELIVERED: outcome.Outcome[None] = outcome.Value(None)


class ForeignRef:
    """What the asyncio and blocking fronts' refs share: the trio ref they stand for (put
    :attr:`ref` in messages), its node and path; equal when they name the same actor."""

    __slots__ = ("ref",)

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref

    @property
    def node(self) -> str:
        return self.ref.node

    @property
    def path(self) -> str:
        return self.ref.path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(self.ref)

    def __repr__(self) -> str:
        return repr(self.ref)


def begin_ask(
    thread: LoopThread[Any], ref: ActorRef, msg: Any, timeout: float | None
) -> Begin[Any, Any]:
    """``ref.ask(msg, timeout)``: started from the reply slot, or by a task when only a
    task can ask; cancelling it gives the ask up (a late reply is dropped and counted)."""

    def begin(_: object, done: Done[Any]) -> Cancel:
        reply = ref.start_ask(msg, timeout, done)
        if reply is not None:
            return reply.cancel
        return thread.spawn(lambda: ref.ask(msg, timeout), done)

    return begin


def begin_tell(thread: LoopThread[Any], ref: ActorRef, msg: Any) -> Begin[Any, None]:
    """``ref.tell(msg)``: settled at once when the mailbox had room, else by a task that
    waits for it."""

    def begin(_: object, done: Done[None]) -> Cancel | None:
        delivery = ref.tell(msg)
        if delivery is READY:
            done(_DELIVERED)
            return None
        return thread.spawn(lambda: delivery, done)

    return begin
