"""ActorRef: the one handle callers hold, whatever (and wherever) the actor is.

A ref is an address ``(node, path, uid)`` plus a *delivery target* that does the work.
Local actors are their own target; the cluster layer will add a remote target with the
same methods, so a ref to another node is the same type to its caller.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextvars import ContextVar
from typing import Any, Protocol, cast

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "DEFAULT_STREAM_WINDOW",
    "MAX_STREAM_WINDOW",
    "READY",
    "ActorRef",
    "ItemStream",
    "Started",
    "StartsAsks",
    "StreamTarget",
    "Target",
    "Watcher",
    "current_sender",
    "sender_now",
]

DEFAULT_ASK_TIMEOUT = 5.0
"""Seconds an ``ask`` waits for its reply unless told otherwise."""

DEFAULT_STREAM_WINDOW = 256
"""Items a streamed reply's producer may send ahead of its reader unless told otherwise."""

MAX_STREAM_WINDOW = 4096
"""The largest window of a streamed reply (the protocol refuses larger grants)."""

current_sender: ContextVar[ActorRef | None] = ContextVar("swimactors_sender", default=None)
"""The ref of the actor whose task is running, so a tell from inside an actor names its
sender without the caller passing it (each actor task sets it once when it starts)."""

sender_now = current_sender.get
"""``current_sender.get``, bound once: a call to it costs about half the method lookup and
call of ``current_sender.get()`` (it is made once per tell and ask)."""


@types.coroutine
def _finished() -> Generator[Any, None, None]:
    return
    yield  # pragma: no cover - makes this a generator


READY: Awaitable[None] = _finished()
"""An awaitable that is already done: ``tell`` returns it when the mailbox had room.  It
is a finished generator marked as a coroutine, which ``await`` takes as its own iterator
(no ``__await__`` call) and which returns at once however often it is awaited: no
coroutine object and no trip through the scheduler per message."""
for _ in READY:  # type: ignore[attr-defined]  # run it to its end once
    pass


class Watcher(Protocol):
    """Something that wants one ``Terminated`` when a target stops (an actor cell)."""

    def notify_terminated(self, ref: ActorRef, reason: str | None) -> None: ...


class Target(Protocol):
    """Where a ref's messages go: a local actor cell, or (later) a remote connection."""

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]: ...

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None: ...

    def ask(
        self, msg: Any, sender: ActorRef | None, timeout: float | None
    ) -> Coroutine[Any, Any, Any]: ...

    def add_watcher(self, watcher: Watcher) -> None: ...

    def remove_watcher(self, watcher: Watcher) -> None: ...


class ItemStream(Protocol):
    """What ``ref.stream`` returns (a :class:`~.streams.ReplyStream`): the items, and
    ways to stop reading early."""

    def __aiter__(self) -> ItemStream: ...

    async def __anext__(self) -> Any: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> ItemStream: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


class StreamTarget(Protocol):
    """A target that can answer a request with a stream (a local actor, a remote one)."""

    def open_stream(
        self, msg: Any, sender: ActorRef | None, window: int, timeout: float | None
    ) -> ItemStream: ...


class Started(Protocol):
    """An ask started without a task (its reply slot)."""

    def cancel(self) -> None:
        """Give up: the asker is told nothing more; a reply that still comes is late."""


class StartsAsks(Protocol):
    """A target that can also start an ask without a task (local actors, remote ones);
    ``notify`` is called with an ``outcome.Outcome``."""

    def start_ask(
        self,
        msg: Any,
        sender: ActorRef | None,
        timeout: float | None,
        notify: Callable[[Any], None],
    ) -> Started | None: ...


class ActorRef:
    """A stable, hashable handle to one actor; valid across its restarts.

    Equality and hashing use the address only, so a ref decoded from the wire equals the
    one the actor's own system handed out.  Prints as ``actor://node/path#uid``.
    """

    __slots__ = ("_hash", "_target", "node", "path", "uid")

    def __init__(self, node: str, path: str, uid: int, target: Target) -> None:
        self.node = node
        self.path = path
        self.uid = uid
        self._target = target
        self._hash = hash(path) ^ uid

    def tell(self, msg: Any) -> Awaitable[None]:
        """Deliver ``msg``; waits only while the mailbox is full (backpressure).

        With room, the message is queued before this returns, so ``await ref.tell(m)`` costs
        no scheduler trip.  To a stopped actor the message becomes a dead letter.
        """
        return self._target.tell(msg, sender_now())

    def tell_nowait(self, msg: Any) -> None:
        """Deliver ``msg`` now or raise :class:`MailboxFull` without queuing it."""
        self._target.tell_nowait(msg, sender_now())

    def ask(
        self, msg: Any, timeout: float | None = DEFAULT_ASK_TIMEOUT
    ) -> Coroutine[Any, Any, Any]:
        """Send ``msg`` and return what the actor's ``receive`` returns for it.

        Raises :class:`AskTimeout` after ``timeout`` seconds (``None``: wait forever),
        :class:`MailboxFull` if the mailbox had no room for it in that time (it was never
        queued), :class:`ActorStopped` if the actor is or gets stopped first,
        :class:`ActorFailed` if ``receive`` raised, and :class:`NodeDown` if the actor's
        node is lost before it answers.
        """
        return self._target.ask(msg, sender_now(), timeout)

    def stream(
        self, msg: Any, *, window: int = DEFAULT_STREAM_WINDOW, timeout: float | None = None
    ) -> ItemStream:
        """Send ``msg`` to an actor whose ``receive`` answers it with an async iterable,
        and read that iterable's items: ``async for item in ref.stream(msg)``.

        At most ``window`` items are sent ahead of the reader; leaving the loop early
        cancels the producer.  Errors are those of :meth:`ask` (``timeout``: seconds to
        wait for each item, None: no limit).
        """
        if type(window) is not int or not 0 < window <= MAX_STREAM_WINDOW:
            raise ValueError(f"window must be 1..{MAX_STREAM_WINDOW}, not {window!r}")
        target = self._target
        if not hasattr(target, "open_stream"):
            raise TypeError(f"{self} cannot answer with a stream")
        opener: StreamTarget = target  # type: ignore[assignment]
        return opener.open_stream(msg, current_sender.get(), window, timeout)

    def start_ask(
        self, msg: Any, timeout: float | None, notify: Callable[[Any], None]
    ) -> Started | None:
        """Start an ask from the actors' loop without a task (for a caller on another
        loop): ``notify(outcome)`` runs there once, with the ``outcome.Outcome`` of what
        :meth:`ask` would return or raise; ``cancel()`` on the result gives up.  None
        when the ask can only be made from a task (this kind of target, or no room yet):
        use :meth:`ask` then."""
        target = cast("StartsAsks", self._target)
        if not hasattr(target, "start_ask"):
            return None
        return target.start_ask(msg, current_sender.get(), timeout, notify)

    @property
    def target(self) -> Target:
        """The delivery target (for the runtime's own layers, not for applications)."""
        return self._target

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        return self.uid == other.uid and self.path == other.path and self.node == other.node

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"actor://{self.node}/{self.path}#{self.uid}"
