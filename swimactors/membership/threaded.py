"""The membership thread: one node's driver in a dedicated thread (the trio driver here;
the lean one, which the fronts use by default, in :mod:`~swimactors.membership.lean`), and
everything that crosses between that thread and the application's threads.

A node on its own thread keeps answering probes, acks and suspicions while the application
thread or event loop is blocked (a sync database call, a long computation), so a busy
process is not declared DOWN by its peers.  Only two things cross the boundary:

* calls: a function of the node (a :class:`~swimactors.membership.driven.DrivenNode`)
  run on the membership thread, its outcome handed back
  (:class:`~swimactors.loop_thread.LoopThread`): member snapshots, counters,
  ``set_meta``, broadcasts, delegates, ``leave``;
* events: copied as they happen into each subscriber's :class:`ThreadEvents`, a bounded
  buffer behind a lock that any thread may read.

The blocking front (:mod:`~swimactors.membership.blocking`) and the asyncio front
(:mod:`swimactors.aio`) are thin layers over this module.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from typing import TypedDict

import trio

from ..loop_thread import LoopThread, ThreadClosed
from .config import Config
from .driven import DrivenNode
from .events import DEFAULT_EVENT_BUFFER, EventBuffer, EventsDropped
from .node import Node, open_node
from .transport import NodeTransport
from .types import Address, MemberEvent

__all__ = ["NodeClosed", "NodeOptions", "NodeThread", "ThreadEvents"]


class NodeClosed(ThreadClosed):
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
    clock: Callable[[], float]


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
        self._buffer: EventBuffer[MemberEvent] = EventBuffer(buffer)
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


class NodeThread(LoopThread[DrivenNode]):
    """Runs ``open_node(name=name, **options)`` on a new trio loop in a daemon thread and
    relays its events to :class:`ThreadEvents` subscribers (the lean driver,
    :class:`~swimactors.membership.lean.LeanNodeThread`, runs the same node on a stdlib
    loop instead).

    :meth:`start` returns once the node is up (or raises its start-up error); :meth:`stop`
    leaves the cluster gracefully and joins the thread.  Calls made after the node stopped
    report :class:`NodeClosed` to their callback.
    """

    closed_error = NodeClosed

    def __init__(self, name: str, options: NodeOptions) -> None:
        super().__init__(f"swimactors-membership-{name}", lambda: open_node(name=name, **options))
        self.node_name = name
        self._options = options
        self._lock = threading.Lock()
        self._subscribers: set[ThreadEvents] = set()
        self.address: Address = ("", 0)
        self.bound_address: Address = ("", 0)
        self.config = Config()
        self.max_broadcast_size = 0

    def subscribe(
        self, buffer: int = DEFAULT_EVENT_BUFFER, on_ready: Callable[[], None] | None = None
    ) -> ThreadEvents:
        """Membership events from now on, readable from any thread."""
        events = ThreadEvents(self, buffer, on_ready)
        with self._lock:
            if self.running:
                self._subscribers.add(events)
            else:
                events._end()
        return events

    def _unsubscribe(self, events: ThreadEvents) -> None:
        with self._lock:
            self._subscribers.discard(events)

    def opened(self, node: DrivenNode, nursery: trio.Nursery) -> None:
        """The node is up on the thread: learn it and relay its events to the subscribers
        as they are published, so a subscriber gets exactly those from its subscription on."""
        assert isinstance(node, Node), "open_node gives the trio driver's node"
        self._learn(node)
        node._hub.relay(self._relay)

    def _learn(self, node: DrivenNode) -> None:
        """Keep the facts fixed once the node has started (read without crossing)."""
        self.address, self.bound_address = node.address, node.bound_address
        self.config, self.max_broadcast_size = node.config, node.max_broadcast_size

    def closed(self) -> None:
        """The node has stopped: end every subscription."""
        with self._lock:
            subscribers, self._subscribers = list(self._subscribers), set()
        for events in subscribers:
            events._end()

    def _relay(self, item: MemberEvent | EventsDropped) -> None:
        """Copy one event (or gap) into every subscriber's buffer."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber._deliver(item)


class OnNodeThread:
    """What every front reads of a node running on its own thread: facts fixed once it has
    started, read without crossing to that thread."""

    _thread: NodeThread

    @property
    def name(self) -> str:
        return self._thread.node_name

    @property
    def address(self) -> Address:
        """The address peers reach this node at (the real port when bound to port 0)."""
        return self._thread.address

    @property
    def bound_address(self) -> Address:
        return self._thread.bound_address

    @property
    def config(self) -> Config:
        return self._thread.config

    @property
    def max_broadcast_size(self) -> int:
        return self._thread.max_broadcast_size
