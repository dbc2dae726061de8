"""A trio program's view of a node that runs on its own membership thread.

:func:`open_mirrored_node` starts the real node on a :class:`NodeThread` and hands the
program a :class:`MirroredNode`: the :class:`~swimactors.membership.Node` interface on the
program's own trio loop, so layers written against a node (the registry, the actor
cluster, split-brain handling) run unchanged while probes and acks are answered on the
other thread, even when the program's loop is blocked (an actor's blocking ``receive``).

What crosses, and how (pushed as it changes: nothing wakes either thread on a timer):

* to the program, each a ``run_sync_soon`` on its loop: events (published there, same
  bounded subscriptions), each carrying its member's new record; the node's incarnation,
  health and own record when they change without an event (a refutation), and the names of
  departed members the node has since forgotten (reaped), both noticed after a round of
  the membership loop's own work (a trio instrument's ``before_io_wait``); delegate hooks
  (``notify_message``, ``merge_remote_state``, ``on_member_event``, run on the program's
  loop in order);
* to the node: broadcasts, delegate registrations, ``set_meta``, ``leave``;
* read from the node when asked: ``counters`` (a blocking call to the membership thread,
  which never waits for the program);
* a delegate's ``local_state`` is answered on the membership thread from a copy the
  program's loop refreshes after each of that delegate's broadcasts and merges, so a
  push/pull never waits for a blocked program (the copy may lag by one change).

A member record whose only change is a higher incarnation (it refuted a suspicion this
node never saw) keeps its older incarnation in the mirror until its next event.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, Unpack

import outcome
import trio

from ..logs import logger
from ..loop_thread import DEFAULT_START_TIMEOUT
from .core import BroadcastTooLarge
from .delegate import Delegate
from .driven import DrivenNode
from .events import DEFAULT_EVENT_BUFFER, EventHub, Subscription
from .node import Node
from .threaded import NodeClosed, NodeOptions, NodeThread, OnNodeThread
from .types import Member, MemberDown, MemberEvent, MemberLeft

__all__ = ["MirroredNode", "open_mirrored_node"]

log = logger(__name__)

T = TypeVar("T")


Health = tuple[int, int, frozenset[str]]
"""What changes without an event: incarnation, awareness, the members it fails to probe."""


def _health(node: Node) -> Health:
    return node.incarnation, node.awareness, node.unreached()


class _Watch(trio.abc.Instrument):
    """On the membership thread, after each round of its loop's work: what changed without
    an event (the node's incarnation, health and the members it fails to probe; departed
    members it has forgotten), sent
    to the program at once.  Adds no wake-up of its own."""

    def __init__(self, mirror: MirroredNode, node: Node) -> None:
        self._mirror = mirror
        self._node = node
        self._health = _health(node)
        self.departed: set[str] = set()
        """Members whose last event was DOWN or LEFT: the node forgets them in time."""
        self._reap_check = 0.0

    def before_io_wait(self, timeout: float) -> None:
        node, mirror = self._node, self._mirror
        health = _health(node)
        if health != self._health:
            self._health = health
            mirror._to_program(mirror._apply_health, health, node.local_member)
        if self.departed and trio.current_time() >= self._reap_check:
            self._reap_check = trio.current_time() + node.config.probe_interval
            forgotten = [name for name in self.departed if node.member(name) is None]
            if forgotten:
                self.departed.difference_update(forgotten)
                mirror._to_program(mirror._forget, forgotten)


class _ForwardingDelegate(Delegate):
    """Registered on the real node: runs the program's delegate on the program's loop."""

    def __init__(self, mirror: MirroredNode, delegate: Delegate) -> None:
        self._mirror = mirror
        self._delegate = delegate
        self.state = b""
        """The delegate's full state as last copied on the program's loop."""
        self._stale = False

    def notify_message(self, payload: bytes, now: float) -> None:
        self._mirror._to_program(self._merged, self._delegate.notify_message, payload)

    def merge_remote_state(self, data: bytes, join: bool, now: float) -> None:
        self._mirror._to_program(
            self._merged, lambda d, n: self._delegate.merge_remote_state(d, join, n), data
        )

    def on_member_event(self, event: MemberEvent) -> None:
        self._mirror._to_program(
            self._merged, lambda e, n: self._delegate.on_member_event(e), event
        )

    def local_state(self, join: bool) -> bytes:
        return self.state

    # -- on the program's loop --------------------------------------------------------------

    def _merged(self, hook: Callable[[Any, float], None], argument: Any) -> None:
        hook(argument, trio.current_time())
        self.refresh_soon()

    def refresh_soon(self) -> None:
        """Copy the delegate's state before the program's loop next sleeps (once)."""
        if not self._stale:
            self._stale = True
            self._mirror._token.run_sync_soon(self._mirror._guarded, self._refresh)

    def _refresh(self) -> None:
        self._stale = False
        self.state = self._delegate.local_state(False)


class MirroredNode(OnNodeThread):
    """The node's interface on the program's trio loop; the node runs on its own thread.

    Reads come from the mirror (current to the membership thread's last round of work that
    the program's loop has taken in), except ``counters``, read from the node; writes are
    sent to the membership thread in order.
    """

    def __init__(self, thread: NodeThread, token: trio.lowlevel.TrioToken) -> None:
        self._thread = thread
        self._token = token
        self._hub: EventHub[MemberEvent] = EventHub()
        self._members: dict[str, Member] = {}
        self._incarnation = 0
        self._awareness = 0
        self._unreached: frozenset[str] = frozenset()
        self._counters: collections.Counter[str] = collections.Counter()
        """The node's counters as last read (kept for reads after it stopped)."""
        self._delegates: dict[str, _ForwardingDelegate] = {}
        self._crossing_errors = 0
        self._dropped_after_stop = 0

    # -- the Node interface ----------------------------------------------------------------

    @property
    def incarnation(self) -> int:
        return self._incarnation

    @property
    def awareness(self) -> int:
        return self._awareness

    def unreached(self) -> frozenset[str]:
        return self._unreached

    @property
    def local_member(self) -> Member:
        return self._members[self.name]

    def members(self) -> list[Member]:
        return [self._members[name] for name in sorted(self._members)]

    def member(self, name: str) -> Member | None:
        return self._members.get(name)

    @property
    def counters(self) -> collections.Counter[str]:
        """The node's counters, read on the membership thread (the last ones read once it
        has stopped), and the mirror's own."""
        with contextlib.suppress(NodeClosed):
            self._counters = self._thread.call(lambda node: node.counters)
        counters = collections.Counter(self._counters)
        counters["membership_thread_errors"] = self._crossing_errors
        counters["membership_thread_closed_drops"] = self._dropped_after_stop
        return counters

    def events(self, buffer: int = DEFAULT_EVENT_BUFFER) -> Subscription[MemberEvent]:
        return self._hub.subscribe(buffer)

    def register_delegate(self, channel: str, delegate: Delegate) -> None:
        forwarding = _ForwardingDelegate(self, delegate)
        self._delegates[channel] = forwarding
        forwarding.refresh_soon()
        self._to_node(lambda node: node.register_delegate(channel, forwarding))

    def broadcast(self, channel: str, payload: bytes, key: str | None = None) -> None:
        if len(payload) > self.max_broadcast_size:
            raise BroadcastTooLarge(
                f"broadcast of {len(payload)} bytes on {channel!r} does not fit in a packet "
                f"(at most {self.max_broadcast_size} bytes on a short channel name); split it"
            )
        self._to_node(lambda node: node.broadcast(channel, payload, key))
        delegate = self._delegates.get(channel)
        if delegate is not None:
            delegate.refresh_soon()

    def sync_soon(self) -> None:
        """Swap full states with a random alive member now (see ``Swim.sync_soon``)."""
        self._to_node(lambda node: node.sync_soon())

    async def set_meta(self, meta: bytes) -> None:
        await self._on_node(lambda node: node.set_meta(meta))

    async def leave(self, timeout: float | None = None) -> bool:
        try:
            return await self._on_node(lambda node: node.leave(timeout))
        except NodeClosed:
            return False

    # -- crossings -------------------------------------------------------------------------

    def _to_node(self, fn: Callable[[DrivenNode], object]) -> None:
        """Run ``fn(node)`` on the membership thread; an error there is logged, and once
        the node has stopped the call is dropped and counted."""
        try:
            self._thread.run_sync(fn, self._report)
        except NodeClosed:
            self._dropped_after_stop += 1

    async def _on_node(self, fn: Callable[[DrivenNode], Awaitable[T]]) -> T:
        """``await fn(node)`` on the membership thread, awaited on the program's loop."""
        finished = trio.Event()
        results: list[outcome.Outcome[T]] = []

        def done(result: outcome.Outcome[T]) -> None:
            results.append(result)
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(finished.set)

        self._thread.run_async(fn, done)
        await finished.wait()
        return results[0].unwrap()

    def _report(self, result: outcome.Outcome[object]) -> None:
        if isinstance(result, outcome.Error):
            if isinstance(result.error, NodeClosed):  # sent as the node was stopping
                self._dropped_after_stop += 1
            else:
                self._crossing_errors += 1
                log.error("membership thread refused a call: %r", result.error)

    def _to_program(self, fn: Callable[..., None], *args: Any) -> None:
        """From the membership thread: ``fn(*args)`` on the program's loop, in order (an
        error there is logged: it must not reach trio's scheduler)."""
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            self._crossing_errors += 1
            log.exception("%s: a membership crossing raised on the program's loop", self.name)

    # -- on the program's loop ---------------------------------------------------------------

    def _start(self, members: list[Member], health: Health) -> None:
        self._members = {member.name: member for member in members}
        self._incarnation, self._awareness, self._unreached = health

    def _apply_health(self, health: Health, local: Member) -> None:
        self._incarnation, self._awareness, self._unreached = health
        self._members[local.name] = local

    def _forget(self, names: list[str]) -> None:
        for name in names:
            self._members.pop(name, None)

    def _publish(self, event: MemberEvent) -> None:
        self._members[event.member.name] = event.member
        self._hub.publish(event)

    # -- on the membership thread -----------------------------------------------------------

    async def _pump(self, node: DrivenNode, started: trio.Event) -> None:
        """Send the members, then events as they happen, and what changes without one
        (:class:`_Watch`); sets ``started`` (on the program's loop) once the members are
        there."""
        assert isinstance(node, Node), "the mirror runs on the trio driver (NodeThread)"
        watch = _Watch(self, node)
        with node.events() as events:
            self._send_members(node, watch)
            self._to_program(started.set)
            trio.lowlevel.add_instrument(watch)
            try:
                async for event in events:
                    if isinstance(event, MemberEvent):
                        if isinstance(event, MemberDown | MemberLeft):
                            watch.departed.add(event.member.name)
                        else:
                            watch.departed.discard(event.member.name)
                        self._to_program(self._publish, event)
                    else:  # the pump fell behind: subscribers see the gap, the mirror resyncs
                        self._to_program(self._hub.lost, event.count)
                        self._send_members(node, watch)
            finally:
                trio.lowlevel.remove_instrument(watch)

    def _send_members(self, node: Node, watch: _Watch) -> None:
        members = node.members()
        watch.departed = {m.name for m in members if not m.status.is_alive}
        self._to_program(self._start, members, _health(node))


@asynccontextmanager
async def open_mirrored_node(
    *, name: str, start_timeout: float = DEFAULT_START_TIMEOUT, **options: Unpack[NodeOptions]
) -> AsyncIterator[MirroredNode]:
    """Like :func:`~swimactors.membership.open_node` (same arguments), but the node runs
    on a membership thread of its own and the block gets its :class:`MirroredNode`.
    Leaving the block leaves the cluster and joins the thread."""
    thread = NodeThread(name, options)
    await trio.to_thread.run_sync(thread.start, start_timeout, abandon_on_cancel=False)
    mirror = MirroredNode(thread, trio.lowlevel.current_trio_token())
    try:
        started = trio.Event()
        thread.run_async(
            lambda node: mirror._pump(node, started),
            lambda result: mirror._to_program(started.set),  # it ended (the thread failed)
        )
        await started.wait()
        if not mirror._members:
            raise NodeClosed(f"the membership thread of {name} ended as it started")
        yield mirror
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(thread.stop)
        mirror._hub.close()
    if thread.error is not None:
        raise NodeClosed(f"the membership thread of {name} failed") from thread.error
