"""System: owns every actor task of one node, and ``open_system`` to run one.

Actors form a tree under the system: ``system.spawn`` makes top-level actors, and
``ctx.spawn`` makes children.  All actor tasks live in one nursery owned by the
``open_system`` block; the tree is kept by the cells, so stopping an actor stops its
children first, and leaving the block stops every actor that way before it returns.

Without an address the system is local-only.  With ``bind``/``seeds`` it is also a
cluster member (:mod:`swimactors.actors.cluster`): public names go to the cluster-wide
registry and refs to other nodes' actors deliver over the actor transport.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from itertools import count
from typing import Any

import attrs
import trio

from .actors.actor import Actor
from .actors.cell import BUDGET, ActorCell, State
from .actors.cluster import META_KEY, Cluster, SpawnRequest
from .actors.deadlines import AskDeadlines
from .actors.errors import ActorStopped, NameTaken, SystemFailed, describe
from .actors.message import ref_resolver
from .actors.observe import DeadLetters, Stats
from .actors.ref import DEFAULT_ASK_TIMEOUT, ActorRef, Watcher
from .actors.supervision import DEFAULT_STRATEGY, Strategy
from .actors.transport import TCP, ActorNetwork, ActorTransport, TransportConfig
from .membership import Config, encode_meta
from .membership.node import DEFAULT_PORT, open_node
from .membership.transport import NodeTransport
from .membership.types import parse_address
from .quorum import AGE_KEY
from .quorum import Strategy as QuorumRule
from .split_brain import GatedTransport, SplitBrain, SplitBrainConfig

__all__ = ["ActorSource", "Environment", "System", "open_system"]


@attrs.frozen
class Environment:
    """Where a clustered system's network and first values come from: sockets and the
    wall clock by default; ``swimactors.sim.trio_engine`` builds a simulated one, so a
    whole actor application replays from a seed."""

    node_transport: NodeTransport | None = None
    """The membership node's datagrams and frames (default: UDP and TCP sockets)."""
    actor_network: ActorNetwork = TCP
    """How actor connections are made."""
    incarnation: int | None = None
    """The node's first incarnation, also its age for the quorum rules (default:
    ``clock()`` in milliseconds)."""
    rng: random.Random | None = None
    """The membership core's random stream."""
    clock: Callable[[], float] = time.time
    """Wall-clock seconds, for start times (the incarnation, a renounced seniority)."""

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
        self.cluster: Cluster | None = None
        """The cluster side (membership, registry, transport); None when local-only."""
        self.spawnables: dict[str, Callable[..., Actor]] = {}
        self.split_brain: SplitBrain | None = None
        """The quorum layer (``open_system(split_brain=...)``); None when off."""

    # -- public API --------------------------------------------------------------------

    async def spawn(
        self,
        actor: ActorSource | str,
        name: str | None = None,
        *,
        mailbox_size: int | None = None,
        supervision: Strategy | None = None,
        public: bool = False,
        singleton: bool = False,
    ) -> ActorRef:
        """Start a top-level actor and return its ref.

        ``actor`` is an instance or a zero-argument factory (a class works); a restart
        calls the factory again, or reuses the instance.  ``name`` must be free among the
        top-level actors (:class:`NameTaken` otherwise); ``mailbox_size`` bounds its
        mailbox; ``supervision`` says what a failure does (default: the system's).
        ``public`` registers the name cluster-wide (:class:`NameTaken` if another node
        holds it); a local-only system has no cluster, so there a public name is simply its
        local name (it still needs a ``name``).  ``singleton`` makes it a public singleton
        that fails over to the winning side of a split (``actor`` must then be a spawnable:
        its registered name or factory; needs ``open_system(split_brain=...)``).  While
        this side has lost its quorum, public spawns raise :class:`QuorumLost`.
        """
        if singleton:
            return self._spawn_singleton(actor, name, mailbox_size, supervision)
        if isinstance(actor, str):
            raise TypeError(f"spawn takes a spawnable's name only with singleton=True: {actor!r}")
        return self._spawn(actor, name, mailbox_size, supervision, public)

    def _spawn_singleton(
        self,
        actor: ActorSource | str,
        name: str | None,
        mailbox_size: int | None,
        supervision: Strategy | None,
    ) -> ActorRef:
        if name is None:
            raise ValueError("a singleton actor needs a name")
        factory = actor if isinstance(actor, str) else next(
            (key for key, value in self.spawnables.items() if value is actor), None)
        if factory is None:
            raise ValueError(f"a singleton needs a factory registered with register_spawnable, "
                             f"not {actor!r}")
        if self.cluster is None:
            return self._spawn(self.spawnables[factory], name, mailbox_size, supervision, True)
        if self.split_brain is None:
            raise ValueError("singleton actors fail over only with open_system(split_brain=...)")
        return self.split_brain.spawn_singleton(factory, name, mailbox_size, supervision)

    def _spawn(
        self,
        actor: ActorSource,
        name: str | None,
        mailbox_size: int | None,
        supervision: Strategy | None,
        public: bool,
        meta: bytes = b"",
    ) -> ActorRef:
        if public and name is None:
            raise ValueError("a public actor needs a name")
        cluster = self.cluster
        if public and cluster is not None:
            assert name is not None
            self.check_quorum()
            _check_name(name)
            holder = cluster.registration(name)
            if holder is not None and holder.node != self.name:
                raise NameTaken(f"the name {name!r} is held on node {holder.node}")
        ref = self.spawn_under(self, actor, name, mailbox_size, supervision)
        if public and cluster is not None:
            assert name is not None
            cluster.publish(name, ref, meta)
        return ref

    async def find(self, name: str) -> ActorRef | None:
        """The ref of the actor holding ``name``: cluster-wide for public names, else a
        local actor at that path (``"parent/child"`` for a child); None if nobody does."""
        await trio.lowlevel.checkpoint()
        return self._find(name)

    def _find(self, name: str) -> ActorRef | None:
        if self.cluster is not None:
            self.check_quorum()
            registration = self.cluster.registration(name)
            if registration is not None:
                return self.cluster.ref_for(registration)
        cell = self._lookup(name)
        return None if cell is None else cell.ref

    def has_actor(self, name: str) -> bool:
        """Whether :meth:`find` would return a ref for ``name`` now."""
        return self._find(name) is not None

    def names(self) -> list[str]:
        """Every public name the cluster registry knows (the local top-level names when
        the system is local-only), sorted."""
        if self.cluster is not None:
            return self.cluster.names.registry.names()
        return sorted(self.children)

    async def wait_for(self, name: str, timeout: float | None = None) -> ActorRef:
        """The ref for ``name`` once someone holds it; TimeoutError after ``timeout`` s."""
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                ref = self._find(name)
                if ref is not None:
                    return ref
                if self.cluster is not None:
                    with trio.move_on_after(0.5):  # names of local actors appear unannounced
                        await self.cluster.changed.wait()
                else:
                    await trio.sleep(0.01)
        raise TimeoutError(f"no actor named {name!r} appeared within {timeout} s")

    def register_spawnable(self, name: str, factory: Callable[..., Actor]) -> None:
        """Allow other nodes to start ``factory(*args)`` here by ``name`` (see spawn_on)."""
        if not callable(factory):
            raise TypeError(f"a spawnable must be callable, not {factory!r}")
        self.spawnables[name] = factory

    async def spawn_on(
        self,
        node: str,
        factory: str,
        args: Sequence[Any] = (),
        *,
        name: str | None = None,
        public: bool = True,
        timeout: float | None = DEFAULT_ASK_TIMEOUT,
    ) -> ActorRef:
        """Start the spawnable ``factory`` on ``node`` with plain ``args``; its ref.

        Only factories that node registered with :meth:`register_spawnable` run: nothing
        from the wire is executed.  Errors arrive as :class:`ActorFailed` (e.g. an unknown
        factory or a taken name), :class:`NodeDown` or :class:`AskTimeout`.
        """
        request = SpawnRequest(factory, list(args), name, public and name is not None)
        if node == self.name:
            await trio.lowlevel.checkpoint()
            result = self.serve_request(request)
        elif self.cluster is None:
            raise ValueError(f"a local-only system has no node {node!r}")
        else:
            result = await self.cluster.transport.request(node, request, timeout)
        assert isinstance(result, ActorRef)
        return result

    def serve_request(self, request: Any) -> Any:
        """Answer another node's request to this system itself (remote spawn)."""
        if not isinstance(request, SpawnRequest):
            raise TypeError(f"not a system request: {type(request).__qualname__}")
        factory = self.spawnables.get(request.factory)
        if factory is None:
            raise LookupError(f"no spawnable named {request.factory!r} on {self.name}")
        args = tuple(request.args)
        return self._spawn(lambda: factory(*args), request.name, None, None, request.public)

    async def stop(self, ref: ActorRef) -> None:
        """Stop a local actor (children first, then its ``on_stop``) and wait until it has."""
        cell = self.local_cell(ref)
        if cell is not None:
            cell.request_stop()
            await cell.wait_stopped()

    @property
    def quorum_state(self) -> str:
        """``"ok"``, ``"pending"`` (serving, a change not yet confirmed), ``"lost"``, or
        ``"off"`` without a split-brain rule."""
        return "off" if self.split_brain is None else self.split_brain.state

    def check_quorum(self) -> None:
        """Raise :class:`QuorumLost` if this node's side of a split lost its quorum."""
        if self.split_brain is not None:
            self.split_brain.check()

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

    def local_cell_at(self, path: str, uid: int) -> ActorCell | None:
        """The live local actor at ``path`` with ``uid`` (not a later one at that path)."""
        cell = self._lookup(path)
        return cell if cell is not None and cell.ref.uid == uid else None

    def actor_address(self, node: str) -> tuple[str, int] | None:
        return None if self.cluster is None else self.cluster.actor_address(node)

    def resolve(self, node: str, path: str, uid: int) -> ActorRef:
        """A live ref for an address decoded from the wire (dead letters if not held)."""
        if node == self.name:
            cell = self.local_cell_at(path, uid)
            if cell is not None:
                return cell.ref
        elif self.cluster is not None:
            return self.cluster.transport.resolve(node, path, uid)
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
    config: Config | None = None,
    advertise: str | None = None,
    actor_bind: str | None = None,
    actor_advertise: str | None = None,
    meta: Mapping[str, str] | None = None,
    transport: TransportConfig | None = None,
    keep_losers: bool = False,
    split_brain: QuorumRule | SplitBrainConfig | None = None,
    mailbox_size: int = DEFAULT_MAILBOX,
    supervision: Strategy = DEFAULT_STRATEGY,
    shutdown_timeout: float = 10.0,
    environment: Environment | None = None,
) -> AsyncIterator[System]:
    """Run a :class:`System` for the life of the block.

    Leaving the block stops every actor (children first, running ``on_stop``), allowing
    ``shutdown_timeout`` seconds before cancelling what is left; no task outlives it.  If
    a failure escalates past the top-level actors the block is cancelled and
    :class:`SystemFailed` is raised from the original error.  With no ``bind`` address and
    no ``seeds`` the system is local-only (node name ``name`` or ``"local"``).

    Otherwise it is also a cluster member: membership on ``bind`` (UDP + TCP, joined
    through ``seeds``, tuned by ``config``, announced at ``advertise``), the name
    registry, and the actor transport on its own TCP port: ``actor_bind`` (default: the
    bind host, any free port), announced in the member metadata as ``actor_advertise``
    (default: that port on the member's address).  ``meta`` adds metadata tags;
    ``transport`` tunes the actor connections; ``keep_losers`` keeps an actor running,
    unnamed, when another node wins its public name (by default it is stopped).
    ``split_brain`` (a :mod:`swimactors.quorum` rule or a :class:`SplitBrainConfig`)
    decides which side of a partition keeps serving (docs/split-brain.md).
    ``environment`` replaces the sockets and the wall clock (for simulation).
    """
    _check_capacity(mailbox_size)  # here, not inside the nurseries: a plain ValueError
    quorum = None if split_brain is None else SplitBrainConfig.of(split_brain)
    if bind is None and not seeds:
        if quorum is not None:
            raise ValueError("split_brain needs a cluster (bind or seeds)")
        async with _run_system(
            name or "local", mailbox_size, supervision, shutdown_timeout
        ) as system:
            yield system
        return
    bind = bind if bind is not None else f"0.0.0.0:{DEFAULT_PORT}"
    host, _ = parse_address(bind, DEFAULT_PORT)
    actor_host, actor_port = parse_address(actor_bind, 0) if actor_bind else (host, 0)
    transport_config = transport if transport is not None else TransportConfig()
    env = environment if environment is not None else Environment()
    started = int(env.clock() * 1000) if env.incarnation is None else env.incarnation
    listener, listening_port = await env.actor_network.listen(actor_host, actor_port)
    try:
        tags = dict(meta or {})
        tags[META_KEY] = actor_advertise or str(listening_port)
        if quorum is not None:  # who is oldest, the same on every node
            tags[AGE_KEY] = str(started)
        async with open_node(
            name=name or f"{socket.gethostname()}-{os.getpid()}",
            bind=bind,
            seeds=seeds,
            config=config,
            advertise=advertise,
            meta=encode_meta(tags),
            rng=env.rng,
            incarnation=started,
            transport=env.node_transport,
        ) as node:
            # The registry's epoch must be the node's start incarnation: read it before
            # the node has handled any packet (nothing has run since open_node set it).
            incarnation = node.incarnation

            def attach(system: System) -> None:
                actors = (
                    ActorTransport(system, incarnation, transport_config, env.actor_network)
                    if quorum is None
                    else GatedTransport(
                        system, incarnation, transport_config, system.check_quorum,
                        env.actor_network,
                    )
                )
                cluster = Cluster(
                    system,
                    node,
                    actors,
                    incarnation=incarnation,
                    keep_losers=keep_losers,
                )
                system.cluster = cluster
                system.nursery.start_soon(actors.serve, listener)
                system.nursery.start_soon(cluster.run)
                if quorum is not None:
                    system.split_brain = SplitBrain(system, cluster, quorum, env.clock)
                    system.nursery.start_soon(system.split_brain.run)

            async with _run_system(
                node.name, mailbox_size, supervision, shutdown_timeout, attach
            ) as system:
                yield system
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(listener)


@asynccontextmanager
async def _run_system(
    name: str,
    mailbox_size: int,
    supervision: Strategy,
    shutdown_timeout: float,
    attach: Callable[[System], None] | None = None,
) -> AsyncIterator[System]:
    """The actors' part of :func:`open_system`; ``attach`` adds the cluster side."""
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
                        name, nursery, mailbox_size=mailbox_size, supervision=supervision
                    )
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
