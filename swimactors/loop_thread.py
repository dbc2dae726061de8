"""A trio loop on a thread of its own, holding one resource open (a membership node, an
actor system) for other threads to use.

Only calls cross: a function of the resource run on the loop's thread, its outcome handed
to a callback there (:meth:`LoopThread.run_sync`, :meth:`LoopThread.run_async`), or waited
for by a blocking caller (:meth:`LoopThread.call`, :meth:`LoopThread.call_async`).  The
fronts build on it: the blocking and asyncio membership fronts and the asyncio actor
system.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

import outcome
import trio

from .errors import SwimactorsError
from .logs import logger

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "Begin",
    "Call",
    "Cancel",
    "Crossing",
    "Done",
    "LoopThread",
    "ThreadClosed",
    "serve",
]

DEFAULT_START_TIMEOUT = 30.0
"""Seconds the fronts wait for a loop thread to bind and start (``start_timeout``)."""

log = logger(__name__)

R = TypeVar("R")
T = TypeVar("T")
Done = Callable[[outcome.Outcome[T]], None]
Cancel = Callable[[], None]
Begin = Callable[[R, Done[T]], Cancel | None]
"""Starts work on the loop's thread that calls its ``done`` once; returns how to cancel it."""


class ThreadClosed(SwimactorsError, RuntimeError):
    """The loop thread is not running: it was stopped, or it failed."""


class LoopThread(Generic[R]):
    """Runs ``async with open_resource() as resource`` on a new trio loop in a daemon thread.

    :meth:`start` returns once the resource is open (or raises the error that opening it
    raised); :meth:`stop` closes it and joins the thread.  Calls made after it closed report
    ``closed_error`` to their callback.  Subclasses hook :meth:`opened` and :meth:`closed`.
    """

    closed_error: type[ThreadClosed] = ThreadClosed

    def __init__(
        self, name: str, open_resource: Callable[[], contextlib.AbstractAsyncContextManager[R]]
    ) -> None:
        self.name = name
        self._open = open_resource
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._up = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._crossing: Crossing | None = None
        self._nursery: trio.Nursery | None = None
        self._resource: R | None = None
        self._stopping: trio.Event | None = None
        self._closing = False
        self.error: BaseException | None = None
        """What ended the thread, if it did not end by :meth:`stop`."""

    # -- life cycle (other threads) ----------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Start the thread and wait until the resource is open."""
        self._thread.start()
        if not self._up.wait(timeout):
            self.stop(timeout)
            raise TimeoutError(f"{self.name} did not start within {timeout} s")
        if self.error is not None:
            self._thread.join()
            raise self.error

    def stop(self, timeout: float | None = None) -> bool:
        """Close the resource and wait up to ``timeout`` s for the thread; True once it
        has ended.  A thread still starting is stopped once it is up."""
        if self.on_thread:
            raise RuntimeError(f"{self.name} cannot stop itself from its own thread")
        if self._thread.ident is None:
            return True
        self._up.wait(timeout)
        self._ask_to_stop()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _ask_to_stop(self) -> None:
        """From another thread: have the loop begin to stop (nothing if it has ended)."""
        token = self._token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._begin_stop)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._closing

    @property
    def on_thread(self) -> bool:
        """Whether the caller runs on this loop's thread."""
        return threading.current_thread() is self._thread

    # -- crossing (any thread) ---------------------------------------------------------------

    def run_sync(self, fn: Callable[[R], T], done: Done[T]) -> None:
        """Call ``fn(resource)`` on the loop soon; ``done(outcome)`` runs there."""

        def call(resource: R) -> None:
            _settle(done, outcome.capture(fn, resource))

        self._schedule(call, done)

    def begin(self, begin: Begin[R, T], done: Done[T]) -> Call:
        """Call ``begin(resource, done)`` on the loop soon: it starts some work that calls
        ``done(outcome)`` there once, and returns how to cancel that work (or None).  The
        returned :class:`Call` cancels it from any thread."""
        call = Call(self)

        def on_loop(resource: R) -> None:
            try:
                call.cancel_on_loop = begin(resource, done)
            except Exception as exc:
                _settle(done, outcome.Error(exc))

        try:
            self._schedule(on_loop, done)
        except BaseException:  # an interrupt once the work was handed over: give it up
            call.cancel()
            raise
        return call

    def run_async(self, fn: Callable[[R], Awaitable[T]], done: Done[T]) -> Call:
        """Run ``await fn(resource)`` as a task on the loop; ``done(outcome)`` runs there
        (with ``closed_error`` if the loop stopped first; not at all once cancelled)."""
        return self.begin(lambda resource, done: self.spawn(lambda: fn(resource), done), done)

    def spawn(self, fn: Callable[[], Awaitable[T]], done: Done[T]) -> Cancel:
        """On the loop's thread: run ``await fn()`` as a task; ``done(outcome)`` when it
        ends (not if cancelled by the returned function)."""
        assert self._nursery is not None
        scope = trio.CancelScope()

        async def task() -> None:
            with scope:
                result = await outcome.acapture(fn)
                if isinstance(result, outcome.Error) and isinstance(result.error, trio.Cancelled):
                    if not scope.cancel_called:  # the loop is stopping
                        _settle(done, outcome.Error(self.closed_error(f"{self.name} stopped")))
                    result.unwrap()
                _settle(done, result)

        self._nursery.start_soon(task)
        return scope.cancel

    def call(self, fn: Callable[[R], T]) -> T:
        """Blocking: ``fn(resource)``'s result from the loop (or its error)."""
        waiter: _Waiter[T] = self._waiter(fn)
        self.run_sync(fn, waiter.done)
        return waiter.result()

    def call_async(self, fn: Callable[[R], Awaitable[T]]) -> T:
        """Blocking: ``await fn(resource)``'s result from the loop (or its error)."""
        waiter: _Waiter[T] = self._waiter(fn)
        self.run_async(fn, waiter.done)
        return waiter.result()

    def _waiter(self, fn: object) -> _Waiter[Any]:
        if self.on_thread:
            raise RuntimeError(f"a blocking call of {fn!r} on {self.name}'s own thread would hang")
        return _Waiter()

    def _schedule(self, call: Callable[[R], None], done: Done[Any]) -> None:
        crossing = self._crossing
        if crossing is None:
            raise self.closed_error(f"{self.name} is not running")

        def on_loop() -> None:
            if self._closing:
                _settle(done, outcome.Error(self.closed_error(f"{self.name} stopped")))
            else:  # the resource was set before the token that scheduled this call
                call(cast(R, self._resource))

        crossing.send(on_loop)

    # -- the loop's thread -------------------------------------------------------------------

    def opened(self, resource: R, nursery: trio.Nursery) -> None:
        """Called on the loop's thread once the resource is open, before any call (override
        to start work beside it in ``nursery``)."""

    def _main(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # an opening failure or a crash: reported, not lost
            self.error = exc
            if self._up.is_set():
                log.error("%s ended: %r", self.name, exc)
        finally:
            self._closing = True
            self._up.set()
            if self._crossing is not None:  # calls that came too late: closed_error
                self._crossing.close()
            self.closed()

    def closed(self) -> None:
        """Called on the loop's thread once the loop has ended (override to clean up)."""

    def _serve(self) -> None:
        """Open the resource, set :attr:`_up`, and run the loop until stopped."""
        trio.run(self._run)

    async def _run(self) -> None:
        async with self._open() as resource, trio.open_nursery() as nursery:
            self._stopping = trio.Event()
            self._resource, self._nursery = resource, nursery
            self.opened(resource, nursery)
            self._token = trio.lowlevel.current_trio_token()
            self._crossing = Crossing()
            nursery.start_soon(serve, self._crossing)
            self._up.set()
            await self._stopping.wait()
            nursery.cancel_scope.cancel()

    def _begin_stop(self) -> None:
        self._closing = True
        if self._stopping is not None:
            self._stopping.set()


class Call:
    """A call handed to a loop thread; :meth:`cancel` cancels it from any thread."""

    __slots__ = ("_thread", "cancel_on_loop")

    def __init__(self, thread: LoopThread[Any]) -> None:
        self._thread = thread
        self.cancel_on_loop: Cancel | None = None

    def cancel(self) -> None:
        """Cancel the work on the loop (nothing if it ended, or if the loop has)."""
        with contextlib.suppress(ThreadClosed):
            self._thread._schedule(self._cancel, _ignore)

    def _cancel(self, resource: object) -> None:
        if self.cancel_on_loop is not None:
            self.cancel_on_loop()
            self.cancel_on_loop = None


class Crossing:
    """Calls handed to another thread's loop and run there in order, with one wake-up of
    that loop for each batch.

    The wake-up is one byte written to a pipe whose read end (:attr:`fileno`) that loop
    watches, calling :meth:`run` when it is readable: one write and one read per batch,
    cheaper than the loops' own thread-safe calls (trio's ``run_sync_soon`` and asyncio's
    ``call_soon_threadsafe`` each read their wake-up socket until it is empty and take a
    lock, and trio hands the calls to a task of its own).  Once :meth:`close` says the
    loop has ended, calls run at once where they are sent.
    """

    __slots__ = ("_calls", "_closed", "_lock", "_scheduled", "_write_fd", "fileno")

    def __init__(self) -> None:
        self._lock = threading.Lock()  # no write to the pipe once close has closed it
        self._closed = True  # until the pipe exists
        self.fileno, self._write_fd = os.pipe()
        os.set_blocking(self.fileno, False)
        os.set_blocking(self._write_fd, False)
        self._calls: collections.deque[tuple[Callable[..., object], tuple[Any, ...]]]
        self._calls = collections.deque()
        self._scheduled = False
        self._closed = False

    def send(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)``; wake the loop unless a wake-up is already on its way."""
        self._calls.append((fn, args))
        if not self._scheduled and not self._closed:
            self._scheduled = True
            with self._lock:
                if not self._closed:
                    with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending
                        os.write(self._write_fd, b"\0")
        if self._closed:
            self._drain()

    def run(self) -> None:
        """On the woken loop: take the wake-up and run every call queued so far."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fileno, 4096)
        self._drain()

    def close(self) -> None:
        """The loop has ended (and stopped watching :attr:`fileno`): run what is still
        queued here, and later calls at once; close the pipe."""
        self._close_pipe()
        self._drain()

    def _close_pipe(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self.fileno)
                os.close(self._write_fd)

    def _drain(self) -> None:
        self._scheduled = False  # before draining: a call queued from now on wakes again
        calls = self._calls
        while calls:
            try:
                fn, args = calls.popleft()
            except IndexError:  # another thread took the last one
                return
            try:
                fn(*args)
            except Exception:
                log.exception("a call handed over by a Crossing raised")

    def __del__(self) -> None:  # one never closed (its loop never ran): no fd leaks
        self._close_pipe()


async def serve(crossing: Crossing) -> None:
    """Run ``crossing``'s calls on this trio loop as they come, until cancelled."""
    while True:
        await trio.lowlevel.wait_readable(crossing.fileno)
        crossing.run()


class _Waiter(Generic[T]):
    """Where a blocking caller waits for one call's outcome."""

    def __init__(self) -> None:
        self._finished = threading.Event()
        self._outcome: outcome.Outcome[T] | None = None

    def done(self, result: outcome.Outcome[T]) -> None:
        self._outcome = result
        self._finished.set()

    def result(self) -> T:
        self._finished.wait()
        assert self._outcome is not None
        return self._outcome.unwrap()


def _ignore(result: outcome.Outcome[Any]) -> None:
    pass


def _settle(done: Done[T], result: outcome.Outcome[T]) -> None:
    """Hand an outcome to its callback; a failing callback must not take the loop down."""
    try:
        done(result)
    except Exception:
        log.exception("a loop-thread callback raised")
