"""The blocking front: a cluster member for plain threaded code (scripts, Django, Flask,
Celery workers), its protocol running on a membership thread of its own.

``with start_node(name="a", bind="127.0.0.1:7946", seeds=[...]) as node:`` starts the node
and leaves the cluster gracefully when the block ends.  Every method may be called from any
application thread; none may be called from a delegate hook (those run on the membership
thread, see :mod:`~swimactors.membership.threaded`).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Unpack

from ..loop_thread import DEFAULT_START_TIMEOUT
from .delegate import Delegate
from .events import DEFAULT_EVENT_BUFFER, EventsDropped
from .lean import node_thread
from .threaded import NodeClosed, NodeOptions, NodeThread, OnNodeThread, ThreadEvents
from .types import Member, MemberEvent

__all__ = ["BlockingNode", "Events", "start_node"]


class Events:
    """Membership events for a blocking reader: ``for event in node.events(timeout=5)``.

    Each step waits up to ``timeout`` seconds (None: without end) for the next event; the
    loop ends when none comes in time or the node stops.  Use it as a context manager to
    unsubscribe deterministically.
    """

    def __init__(self, events: ThreadEvents, timeout: float | None) -> None:
        self._events = events
        self._timeout = timeout

    @property
    def dropped(self) -> int:
        """Total events lost because this reader fell more than its buffer behind."""
        return self._events.dropped

    def get(self, timeout: float | None = None) -> MemberEvent | EventsDropped | None:
        """The next event within ``timeout`` seconds, or None."""
        return self._events.get(timeout)

    def close(self) -> None:
        self._events.close()

    def __iter__(self) -> Iterator[MemberEvent | EventsDropped]:
        return self

    def __next__(self) -> MemberEvent | EventsDropped:
        item = self._events.get(self._timeout)
        if item is None:
            raise StopIteration
        return item

    def __enter__(self) -> Events:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class BlockingNode(OnNodeThread):
    """A running member driven by its own thread; get one from :func:`start_node`.

    Reads are snapshots taken on the membership thread; :class:`NodeClosed` is raised once
    the node has stopped.
    """

    def __init__(self, thread: NodeThread) -> None:
        self._thread = thread

    @property
    def running(self) -> bool:
        """Whether the membership thread is up (False after leave or a failure)."""
        return self._thread.running

    def members(self) -> list[Member]:
        """Every member this node knows, itself included, in any status."""
        return self._thread.call(lambda node: node.members())

    def member(self, name: str) -> Member | None:
        """The member called ``name`` as this node sees it, or None."""
        return self._thread.call(lambda node: node.member(name))

    @property
    def local_member(self) -> Member:
        """This node as a member."""
        return self._thread.call(lambda node: node.local_member)

    @property
    def incarnation(self) -> int:
        """This node's current incarnation."""
        return self._thread.call(lambda node: node.incarnation)

    @property
    def awareness(self) -> int:
        """Lifeguard local health score: 0 is healthy, higher means slower probing."""
        return self._thread.call(lambda node: node.awareness)

    @property
    def counters(self) -> collections.Counter[str]:
        """The node's counters (packets, drops by reason, ...)."""
        return self._thread.call(lambda node: node.counters)

    def events(self, timeout: float | None = None, buffer: int = DEFAULT_EVENT_BUFFER) -> Events:
        """Subscribe to membership events from now on (see :class:`Events`)."""
        return Events(self._thread.subscribe(buffer), timeout)

    def set_meta(self, meta: bytes) -> None:
        """Replace this node's metadata and announce it (ValueError if too large)."""
        self._thread.call_async(lambda node: node.set_meta(meta))

    def broadcast(self, channel: str, payload: bytes, key: str | None = None) -> None:
        """Spread ``payload`` to every member by gossip (see ``Node.broadcast``)."""
        self._thread.call(lambda node: node.broadcast(channel, payload, key))

    def register_delegate(self, channel: str, delegate: Delegate) -> None:
        """Let a layer ride on this node's gossip; its hooks run on the membership thread."""
        self._thread.call(lambda node: node.register_delegate(channel, delegate))

    def leave(self, timeout: float | None = None) -> bool:
        """Leave the cluster gracefully and stop the node; True once peers were told
        within ``timeout`` (default: the node's leave timeout)."""
        try:
            told = self._thread.call_async(lambda node: node.leave(timeout))
        except NodeClosed:
            return False
        self._thread.stop()
        return told


@contextmanager
def start_node(
    *, name: str, start_timeout: float = DEFAULT_START_TIMEOUT, **options: Unpack[NodeOptions]
) -> Iterator[BlockingNode]:
    """Run a cluster member on its own thread for the life of the block.

    Takes :func:`~swimactors.membership.open_node`'s arguments (``bind``, ``seeds``,
    ``config``, ``advertise``, ``meta``, ...).  Raises the start-up error (an address in
    use, a bad address) or TimeoutError after ``start_timeout`` seconds; leaving the block
    leaves the cluster and joins the thread.
    """
    thread = node_thread(name, options)
    thread.start(start_timeout)
    try:
        yield BlockingNode(thread)
    finally:
        thread.stop()
    if thread.error is not None:
        raise NodeClosed(f"the membership thread of {name} failed") from thread.error
