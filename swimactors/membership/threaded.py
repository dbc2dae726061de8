"""The membership thread: one node's trio driver on its own trio loop in a dedicated thread,
and everything that crosses between that thread and the application's threads.

A node on its own thread keeps answering probes, acks and suspicions while the application
thread or event loop is blocked (a sync database call, a long computation), so a busy
process is not declared DOWN by its peers.  Only two things cross the boundary:

* calls: a function of the :class:`~swimactors.membership.Node` run on the membership
  thread, its outcome handed to a callback there (:meth:`NodeThread.run_sync`,
  :meth:`NodeThread.run_async`): member snapshots, counters, ``set_meta``, broadcasts,
  delegates, ``leave``;
* events: copied as they happen into each subscriber's :class:`ThreadEvents`, a bounded
  buffer behind a lock that any thread may read.

The blocking front (:mod:`~swimactors.membership.blocking`) and the asyncio front
(:mod:`swimactors.aio`) are thin layers over this module.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypedDict, TypeVar

import outcome
import trio

from ..errors import SwimactorsError
from .config import Config
from .events import DEFAULT_EVENT_BUFFER, EventBuffer, EventsDropped
from .node import Node, open_node
from .transport import NodeTransport
from .types import Address, MemberEvent

__all__ = ["NodeClosed", "NodeOptions", "NodeThread", "ThreadEvents"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Done = Callable[[outcome.Outcome[T]], None]

RELAY_BUFFER = 65536
"""The membership thread's own subscription, emptied into the subscribers at once."""


class NodeClosed(SwimactorsError, RuntimeError):
    """The node's membership thread is not running: it was stopped, or it failed."""


class NodeOptions(TypedDict, total=False):
    """What :func:`~swimactors.membership.open_node` takes besides ``name``."""

    bind: str | Address
    seeds: Iterable[str | Address]
    config: Config | None
    advertise: str | Address | None
    meta: bytes
    rng: random.Random | None
    leave_timeout: float | None
    incarnation: int | None
    transport: NodeTransport | None


class ThreadEvents:
    """One subscriber's membership events across the thread boundary.

    The membership thread pushes; any thread reads with :meth:`get` (blocking up to a
    timeout) or :meth:`poll`.  ``on_ready`` (called on the membership thread, outside the
    lock) lets an event loop learn that something arrived.  Like a trio subscription it
    drops the oldest events past ``buffer`` and reports the gap as :class:`EventsDropped`.
    """

    def __init__(
        self, owner: NodeThread, buffer: int, on_ready: Callable[[], None] | None = None
    ) -> None:
        self._owner = owner
        self._buffer = EventBuffer(buffer)
        self._condition = threading.Condition()
        self._on_ready = on_ready
        self.closed = False

    @property
    def dropped(self) -> int:
        """Total events this subscriber lost by reading too slowly."""
        with self._condition:
            return self._buffer.dropped

    def poll(self) -> MemberEvent | EventsDropped | None:
        """The next event if one is waiting, else None."""
        with self._condition:
            return self._buffer.pop()

    def get(self, timeout: float | None = None) -> MemberEvent | EventsDropped | None:
        """The next event, waiting up to ``timeout`` seconds (None: until one comes); None
        if none came in time, or the subscription is closed and drained."""
        with self._condition:
            self._condition.wait_for(lambda: not self._buffer.empty or self.closed, timeout)
            return self._buffer.pop()

    def close(self) -> None:
        """Stop receiving events; readers get what is buffered, then None."""
        self._owner._unsubscribe(self)
        self._end()

    def _deliver(self, item: MemberEvent | EventsDropped) -> None:
        with self._condition:
            if isinstance(item, EventsDropped):
                self._buffer.lost(item.count)
            else:
                self._buffer.push(item)
            self._condition.notify_all()
        self._wake()

    def _end(self) -> None:
        with self._condition:
            self.closed = True
            self._condition.notify_all()
        self._wake()

    def _wake(self) -> None:
        if self._on_ready is not None:
            self._on_ready()


class NodeThread:
    """Runs ``open_node(name=name, **options)`` on a new trio loop in a daemon thread.

    :meth:`start` returns once the node is up (or raises its start-up error); :meth:`stop`
    leaves the cluster gracefully and joins the thread.  Calls made after the node stopped
    report :class:`NodeClosed` to their callback.
    """

    def __init__(self, name: str, options: NodeOptions) -> None:
        self.name = name
        self._options = options
        self._thread = threading.Thread(
            target=self._main, name=f"swimactors-membership-{name}", daemon=True
        )
        self._up = threading.Event()
        self._lock = threading.Lock()
        self._subscribers: set[ThreadEvents] = set()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._node: Node | None = None
        self._stopping: trio.Event | None = None
        self._closing = False
        self.error: BaseException | None = None
        """What ended the membership thread, if it did not end by :meth:`stop`."""
        self.address: Address = ("", 0)
        self.bound_address: Address = ("", 0)
        self.config = Config()
        self.max_broadcast_size = 0

    # -- life cycle (application threads) -------------------------------------------------

    def start(self, timeout: float) -> None:
        """Start the thread and wait until the node is up."""
        self._thread.start()
        if not self._up.wait(timeout):
            self.stop(timeout)
            raise TimeoutError(f"membership node {self.name} did not start within {timeout} s")
        if self.error is not None:
            self._thread.join()
            raise self.error

    def stop(self, timeout: float | None = None) -> bool:
        """Leave gracefully, close the node and wait up to ``timeout`` s for the thread;
        True once it has ended."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("stop() cannot be called from the membership thread itself")
        token = self._token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._begin_stop)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._closing

    # -- crossing the boundary (any thread) ------------------------------------------------

    def run_sync(self, fn: Callable[[Node], T], done: Done[T]) -> None:
        """Call ``fn(node)`` on the membership thread soon; ``done(outcome)`` runs there."""

        def call(node: Node) -> None:
            _settle(done, outcome.capture(fn, node))

        self._schedule(call, done)

    def run_async(self, fn: Callable[[Node], Awaitable[T]], done: Done[T]) -> None:
        """Run ``await fn(node)`` as a task on the membership thread; ``done`` runs there."""

        async def task(node: Node) -> None:
            result = await outcome.acapture(fn, node)
            if isinstance(result, outcome.Error) and isinstance(result.error, trio.Cancelled):
                _settle(done, outcome.Error(NodeClosed(f"node {self.name} stopped")))
                result.unwrap()
            _settle(done, result)

        def start(node: Node) -> None:
            assert self._nursery is not None
            self._nursery.start_soon(task, node)

        self._schedule(start, done)

    def call(self, fn: Callable[[Node], T]) -> T:
        """Blocking: ``fn(node)``'s result on the membership thread (or its error)."""
        waiter: _Waiter[T] = self._waiter(fn)
        self.run_sync(fn, waiter.done)
        return waiter.result()

    def call_async(self, fn: Callable[[Node], Awaitable[T]]) -> T:
        """Blocking: ``await fn(node)``'s result on the membership thread (or its error)."""
        waiter: _Waiter[T] = self._waiter(fn)
        self.run_async(fn, waiter.done)
        return waiter.result()

    def subscribe(
        self, buffer: int = DEFAULT_EVENT_BUFFER, on_ready: Callable[[], None] | None = None
    ) -> ThreadEvents:
        """Membership events from now on, readable from any thread."""
        events = ThreadEvents(self, buffer, on_ready)
        with self._lock:
            if self._closing or not self._thread.is_alive():
                events._end()
            else:
                self._subscribers.add(events)
        return events

    def _unsubscribe(self, events: ThreadEvents) -> None:
        with self._lock:
            self._subscribers.discard(events)

    def _schedule(self, call: Callable[[Node], None], done: Done[Any]) -> None:
        token = self._token
        if token is None:
            raise NodeClosed(f"node {self.name} is not running")

        def on_thread() -> None:
            if self._closing or self._node is None:
                _settle(done, outcome.Error(NodeClosed(f"node {self.name} stopped")))
            else:
                call(self._node)

        try:
            token.run_sync_soon(on_thread)
        except trio.RunFinishedError:
            raise NodeClosed(f"node {self.name} stopped") from None

    def _waiter(self, fn: object) -> _Waiter[Any]:
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"a blocking call of {fn!r} on the membership thread would hang")
        return _Waiter()

    # -- the membership thread ---------------------------------------------------------------

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # start-up failure or a crash: reported, not lost
            self.error = exc
            if self._up.is_set():
                log.error("membership thread of %s ended: %r", self.name, exc)
        finally:
            self._closing = True
            self._up.set()
            with self._lock:
                subscribers, self._subscribers = list(self._subscribers), set()
            for events in subscribers:
                events._end()

    async def _serve(self) -> None:
        async with (
            open_node(name=self.name, **self._options) as node,
            trio.open_nursery() as nursery,
        ):
            self._stopping = trio.Event()
            self._node, self._nursery = node, nursery
            self.address, self.bound_address = node.address, node.bound_address
            self.config, self.max_broadcast_size = node.config, node.max_broadcast_size
            nursery.start_soon(self._relay_events, node)
            self._token = trio.lowlevel.current_trio_token()
            self._up.set()
            await self._stopping.wait()
            nursery.cancel_scope.cancel()

    def _begin_stop(self) -> None:
        self._closing = True
        if self._stopping is not None:
            self._stopping.set()

    async def _relay_events(self, node: Node) -> None:
        with node.events(RELAY_BUFFER) as events:
            async for item in events:
                with self._lock:
                    subscribers = list(self._subscribers)
                for subscriber in subscribers:
                    subscriber._deliver(item)


class _Waiter(Generic[T]):
    """Where an application thread waits for one call's outcome."""

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


def _settle(done: Done[T], result: outcome.Outcome[T]) -> None:
    """Hand an outcome to its callback; a failing callback must not take the thread down."""
    try:
        done(result)
    except Exception:
        log.exception("a membership-thread callback raised")
