"""System: owns every actor task of one node, and ``open_system`` to run one.

Actors form a tree under the system: ``system.spawn`` makes top-level actors, and
``ctx.spawn`` makes children.  All actor tasks live in one nursery owned by the
``open_system`` block; the tree is kept by the cells, so stopping an actor stops its
children first, and leaving the block stops every actor that way before it returns.

Without an address the system is local-only.  Cluster features (``bind``/``seeds``: the
remote transport and the cluster-wide registry) attach here in a later layer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from itertools import count
from typing import Any

import trio

from .actors.actor import Actor
from .actors.cell import BUDGET, ActorCell, State
from .actors.deadlines import AskDeadlines
from .actors.errors import ActorStopped, NameTaken, SystemFailed, describe
from .actors.message import ref_resolver
from .actors.observe import DeadLetters, Stats
from .actors.ref import ActorRef, Watcher
from .actors.supervision import DEFAULT_STRATEGY, Strategy

__all__ = ["ActorSource", "System", "open_system"]

log = logging.getLogger("swimactors.system")

ActorSource = Actor | Callable[[], Actor]
"""What ``spawn`` takes: an instance (a restart keeps it) or a factory (a restart calls it)."""

DEFAULT_MAILBOX = 1024
MAX_NAME = 128


def _instantiate(source: ActorSource) -> tuple[Actor, Callable[[], Actor] | None]:
    if isinstance(source, Actor):
        return source, None
    if not callable(source):
        raise TypeError(f"spawn takes an Actor or a factory of one, not {source!r}")
    instance = source()
    if not isinstance(instance, Actor):
        raise TypeError(f"the factory {source!r} returned {instance!r}, not an Actor")
    return instance, source


def _check_capacity(capacity: int) -> None:
    if capacity < 1:
        raise ValueError(f"mailbox_size must be at least 1, not {capacity!r}")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise ValueError(f"an actor name must be a string of 1..{MAX_NAME} characters")
    if name.startswith("$") or "/" in name or "#" in name:
        raise ValueError(f"an actor name may not start with '$' or hold '/' or '#': {name!r}")


class _DeadTarget:
    """Where a ref to an actor this system does not hold delivers: the dead letters."""

    def __init__(self, system: System) -> None:
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


class System:
    """One node's actors; build it with :func:`open_system`."""

    def __init__(
        self,
        name: str,
        nursery: trio.Nursery,
        *,
        mailbox_size: int = DEFAULT_MAILBOX,
        supervision: Strategy = DEFAULT_STRATEGY,
    ) -> None:
        _check_capacity(mailbox_size)
        self.name = name
        self.nursery = nursery
        self.mailbox_size = mailbox_size
        self.supervision = supervision
        self.stats = Stats()
        self.dead_letters = DeadLetters()
        self.children: dict[str, ActorCell] = {}
        self.failure: BaseException | None = None
        self.ask_deadlines = AskDeadlines()
        self.direct_budget = BUDGET
        """Direct (same-task) asks left before the asking task yields to others."""
        self._uids = count(1)
        self._live = 0
        self._idle: trio.Event | None = None
        self.closing = False
        self._on_failure: Callable[[], None] | None = None

    # -- public API --------------------------------------------------------------------

    async def spawn(
        self,
        actor: ActorSource,
        name: str | None = None,
        *,
        mailbox_size: int | None = None,
        supervision: Strategy | None = None,
        public: bool = False,
    ) -> ActorRef:
        """Start a top-level actor and return its ref.

        ``actor`` is an instance or a zero-argument factory (a class works); a restart
        calls the factory again, or reuses the instance.  ``name`` must be free among the
        top-level actors (:class:`NameTaken` otherwise); ``mailbox_size`` bounds its
        mailbox; ``supervision`` says what a failure does (default: the system's).
        ``public`` publishes the name to the cluster; a local-only system has no cluster,
        so there a public name is simply its local name (it still needs a ``name``).
        """
        if public and name is None:
            raise ValueError("a public actor needs a name")
        return self.spawn_under(self, actor, name, mailbox_size, supervision)

    async def find(self, name: str) -> ActorRef | None:
        """The ref of the live actor at ``name`` (``"parent/child"`` for a child), or None."""
        cell = self._lookup(name)
        return None if cell is None else cell.ref

    async def stop(self, ref: ActorRef) -> None:
        """Stop a local actor (children first, then its ``on_stop``) and wait until it has."""
        cell = self.local_cell(ref)
        if cell is not None:
            cell.request_stop()
            await cell.wait_stopped()

    @property
    def live_actors(self) -> int:
        """How many actors are running (or still stopping)."""
        return self._live

    # -- the runtime's side --------------------------------------------------------------

    def spawn_under(
        self,
        parent: System | ActorCell,
        actor: ActorSource,
        name: str | None,
        mailbox_size: int | None,
        strategy: Strategy | None,
    ) -> ActorRef:
        if self.closing:
            raise ActorStopped(f"system {self.name} is stopping")
        if isinstance(parent, ActorCell) and parent.state is not State.RUNNING:
            raise ActorStopped(f"{parent.ref} is stopping and cannot spawn")
        capacity = self.mailbox_size if mailbox_size is None else mailbox_size
        _check_capacity(capacity)
        uid = next(self._uids)
        if name is None:
            name = f"${uid}"
        else:
            _check_name(name)
            if name in parent.children:
                raise NameTaken(f"the name {name!r} is taken by {parent.children[name].ref}")
        instance, factory = _instantiate(actor)
        path = name if parent is self else f"{parent.ref.path}/{name}"  # type: ignore[union-attr]
        cell = ActorCell(
            self, parent, name, path, uid, instance, factory, strategy or self.supervision, capacity
        )
        parent.children[name] = cell
        self._live += 1
        self.nursery.start_soon(cell.run)
        return cell.ref

    def local_cell(self, ref: ActorRef) -> ActorCell | None:
        target = ref.target
        if isinstance(target, ActorCell) and target.system is self:
            return target
        return None

    def resolve(self, node: str, path: str, uid: int) -> ActorRef:
        """A live ref for an address decoded from the wire (dead letters if not held)."""
        if node == self.name:
            cell = self._lookup(path)
            if cell is not None and cell.ref.uid == uid:
                return cell.ref
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

    def child_failed(self, error: BaseException) -> None:
        """A top-level actor escalated: the system stops and ``open_system`` raises."""
        if self.failure is None:
            self.failure = error
            log.error("system %s failing: %s escalated to the top", self.name, describe(error))
            if self._on_failure is not None:
                self._on_failure()

    def actor_finished(self) -> None:
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
async def open_system(
    name: str | None = None,
    bind: str | None = None,
    seeds: Sequence[str] = (),
    *,
    mailbox_size: int = DEFAULT_MAILBOX,
    supervision: Strategy = DEFAULT_STRATEGY,
    shutdown_timeout: float = 10.0,
) -> AsyncIterator[System]:
    """Run a :class:`System` for the life of the block.

    Leaving the block stops every actor (children first, running ``on_stop``), allowing
    ``shutdown_timeout`` seconds before cancelling what is left; no task outlives it.  If
    a failure escalates past the top-level actors the block is cancelled and
    :class:`SystemFailed` is raised from the original error.  With no ``bind`` address the
    system is local-only (node name ``name`` or ``"local"``).
    """
    if bind is not None or seeds:
        raise NotImplementedError("clustering (bind/seeds) needs the remote transport layer")
    _check_capacity(mailbox_size)  # here, not inside the nurseries: a plain ValueError
    # The actors' nursery is shielded so that cancelling the block from outside cannot
    # cancel the actors before they are stopped in order; a relay task outside the
    # shield turns that cancellation into a cancellation of the body instead.
    left = trio.Event()
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as relay:
            with trio.CancelScope(shield=True):
                async with trio.open_nursery() as nursery:
                    system = System(
                        name or "local", nursery, mailbox_size=mailbox_size, supervision=supervision
                    )
                    nursery.start_soon(system.ask_deadlines.run)
                    resolver = ref_resolver.set(system.resolve)  # actor tasks inherit it
                    try:
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
