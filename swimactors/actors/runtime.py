"""The local actor system: spawn, stop and look up actors, the root of their supervision.

Actors form a tree under the system: ``system.spawn`` makes top-level actors, and
``ctx.spawn`` makes children.  All actor tasks live in one nursery owned by the
:func:`run_system` block; the tree is kept by the cells, so stopping an actor stops its
children first, and leaving the block stops every actor that way before it returns.

This module knows nothing of clusters: a layer above may subclass :class:`LocalSystem`
(names across nodes) and set :attr:`LocalSystem.remote` (refs to other nodes' actors).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from itertools import count
from typing import Any, Protocol, TypeVar

import trio

from ..logs import logger
from ..membership.events import DEFAULT_EVENT_BUFFER, EventHub, Subscription
from . import step_end
from .actor import Actor
from .cell import BUDGET, ActorCell, State
from .deadlines import AskDeadlines
from .errors import ActorStopped, NameTaken, SystemFailed, describe
from .mailbox import Mailbox, as_mailbox
from .message import ref_resolver
from .observe import DeadLetters, Stats
from .proxy import proxy
from .ref import DEFAULT_ASK_TIMEOUT, ActorRef, Watcher
from .routers import PoolCell, Routing, Supervisor, check_routing
from .supervision import DEFAULT_STRATEGY, Strategy, check_strategy

__all__ = [
    "DEFAULT_MAILBOX",
    "ActorSource",
    "LocalSystem",
    "RemoteRefs",
    "check_capacity",
    "check_name",
    "open_runtime",
    "run_system",
]

log = logger("swimactors.system")

ActorSource = Actor | Callable[[], Actor] | type[Any]
"""What ``spawn`` takes: an instance (a restart keeps it) or a factory (a restart calls it).
Any class passes the type check, because an ``@as_actor`` class is made an Actor where
type checkers cannot see it; one that does not build an Actor is a TypeError at spawn."""

DEFAULT_MAILBOX = 1024
MAX_NAME = 128

S = TypeVar("S", bound="LocalSystem")
T = TypeVar("T")


def _instantiate(source: ActorSource) -> tuple[Actor, Callable[[], Actor] | None]:
    if isinstance(source, Actor):
        return source, None
    if not callable(source):
        raise TypeError(f"spawn takes an Actor or a factory of one, not {source!r}")
    instance = source()
    if not isinstance(instance, Actor):
        raise TypeError(f"the factory {source!r} returned {instance!r}, not an Actor")
    return instance, source


def check_capacity(capacity: int | Mailbox) -> None:
    """A mailbox size must be at least 1, a policy valid (ValueError)."""
    as_mailbox(capacity)


def check_name(name: str) -> None:
    """An actor name is 1..128 characters, not starting with ``$``, without ``/`` or ``#``."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise ValueError(f"an actor name must be a string of 1..{MAX_NAME} characters")
    if name.startswith("$") or "/" in name or "#" in name:
        raise ValueError(f"an actor name may not start with '$' or hold '/' or '#': {name!r}")


class RemoteRefs(Protocol):
    """Who makes refs to actors on other nodes (the actor transport, when there is one)."""

    def resolve(self, node: str, path: str, uid: int) -> ActorRef: ...


class _DeadTarget:
    """Where a ref to an actor this system does not hold delivers: the dead letters."""

    def __init__(self, system: LocalSystem) -> None:
        self._system = system
        self.ref: ActorRef | None = None

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        self.tell_nowait(msg, sender)
        return trio.lowlevel.checkpoint()

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        assert self.ref is not None
        self._system.dead_letters.publish(self.ref, msg, sender)

    async def ask(self, msg: Any, sender: ActorRef | None, timeout: float | None) -> Any:
        self.tell_nowait(msg, sender)
        raise ActorStopped(f"{self.ref} is not running")

    def add_watcher(self, watcher: Watcher) -> None:
        assert self.ref is not None
        watcher.notify_terminated(self.ref, "not running")

    def remove_watcher(self, watcher: Watcher) -> None:
        pass


class LocalSystem:
    """One node's actors, their supervision root and their lookup by path."""

    def __init__(
        self,
        name: str,
        nursery: trio.Nursery,
        *,
        mailbox_size: int | Mailbox = DEFAULT_MAILBOX,
        supervision: Strategy = DEFAULT_STRATEGY,
    ) -> None:
        check_capacity(mailbox_size)
        check_strategy(supervision)
        self.name = name
        self.nursery = nursery
        self.mailbox_size = mailbox_size
        self.supervision = supervision
        self.stats = Stats()
        self.event_hub: EventHub[object] = EventHub()
        """Lifecycle events for :meth:`events` (actors, dead letters; the cluster adds more)."""
        self.dead_letters = DeadLetters(events=self.event_hub)
        self.children: dict[str, ActorCell] = {}
        self.failure: BaseException | None = None
        self.ask_deadlines = AskDeadlines()
        self.now = trio.lowlevel.current_clock().current_time
        """``trio.current_time`` bound once: one Python call where that is three (an
        ask reads it for its deadline)."""
        self.closing = False
        self.remote: RemoteRefs | None = None
        """Makes refs to other nodes' actors; None when local-only (they are dead letters)."""
        self._direct_budget = BUDGET
        self.flushes = step_end.pending_flushes()
        """Sends queued for other nodes by the running task: made when its step ends
        (one write for what the step queued, no trip to a writer task; :mod:`.step_end`)."""
        self._uids = count(1)
        self._live = 0
        self._idle: trio.Event | None = None
        self._on_failure: Callable[[], None] | None = None

    # -- public API --------------------------------------------------------------------

    async def spawn(
        self,
        actor: ActorSource,
        name: str | None = None,
        *,
        mailbox_size: int | Mailbox | None = None,
        supervision: Strategy | None = None,
    ) -> ActorRef:
        """Start a top-level actor and return its ref.

        ``actor`` is an instance or a zero-argument factory (a class works); a restart
        calls the factory again, or reuses the instance.  ``name`` must be free among the
        top-level actors (:class:`NameTaken` otherwise); ``mailbox_size`` bounds its
        mailbox (a :class:`Mailbox` also sets its overflow policy and priority);
        ``supervision`` says what a failure does (default: the system's).
        """
        return self.spawn_under(self, actor, name, mailbox_size, supervision)

    async def spawn_pool(
        self,
        actor: ActorSource,
        size: int,
        name: str | None = None,
        *,
        routing: Routing = "round-robin",
        key: Callable[[Any], Any] | None = None,
        mailbox_size: int | Mailbox | None = None,
        supervision: Strategy | None = None,
    ) -> ActorRef:
        """Start ``size`` routees from the factory ``actor`` behind one ref (see
        :mod:`.routers`): ``routing`` picks the routee per message (``key`` is the message's
        key for ``"consistent-hash"``); ``mailbox_size`` and ``supervision`` are each
        routee's.  The pool's ref is an ordinary :class:`ActorRef`."""
        if isinstance(actor, Actor) or not callable(actor):
            raise TypeError(f"a pool needs a factory of routees, not {actor!r}")
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"a pool needs a size of at least 1, not {size!r}")
        check_routing(routing, key)
        as_mailbox(self.mailbox_size if mailbox_size is None else mailbox_size)
        supervisor = Supervisor(actor, size, mailbox_size, supervision)
        ref = self.spawn_under(self, lambda: supervisor, name, None, None, cell_type=PoolCell)
        pool = ref.target
        assert isinstance(pool, PoolCell)
        pool.configure(routing, key)
        supervisor.start_routees(pool)
        await trio.lowlevel.checkpoint()
        return ref

    def proxy(self, ref: ActorRef, cls: type[T], timeout: float | None = DEFAULT_ASK_TIMEOUT) -> T:
        """``cls``'s methods as asks to ``ref``, local or remote alike (``cls`` is an
        ``@as_actor`` class; see :mod:`.proxy`)."""
        return proxy(ref, cls, timeout)

    async def find(self, name: str) -> ActorRef | None:
        """The ref of the actor holding ``name`` (``"parent/child"`` for a child); None if
        nobody does."""
        await trio.lowlevel.checkpoint()
        return self.lookup(name)

    def lookup(self, name: str) -> ActorRef | None:
        """What :meth:`find` returns, without yielding."""
        cell = self._lookup(name)
        return None if cell is None else cell.ref

    def has_actor(self, name: str) -> bool:
        """Whether :meth:`find` would return a ref for ``name`` now."""
        return self.lookup(name) is not None

    def names(self) -> list[str]:
        """The top-level actors' names, sorted."""
        return sorted(self.children)

    async def wait_for(self, name: str, timeout: float | None = None) -> ActorRef:
        """The ref for ``name`` once someone holds it; TimeoutError after ``timeout`` s."""
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                ref = self.lookup(name)
                if ref is not None:
                    return ref
                await self.names_may_change()
        raise TimeoutError(f"no actor named {name!r} appeared within {timeout} s")

    async def names_may_change(self) -> None:
        """Return when :meth:`lookup` may answer differently (locally: a short poll)."""
        await trio.sleep(0.01)

    async def stop(self, ref: ActorRef) -> None:
        """Stop a local actor (children first, then its ``on_stop``) and wait until it has."""
        cell = self.local_cell(ref)
        if cell is not None:
            cell.request_stop()
            await cell.wait_stopped()

    def events(self, buffer: int = DEFAULT_EVENT_BUFFER) -> Subscription[object]:
        """A subscription to this node's lifecycle events (:mod:`swimactors.actors.events`,
        dead letters; on a cluster system also member events, ``NameLost`` and
        ``QuorumChanged``): ``with system.events() as events: async for event in events``.
        A subscriber more than ``buffer`` events behind loses the oldest and reads an
        ``EventsDropped(count)``; the iteration ends when the system closes."""
        return self.event_hub.subscribe(buffer)

    @property
    def live_actors(self) -> int:
        """How many actors are running (or still stopping)."""
        return self._live

    # -- the runtime's side --------------------------------------------------------------

    def spawn_under(
        self,
        parent: LocalSystem | ActorCell,
        actor: ActorSource,
        name: str | None,
        mailbox_size: int | Mailbox | None,
        strategy: Strategy | None,
        cell_type: type[ActorCell] = ActorCell,
    ) -> ActorRef:
        """Start ``actor`` as a child of ``parent`` (the system at the top) and return its ref."""
        if self.closing:
            raise ActorStopped(f"system {self.name} is stopping")
        if isinstance(parent, ActorCell) and parent.state is not State.RUNNING:
            raise ActorStopped(f"{parent.ref} is stopping and cannot spawn")
        mailbox = as_mailbox(self.mailbox_size if mailbox_size is None else mailbox_size)
        if strategy is not None:
            check_strategy(strategy)
        uid = next(self._uids)
        if name is None:
            name = f"${uid}"
        else:
            check_name(name)
            if name in parent.children:
                raise NameTaken(f"the name {name!r} is taken by {parent.children[name].ref}")
        instance, factory = _instantiate(actor)
        path = name if isinstance(parent, LocalSystem) else f"{parent.ref.path}/{name}"
        cell = cell_type(
            self, parent, name, path, uid, instance, factory, strategy or self.supervision, mailbox
        )
        parent.children[name] = cell
        self._live += 1
        self.nursery.start_soon(cell.run)
        return cell.ref

    def local_cell(self, ref: ActorRef) -> ActorCell | None:
        """The cell behind ``ref`` if it is an actor of this system, else None."""
        target = ref.target
        if isinstance(target, ActorCell) and target.system is self:
            return target
        return None

    def local_cell_at(self, path: str, uid: int) -> ActorCell | None:
        """The live local actor at ``path`` with ``uid`` (not a later one at that path)."""
        cell = self._lookup(path)
        return cell if cell is not None and cell.ref.uid == uid else None

    def local_endpoint(self, path: str, uid: int, peer: str | None) -> ActorCell | None:
        """Where a message from node ``peer`` to ``path#uid`` goes: the live actor there."""
        return self.local_cell_at(path, uid)

    def resolve(self, node: str, path: str, uid: int) -> ActorRef:
        """A live ref for an address decoded from the wire (dead letters if not held)."""
        if node == self.name:
            cell = self.local_cell_at(path, uid)
            if cell is not None:
                return cell.ref
        elif self.remote is not None:
            return self.remote.resolve(node, path, uid)
        target = _DeadTarget(self)
        ref = ActorRef(node, path, uid, target)
        target.ref = ref
        return ref

    def _lookup(self, path: str) -> ActorCell | None:
        children = self.children
        cell = None
        for part in path.split("/"):
            cell = children.get(part)
            if cell is None:
                return None
            children = cell.children
        return cell

    def spend_direct_budget(self) -> bool:
        """Count one direct (same-task) ask; True when the asking task should yield now,
        so a loop of direct asks cannot starve the other tasks."""
        self._direct_budget -= 1
        if self._direct_budget > 0:
            return False
        self._direct_budget = BUDGET
        return True

    def child_failed(self, error: BaseException) -> None:
        """A top-level actor escalated: the system stops and its block raises."""
        if self.failure is None:
            self.failure = error
            log.error("system %s failing: %s escalated to the top", self.name, describe(error))
            if self._on_failure is not None:
                self._on_failure()

    def actor_finished(self) -> None:
        """A cell's task ended: count it, and wake a shutdown waiting for the last one."""
        self._live -= 1
        if self._live == 0 and self._idle is not None:
            self._idle.set()

    async def shutdown(self) -> None:
        """Stop every actor, children before parents, and wait for all of them."""
        self.closing = True
        for cell in list(self.children.values()):
            cell.request_stop()
        if self._live:
            self._idle = trio.Event()
            await self._idle.wait()


@asynccontextmanager
async def open_runtime(
    name: str = "local",
    *,
    mailbox_size: int | Mailbox = DEFAULT_MAILBOX,
    supervision: Strategy = DEFAULT_STRATEGY,
    shutdown_timeout: float = 10.0,
) -> AsyncIterator[LocalSystem]:
    """Run a local-only :class:`LocalSystem` for the life of the block (see :func:`run_system`)."""
    check_capacity(mailbox_size)
    check_strategy(supervision)

    def make(nursery: trio.Nursery) -> LocalSystem:
        return LocalSystem(name, nursery, mailbox_size=mailbox_size, supervision=supervision)

    async with run_system(make, shutdown_timeout) as system:
        yield system


@asynccontextmanager
async def run_system(
    make: Callable[[trio.Nursery], S],
    shutdown_timeout: float,
    attach: Callable[[S], None] | None = None,
) -> AsyncIterator[S]:
    """Run the system ``make`` builds on the actors' nursery; ``attach`` starts more on it.

    Leaving the block stops every actor (children first, running ``on_stop``), allowing
    ``shutdown_timeout`` seconds before cancelling what is left; no task outlives it.  If
    a failure escalates past the top-level actors the block is cancelled and
    :class:`SystemFailed` is raised from the original error.
    """
    # The actors' nursery is shielded so that cancelling the block from outside cannot
    # cancel the actors before they are stopped in order; a relay task outside the
    # shield turns that cancellation into a cancellation of the body instead.
    left = trio.Event()
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as relay:
            with trio.CancelScope(shield=True):
                async with trio.open_nursery() as nursery:
                    system = make(nursery)
                    nursery.start_soon(system.ask_deadlines.run)
                    resolver = ref_resolver.set(system.resolve)  # actor tasks inherit it
                    try:
                        if attach is not None:
                            attach(system)
                        with trio.CancelScope() as body:
                            system._on_failure = body.cancel
                            relay.start_soon(_relay_cancellation, body, left)
                            yield system
                    except BaseException as exc:
                        body_error = exc
                        raise
                    finally:
                        with trio.move_on_after(shutdown_timeout):
                            await system.shutdown()
                        nursery.cancel_scope.cancel()
                        system.event_hub.close()
                        ref_resolver.reset(resolver)
                        left.set()
    except BaseExceptionGroup as group:
        if body_error is None or _leaves(group) != [body_error]:
            raise
    else:
        body_error = None
    if body_error is not None:  # the block's own error, freed from our nurseries' groups
        raise body_error
    if system.failure is not None:
        raise SystemFailed(f"system {system.name} stopped: {describe(system.failure)}") from (
            system.failure
        )


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


async def _relay_cancellation(body: trio.CancelScope, left: trio.Event) -> None:
    """Cancel the block's body when the block is cancelled from outside."""
    try:
        await left.wait()
    except trio.Cancelled:
        body.cancel()
        raise
