"""The lean driver of the membership thread: one SWIM core on a stdlib ``poll`` loop.

A membership thread does one thing, so it needs no trio: each turn of its loop is one wait
(``epoll``, else ``poll``: :mod:`~swimactors.membership.poller`) whose timeout is the
earliest of the core's next deadline, the connections' deadlines and any waiting
``leave``; then it reads what is ready, ticks the core when its deadline has passed, and
sends what the core hands back.  Calls from other threads cross by a
:class:`~swimactors.loop_thread.Crossing` (a deque, and one wake-up byte on its pipe per
batch, which the loop waits on with its sockets).  About 0.6x the trio driver's CPU per
node at a 0.2 s probe interval (docs/performance.md), so it is the fronts' default.

The fronts' awaitable calls (``set_meta``, ``leave``) run here as coroutines that await
only :class:`_Wait` (a condition or a deadline); anything else is refused.  The trio
driver (:class:`~swimactors.membership.threaded.NodeThread`) is used instead when the node
needs what only it has: TLS, or a ``transport=`` of its own (see :func:`node_thread`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

import outcome
import trio

from ..loop_thread import Cancel, Crossing, Done, _settle
from .config import Config
from .core import Swim
from .driven import (
    DEFAULT_PORT,
    DrivenNode,
    leave_timeout_for,
    new_core,
    parse_seeds,
    warn_if_open,
)
from .lean_sockets import LeanSockets
from .node import _advertised
from .poller import READ, Poller, available
from .sealing import Sealing
from .threaded import NodeOptions, NodeThread
from .transport import bind_sockets, resolve_now
from .types import MemberEvent, parse_address

__all__ = ["DRIVER_VARIABLE", "LeanNode", "LeanNodeThread", "node_thread"]

T = TypeVar("T")

DRIVER_VARIABLE = "SWIMACTORS_MEMBERSHIP_DRIVER"
"""Environment variable choosing the membership thread's driver: ``lean`` or ``trio``."""

DEFAULT_DRIVER = "lean"
"""The lean driver: about 0.6x the trio driver's CPU per node, measured (docs/performance.md)."""


def node_thread(name: str, options: NodeOptions) -> NodeThread:
    """The membership thread the fronts start: the lean driver when
    :data:`DRIVER_VARIABLE` (default :data:`DEFAULT_DRIVER`) says ``lean`` and the node
    needs nothing only trio has (TLS, a ``transport=``, a platform without ``poll``:
    Windows); else the trio driver."""
    driver = os.environ.get(DRIVER_VARIABLE, DEFAULT_DRIVER)
    if driver not in ("lean", "trio"):
        raise ValueError(f"{DRIVER_VARIABLE} is {driver!r}: use 'lean' or 'trio'")
    config = options.get("config")
    tls = config is not None and config.tls is not None
    if driver == "lean" and not tls and options.get("transport") is None and available():
        return LeanNodeThread(name, options)
    return NodeThread(name, options)


class _Wait:
    """What a coroutine on the lean thread awaits: ``ready()`` turning true (True) or
    ``deadline`` passing first (False)."""

    __slots__ = ("deadline", "ready", "result", "task")

    def __init__(self, ready: Callable[[], bool], deadline: float) -> None:
        self.ready = ready
        self.deadline = deadline
        self.result = False
        self.task: _Task[Any] | None = None

    def __await__(self) -> Generator[_Wait, None, bool]:
        if self.ready():
            return True
        yield self
        return self.result


class _Task(Generic[T]):
    """One awaitable run on the lean thread, stepped each time its :class:`_Wait` ends."""

    def __init__(self, thread: LeanNodeThread, fn: Callable[[], Awaitable[T]], done: Done[T]):
        self._thread = thread
        self._done = done
        self._steps = fn().__await__()
        self._waiting: _Wait | None = None

    def step(self) -> None:
        self._waiting = None
        try:
            waited = self._steps.send(None)
        except StopIteration as stop:
            _settle(self._done, outcome.Value(stop.value))
            return
        except Exception as exc:
            _settle(self._done, outcome.Error(exc))
            return
        if not isinstance(waited, _Wait):
            self._steps.close()
            refused = RuntimeError(f"the lean membership thread cannot wait for {waited!r}")
            _settle(self._done, outcome.Error(refused))
            return
        waited.task, self._waiting = self, waited
        self._thread._waits.append(waited)

    def cancel(self) -> None:
        """Stop waiting; ``done`` is not called."""
        if self._waiting is not None:
            self._thread._waits.remove(self._waiting)
            self._waiting = None
            self._steps.close()

    def stopped(self) -> None:
        """The loop ended while this task waited."""
        self._steps.close()
        error = self._thread.closed_error(f"{self._thread.name} stopped")
        _settle(self._done, outcome.Error(error))


class LeanNode(DrivenNode):
    """The node on the lean thread: what calls crossing to it get (the same reads and
    writes as :class:`~swimactors.membership.Node`, without trio subscriptions)."""

    def __init__(
        self,
        core: Swim,
        sockets: LeanSockets,
        leave_timeout: float,
        publish: Callable[[MemberEvent], None],
    ) -> None:
        super().__init__(core, sockets, leave_timeout)
        self._sockets = sockets
        self._publish_to = publish

    _now = staticmethod(time.monotonic)
    """The driver's clock, the loop's and its sockets' too (``time.monotonic`` itself:
    read per packet)."""

    def _publish(self, event: MemberEvent) -> None:
        self._publish_to(event)

    async def leave(self, timeout: float | None = None) -> bool:
        """Leave the cluster gracefully; True once LEFT has spread and every frame has
        been written, within ``timeout`` (default: the leave timeout)."""
        self._begin_leave()
        limit = self._leave_timeout if timeout is None else timeout
        return await _Wait(self._told, self._now() + limit)

    def _told(self) -> bool:
        """LEFT has spread, every frame has been written and none is arriving."""
        sockets = self._sockets
        return self._core.leave_finished and sockets.drained and not sockets.receiving


class LeanNodeThread(NodeThread):
    """A :class:`NodeThread` whose loop is a poller instead of trio (same calls, events,
    start and stop)."""

    def __init__(self, name: str, options: NodeOptions) -> None:
        super().__init__(name, options)
        self._waits: list[_Wait] = []
        self._stop_at = math.inf
        self._node: LeanNode | None = None

    # -- crossing (any thread) ---------------------------------------------------------------

    def spawn(self, fn: Callable[[], Awaitable[T]], done: Done[T]) -> Cancel:
        """On the loop's thread: run ``await fn()``; ``done(outcome)`` when it ends."""
        task = _Task(self, fn, done)
        task.step()
        return task.cancel

    def _ask_to_stop(self) -> None:
        crossing = self._crossing
        if crossing is not None:
            crossing.send(self._begin_stop)

    def _begin_stop(self) -> None:
        """On the loop's thread: leave (bounded by the leave timeout), then end the loop."""
        if not self._closing and self._node is not None:
            self._closing = True
            self._node._begin_leave()
            self._stop_at = self._node._now() + self._node._leave_timeout

    # -- the loop's thread -------------------------------------------------------------------

    def _serve(self) -> None:
        poller = Poller()
        crossing = Crossing()
        try:
            node, sockets = self._open_lean(poller, crossing.send)
            try:
                self._crossing = crossing
                poller.register(crossing.fileno, READ, lambda mask: crossing.run())
                self._resource = self._node = node
                self._learn(node)
                self._up.set()
                self._loop(node, sockets, poller)
            finally:
                self._closing = True
                sockets.close()  # first: calls run as the crossing closes send nothing
                if self._crossing is not None:
                    poller.unregister(self._crossing.fileno)
                for wait in self._waits:
                    assert wait.task is not None
                    wait.task.stopped()
                self._waits.clear()
        finally:
            crossing.close()
            poller.close()

    def _open_lean(
        self, poller: Poller, post: Callable[..., object]
    ) -> tuple[LeanNode, LeanSockets]:
        """Bind, build the core and the node, and join the seeds (errors: start-up's)."""
        options, name = self._options, self.node_name
        config = options.get("config") or Config.lan()
        seeds = parse_seeds(options.get("seeds", ()))
        bind = options.get("bind", f"0.0.0.0:{DEFAULT_PORT}")
        host, port = parse_address(bind, DEFAULT_PORT) if isinstance(bind, str) else bind
        try:
            family, sockaddr = resolve_now(host, int(port))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot resolve {host!r}: {exc.strerror}") from None
        udp, listener, bound = bind_sockets(family, sockaddr, (host, int(port)))
        warn_if_open(name, config, bound)
        advertise = options.get("advertise")
        address = bound
        if advertise is not None or bound[0] in ("0.0.0.0", "::"):
            address = trio.run(_advertised, advertise, bound, seeds)  # start-up only
        sealing = None if config.keyring is None else Sealing(config.keyring, config.label)
        sockets = LeanSockets(
            udp,
            listener,
            bound,
            tcp_timeout=config.tcp_timeout,
            sealing=sealing,
            poller=poller,
            post=post,
            clock=LeanNode._now,
            allowed=config.allow_list(),
        )
        core = new_core(
            name,
            address,
            config,
            options.get("rng"),
            options.get("meta", b""),
            options.get("incarnation"),
            options.get("clock", time.time),
        )
        node = LeanNode(
            core, sockets, leave_timeout_for(config, options.get("leave_timeout")), self._relay
        )
        sockets.heard_from = core.heard_from
        sockets.start(node._deliver)
        if seeds:
            node._join(seeds)
        return node, sockets

    def _loop(self, node: LeanNode, sockets: LeanSockets, poller: Poller) -> None:
        """Until stopped and told (or the leave timeout): one wait up to the earliest
        deadline, what is ready, the core's tick when due, the expired deadlines.  A
        stopping node ends only on a turn that found nothing to read: a push/pull answer
        already on its way (a join just made) teaches it a member to tell it is leaving."""
        core, clock, wait, handlers = node._core, node._now, poller.wait, poller.handlers
        waits = self._waits
        resume = 0.0
        """A core whose tick raised is next ticked a probe interval later, not in a spin."""
        while True:
            deadline = core.next_deadline()
            if deadline is None:
                deadline = math.inf
            elif deadline < resume:
                deadline = resume
            wake_at = min(deadline, sockets.deadline, self._stop_at)
            if waits:
                wake_at = min(wake_at, min(wait.deadline for wait in waits))
            timeout = -1.0 if wake_at == math.inf else max(0.0, wake_at - clock())
            if self._closing and node._told():
                timeout = 0.0  # one last look for what has arrived
            ready = wait(timeout)
            for fd, mask in ready:
                handler = handlers.get(fd)
                if handler is not None:  # (None: closed by an earlier handler)
                    handler(mask)
            now = clock()
            if now >= deadline:
                if not node._tick(now):
                    resume = now + core.config.probe_interval
                node._flush()
            if waits:
                self._end_waits(now)
            if self._closing and (now >= self._stop_at or (not ready and node._told())):
                return
            if now >= sockets.deadline:
                sockets.expire(now)

    def _end_waits(self, now: float) -> None:
        for wait in [w for w in self._waits if w.ready() or now >= w.deadline]:
            self._waits.remove(wait)
            wait.result = wait.ready()
            assert wait.task is not None
            wait.task.step()
