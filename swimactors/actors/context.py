"""Context: what an actor can do besides handling its message."""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from .cell_task import CellTask
from .mailbox import Mailbox
from .message import ReceiveTimeout
from .pipes import Pipe
from .ref import ActorRef
from .streams import StreamFeed
from .supervision import Strategy

if TYPE_CHECKING:
    from .cell import ActorCell
    from .runtime import ActorSource, LocalSystem

__all__ = ["Context", "IdleTimer", "Timer"]


class Timer(CellTask):
    """A scheduled delivery of a message to the actor itself; cancelled with the actor."""

    __slots__ = ()

    def cancel(self) -> None:
        """Stop future deliveries (a message already queued stays queued)."""
        super().cancel()
        self._forget()

    def _forget(self) -> None:
        if self._cell.timers is not None:
            self._cell.timers.discard(self)

    async def run(self, delay: float, msg: Any, interval: float | None) -> None:
        """Deliver after ``delay``, then every ``interval`` (fixed rate, missed ticks skipped)."""
        ref = self._cell.ref
        with self._scope:
            deadline = trio.current_time() + delay
            while True:
                await trio.sleep_until(deadline)
                await ref.tell(msg)
                if interval is None:
                    break
                deadline += interval
                now = trio.current_time()
                if deadline < now:
                    deadline += math.ceil((now - deadline) / interval) * interval
        self._forget()


class IdleTimer(CellTask):
    """Tells its actor :class:`ReceiveTimeout` whenever the actor has been idle (parked on
    an empty mailbox) for ``timeout`` seconds; cancelled with the actor, like a timer."""

    __slots__ = ("timeout",)

    def __init__(self, cell: ActorCell, timeout: float) -> None:
        super().__init__(cell)
        self.timeout = timeout

    def cancel(self) -> None:
        """Stop watching (a ReceiveTimeout already queued stays queued)."""
        super().cancel()
        cell = self._cell
        if cell.idle_timer is self:
            cell.idle_timer = None
            cell.choose_direct()
        if cell.timers is not None:
            cell.timers.discard(self)

    async def run(self) -> None:
        """Sleep until the actor will have been idle ``timeout``; tell it then, else
        sleep on from when it last went idle (or a whole ``timeout`` while it works)."""
        cell, timeout = self._cell, self.timeout
        with self._scope:
            deadline = trio.current_time() + timeout
            while True:
                await trio.sleep_until(deadline)
                now = trio.current_time()
                if not cell.parked:
                    deadline = now + timeout
                elif now >= cell.idle_since + timeout:
                    await cell.ref.tell(RECEIVE_TIMEOUT)
                    deadline = now + timeout
                else:
                    deadline = cell.idle_since + timeout


RECEIVE_TIMEOUT = ReceiveTimeout()


def _check_delay(name: str, value: float, *, positive: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {kind}, not {value!r}")


class Context:
    """Handed to ``receive`` (and reachable from an actor as ``self.context``)."""

    __slots__ = ("_cell", "sender")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self.sender: ActorRef | None = None
        """Who sent the message being handled, when it came from an actor."""

    @property
    def self_ref(self) -> ActorRef:
        """This actor's own ref."""
        return self._cell.ref

    @property
    def system(self) -> LocalSystem:
        """The system this actor runs in (an application's ``System`` on a cluster)."""
        return self._cell.system

    @property
    def children(self) -> list[ActorRef]:
        """Refs of this actor's running children."""
        return [child.ref for child in self._cell.children.values()]

    async def spawn(
        self,
        actor: ActorSource,
        name: str | None = None,
        *,
        mailbox_size: int | Mailbox | None = None,
        supervision: Strategy | None = None,
    ) -> ActorRef:
        """Start a child actor (see :meth:`System.spawn`); it stops before this actor does."""
        return self._cell.system.spawn_under(self._cell, actor, name, mailbox_size, supervision)

    def become(self, handler: Callable[[Any, Context], Any], *, stacked: bool = False) -> None:
        """Handle messages from the next one on with ``handler`` (same signature as
        ``receive``, plain or ``async``) instead of the current behaviour; ``stacked``
        keeps the current one for :meth:`unbecome` to return to.  A restart goes back
        to ``receive``."""
        if not callable(handler):
            raise TypeError(f"become takes a handler of (msg, ctx), not {handler!r}")
        cell = self._cell
        stack = list(cell.behaviours or ())
        if stack and not stacked:
            stack.pop()
        cell.behave([*stack, handler])

    def unbecome(self) -> None:
        """Return to the behaviour before the last :meth:`become` (``receive`` at the
        bottom; unbecoming there changes nothing)."""
        cell = self._cell
        cell.behave((cell.behaviours or [])[:-1])

    def watch(self, ref: ActorRef) -> None:
        """Receive ``Terminated(ref, reason)`` once when ``ref`` stops (at once if it has)."""
        cell = self._cell
        if cell.watching is None:
            cell.watching = set()
        if ref != cell.ref and ref not in cell.watching:
            cell.watching.add(ref)
            ref.target.add_watcher(cell)

    def unwatch(self, ref: ActorRef) -> None:
        """Stop watching ``ref``; no ``Terminated`` for it arrives after this."""
        cell = self._cell
        if cell.watching is not None and ref in cell.watching:
            cell.watching.discard(ref)
            ref.target.remove_watcher(cell)

    def stop(self, ref: ActorRef | None = None) -> None:
        """Ask this actor (default) or another local actor to stop after its current message."""
        target = self._cell if ref is None else self._cell.system.local_cell(ref)
        if target is not None:
            target.request_stop()

    def schedule_once(self, delay: float, msg: Any) -> Timer:
        """Deliver ``msg`` to this actor after ``delay`` seconds."""
        _check_delay("delay", delay)
        return self._start_timer(delay, msg, None)

    def schedule_every(self, interval: float, msg: Any, *, delay: float | None = None) -> Timer:
        """Deliver ``msg`` to this actor every ``interval`` seconds (first after ``delay``)."""
        _check_delay("interval", interval, positive=True)
        first = interval if delay is None else delay
        _check_delay("delay", first)
        return self._start_timer(first, msg, interval)

    def add_stream(self, items: AsyncIterable[Any]) -> StreamFeed:
        """Deliver each item of ``items`` to this actor as a message, in order, then
        :class:`StreamFinished`; the next item is read only once the mailbox took the last
        one.  Cancelled when this actor stops or restarts."""
        if not hasattr(items, "__aiter__"):
            raise TypeError(f"add_stream takes an async iterable, not {items!r}")
        feed = StreamFeed(self._cell)
        self._cell.start_stream(feed, items)
        return feed

    def set_receive_timeout(self, timeout: float | None) -> None:
        """Receive :class:`ReceiveTimeout` each time this actor has had no message for
        ``timeout`` seconds (it comes again after each further ``timeout`` idle); None turns
        it off.  Stop on it to passivate an idle actor.  Cleared by a restart."""
        cell = self._cell
        if cell.idle_timer is not None:
            cell.idle_timer.cancel()
        if timeout is None:
            return
        _check_delay("timeout", timeout, positive=True)
        timer = IdleTimer(cell, timeout)
        cell.idle_timer = timer
        cell.idle_since = trio.current_time()
        cell.choose_direct()
        if cell.timers is None:
            cell.timers = set()
        cell.timers.add(timer)
        cell.system.nursery.start_soon(timer.run)

    def pipe_to(self, work: Awaitable[Any], to: ActorRef | None = None) -> Pipe:
        """Await ``work`` (a coroutine or other awaitable) beside this actor, which goes on
        with its messages, and tell the value to ``to`` (default: this actor).  If ``work``
        raises, or the value cannot be told to ``to``, this actor gets :class:`PipeFailed`.
        Cancelled, nothing delivered, when this actor stops or restarts."""
        if not inspect.isawaitable(work):
            raise TypeError(f"pipe_to takes an awaitable (a coroutine), not {work!r}")
        pipe = Pipe(self._cell)
        self._cell.start_stream(pipe, work, to)
        return pipe

    def _start_timer(self, delay: float, msg: Any, interval: float | None) -> Timer:
        timer = Timer(self._cell)
        if self._cell.timers is None:
            self._cell.timers = set()
        self._cell.timers.add(timer)
        self._cell.system.nursery.start_soon(timer.run, delay, msg, interval)
        return timer
