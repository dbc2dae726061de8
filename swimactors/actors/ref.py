"""ActorRef: the one handle callers hold, whatever (and wherever) the actor is.

A ref is an address ``(node, path, uid)`` plus a *delivery target* that does the work.
Local actors are their own target; the cluster layer will add a remote target with the
same methods, so a ref to another node is the same type to its caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Generator
from contextvars import ContextVar
from typing import Any, Protocol

__all__ = ["DEFAULT_ASK_TIMEOUT", "READY", "ActorRef", "Target", "Watcher", "current_sender"]

DEFAULT_ASK_TIMEOUT = 5.0
"""Seconds an ``ask`` waits for its reply unless told otherwise."""

current_sender: ContextVar[ActorRef | None] = ContextVar("swimactors_sender", default=None)
"""The ref of the actor whose task is running, so a tell from inside an actor names its
sender without the caller passing it (each actor task sets it once when it starts)."""


class _Ready:
    """An awaitable that is already done: ``tell`` returns it when the mailbox had room,
    which spares a coroutine object and a trip through the scheduler per message."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


READY: Awaitable[None] = _Ready()


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
        return self._target.tell(msg, current_sender.get())

    def tell_nowait(self, msg: Any) -> None:
        """Deliver ``msg`` now or raise :class:`MailboxFull` without queuing it."""
        self._target.tell_nowait(msg, current_sender.get())

    def ask(
        self, msg: Any, timeout: float | None = DEFAULT_ASK_TIMEOUT
    ) -> Coroutine[Any, Any, Any]:
        """Send ``msg`` and return what the actor's ``receive`` returns for it.

        Raises :class:`AskTimeout` after ``timeout`` seconds (``None``: wait forever),
        :class:`ActorStopped` if the actor is or gets stopped first, and
        :class:`ActorFailed` if ``receive`` raised.
        """
        return self._target.ask(msg, current_sender.get(), timeout)

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
