"""The blocking front of the actor system: swimactors from plain blocking code (Django,
Flask, scripts, Celery workers).

``with blocking.open_system(...) as system:`` runs a whole actor system (actors,
membership, registry) on a runtime thread, as :func:`swimactors.aio.open_system` does;
the calling thread spawns, finds, asks and tells through :class:`BlockingSystem` and
:class:`BlockingRef`, each call waiting for its outcome from that thread.  Actor bodies
run on trio there.  (The blocking front of membership alone is
:func:`swimactors.membership.start_node`.)
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, TypeVar, cast

import outcome

from .actors.from_thread import ForeignRef, begin_ask, begin_tell
from .actors.ref import DEFAULT_ASK_TIMEOUT, ActorRef
from .actors.runtime import ActorSource
from .cluster.system import System
from .cluster.system import open_system as _open_system
from .loop_thread import DEFAULT_START_TIMEOUT, Begin, Cancel, Done, LoopThread

__all__ = ["BlockingRef", "BlockingSystem", "open_system"]

T = TypeVar("T")


class BlockingRef(ForeignRef):
    """A ref to an actor (local or on another node) for blocking code.

    :meth:`ask` and :meth:`tell` run on the runtime thread and raise the same errors as
    the trio ref (:class:`~swimactors.AskTimeout`, :class:`~swimactors.ActorStopped`,
    ...).  Put :attr:`ref` (the trio ref) in messages.  Equal refs name the same actor.
    """

    __slots__ = ("_runtime",)

    def __init__(self, ref: ActorRef, runtime: LoopThread[System]) -> None:
        super().__init__(ref)
        self._runtime = runtime

    def ask(self, msg: Any, timeout: float | None = DEFAULT_ASK_TIMEOUT) -> Any:
        """Send ``msg`` and return the actor's answer (``timeout`` as for the trio ref).
        An interrupt (KeyboardInterrupt) while waiting gives the ask up."""
        return _wait(self._runtime, begin_ask(self._runtime, self.ref, msg, timeout))

    def tell(self, msg: Any) -> None:
        """Deliver ``msg`` (waits while the actor's mailbox is full)."""
        _wait(self._runtime, begin_tell(self._runtime, self.ref, msg))


class BlockingSystem:
    """An actor system on its runtime thread, for blocking code; get one from
    :func:`open_system`.  Any thread may call it, except the runtime thread itself."""

    def __init__(self, runtime: LoopThread[System]) -> None:
        self._runtime = runtime
        self.name: str = runtime.call(lambda system: system.name)
        """This node's name."""

    def spawn(self, actor: ActorSource, name: str | None = None, **options: Any) -> BlockingRef:
        """Start a top-level actor (``System.spawn``'s arguments: ``public=True`` names it
        cluster-wide) and return its ref."""
        return self._wrap(self.run(lambda system: system.spawn(actor, name, **options)))

    def find(self, name: str) -> BlockingRef | None:
        """The ref of the actor holding ``name`` anywhere in the cluster, or None."""
        ref = self.run(lambda system: system.find(name))
        return None if ref is None else self._wrap(ref)

    def wait_for(self, name: str, timeout: float | None = None) -> BlockingRef:
        """The ref for ``name`` once someone holds it; TimeoutError after ``timeout`` s."""
        return self._wrap(self.run(lambda system: system.wait_for(name, timeout)))

    def stop(self, ref: BlockingRef) -> None:
        """Stop a local actor and wait until it has."""
        self.run(lambda system: system.stop(ref.ref))

    def run(self, fn: Callable[[System], Awaitable[T]]) -> T:
        """``await fn(system)`` on the runtime thread: any trio-side call of the system
        (cancelled there by an interrupt while waiting)."""
        runtime = self._runtime

        def begin(system: System, done: Done[T]) -> Cancel:
            return runtime.spawn(lambda: fn(system), done)

        return _wait(runtime, begin)

    def ref(self, ref: ActorRef) -> BlockingRef:
        """The blocking handle of a trio ref (one that came back in an answer)."""
        return self._wrap(ref)

    def _wrap(self, ref: ActorRef) -> BlockingRef:
        return BlockingRef(ref, self._runtime)


def _wait(runtime: LoopThread[System], begin: Begin[System, T]) -> T:
    """Begin work on the runtime thread and wait for its outcome; an exception raised in
    the waiting thread meanwhile (KeyboardInterrupt) cancels the work there."""
    if runtime.on_thread:
        raise RuntimeError("a blocking call on the runtime thread itself would hang")
    finished = threading.Event()
    results: list[outcome.Outcome[T]] = []

    def done(result: outcome.Outcome[T]) -> None:
        results.append(result)
        finished.set()

    call = runtime.begin(begin, done)
    try:
        finished.wait()
    except BaseException:
        call.cancel()
        raise
    result = results[0]  # read, not unwrapped: an outcome may be shared (a tell's)
    if isinstance(result, outcome.Value):
        return cast(T, result.value)
    assert isinstance(result, outcome.Error)
    raise result.error


@contextmanager
def open_system(
    name: str | None = None,
    bind: str | None = None,
    seeds: Sequence[str] = (),
    *,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    **options: Any,
) -> Iterator[BlockingSystem]:
    """Run :func:`swimactors.open_system` (same arguments) on a runtime thread for the
    life of the block.

    Raises its start-up errors (TimeoutError after ``start_timeout`` s).  Leaving the
    block stops every actor, leaves the cluster and joins the thread; if the system
    failed (an escalated error), :class:`~swimactors.SystemFailed` is raised here.
    """

    def open_on_runtime() -> AbstractAsyncContextManager[System]:
        return _open_system(name, bind, seeds, **options)

    runtime: LoopThread[System] = LoopThread(f"swimactors-runtime-{name}", open_on_runtime)
    runtime.start(start_timeout)
    try:
        yield BlockingSystem(runtime)
    finally:
        runtime.stop()
    if runtime.error is not None:
        raise runtime.error
