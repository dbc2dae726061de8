"""System: one node's actors as a cluster member, and ``open_system`` to run one.

A :class:`System` is the local runtime (:class:`~swimactors.actors.runtime.LocalSystem`)
plus, when it has an address, the cluster side (:class:`Cluster`): membership, the
cluster-wide names (:mod:`.names`), the actor transport on its own TCP port (announced in
the member metadata under ``"actors"``: a port on the member's address, or
``host:port``) and, with a rule, split-brain handling (:mod:`.split_brain`).  A
background task turns membership events into :class:`NodeDown` failures and
``Terminated`` notices.  Without an address the system is local-only.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import attrs
import trio

from ..actors.actor import Actor
from ..actors.errors import NameTaken
from ..actors.mailbox import Mailbox
from ..actors.message import message
from ..actors.ref import DEFAULT_ASK_TIMEOUT, ActorRef
from ..actors.routers import Routing
from ..actors.runtime import (
    DEFAULT_MAILBOX,
    ActorSource,
    LocalSystem,
    check_capacity,
    check_name,
    run_system,
)
from ..actors.supervision import DEFAULT_STRATEGY, Strategy, check_strategy
from ..actors.transport import TCP, ActorNetwork, ActorTransport, Address, TransportConfig
from ..logs import logger
from ..membership import MemberDown, MemberLeft, Status, decode_meta
from ..membership.config import Config
from ..membership.messages import valid_host
from ..membership.meta import REAP_KEY, encode_meta
from ..membership.mirror import open_mirrored_node
from ..membership.node import DEFAULT_PORT, Node, open_node
from ..membership.transport import NodeTransport
from ..membership.types import parse_address
from ..placement import Placement
from ..quorum import AGE_KEY
from ..quorum import Strategy as QuorumRule
from .ddata import DataRead, DataWrite, DistributedData
from .grain_leases import GrainLease
from .grain_store import GrainStore
from .grains import DEFAULT_IDLE_TIMEOUT, GRAIN_PREFIX, Grain, GrainProbe, Grains
from .group_routers import GroupRouterCell, RouterActor, check_group_routing
from .groups import TOPIC_GROUP, Groups, TopicDelivery, check_group
from .names import Names
from .split_brain import GatedTransport, QuorumLost, SplitBrain, SplitBrainConfig

__all__ = ["META_KEY", "Cluster", "Environment", "SpawnRequest", "System", "open_system"]

log = logger("swimactors.system")

META_KEY = "actors"
"""The member-metadata key that carries the actor transport's port."""


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
    """Wall-clock seconds, for start times (the incarnation, a renounced seniority) and the
    membership's probe turns."""


@message("swimactors.Ping")
class Ping:
    """:meth:`System.ping`: answered by the node's system itself, for a round-trip time."""


@message("swimactors.SpawnRequest")
class SpawnRequest:
    """``spawn_on``: start a registered spawnable factory with plain arguments."""

    factory: str
    args: list[Any]
    name: str | None = None
    public: bool = True


class Cluster:
    """The cluster side of one System: its membership node, names and actor transport."""

    def __init__(self, node: Node, names: Names, transport: ActorTransport) -> None:
        self.node = node
        self.names = names
        self.transport = transport

    def actor_address(self, node: str) -> Address | None:
        """Where ``node``'s actor transport listens, if it is a live member with one."""
        member = self.node.member(node)
        if member is None or member.status not in (Status.UP, Status.SUSPECT):
            return None
        value = decode_meta(member.meta).get(META_KEY)
        if value is None:
            return None
        try:
            host, port = (
                (member.address[0], int(value)) if value.isdigit() else parse_address(value)
            )
        except ValueError:
            return None
        return (host, port) if 0 < port <= 65535 and valid_host(host) else None

    async def run(self) -> None:
        """Follow membership (DOWN and LEFT members' connections and names) and keep the name
        registry until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_members)
            nursery.start_soon(self.names.run)

    async def _follow_members(self) -> None:
        hub = self.names.system.event_hub
        with self.node.events() as events:
            async for event in events:
                if hub.active:
                    hub.publish(event)
                if isinstance(event, MemberDown | MemberLeft):
                    reason = "down" if isinstance(event, MemberDown) else "left"
                    self.transport.node_down(event.member.name, reason)
                    self.names.settle()


class System(LocalSystem):
    """One node's actors, a cluster member when opened with an address; build it with
    :func:`open_system`."""

    def __init__(
        self,
        name: str,
        nursery: trio.Nursery,
        *,
        mailbox_size: int | Mailbox = DEFAULT_MAILBOX,
        supervision: Strategy = DEFAULT_STRATEGY,
    ) -> None:
        super().__init__(name, nursery, mailbox_size=mailbox_size, supervision=supervision)
        self.cluster: Cluster | None = None
        """The cluster side (membership, names, transport); None when local-only."""
        self.spawnables: dict[str, Callable[..., Actor]] = {}
        self.split_brain: SplitBrain | None = None
        """The quorum layer (``open_system(split_brain=...)``); None when off."""
        self.data = DistributedData(self, time.time)
        """The distributed data (docs/ddata.md); this node's replica alone when local-only."""
        self.grains = Grains(self)
        """The grain kinds this node hosts and its activations (docs/grains.md)."""
        self.groups = Groups(self)
        """Process groups and topics (docs/actors.md, groups and pub/sub)."""

    # -- public API --------------------------------------------------------------------

    async def spawn(
        self,
        actor: ActorSource | str,
        name: str | None = None,
        *,
        mailbox_size: int | Mailbox | None = None,
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
        if public:
            return self.spawn_public(actor, name, mailbox_size, supervision)
        return self.spawn_under(self, actor, name, mailbox_size, supervision)

    def _spawn_singleton(
        self,
        actor: ActorSource | str,
        name: str | None,
        mailbox_size: int | Mailbox | None,
        supervision: Strategy | None,
    ) -> ActorRef:
        if name is None:
            raise ValueError("a singleton actor needs a name")
        factory = (
            actor
            if isinstance(actor, str)
            else next((key for key, value in self.spawnables.items() if value is actor), None)
        )
        if factory is None:
            raise ValueError(
                f"a singleton needs a factory registered with register_spawnable, not {actor!r}"
            )
        if self.cluster is None:
            return self.spawn_public(self.spawnables[factory], name, mailbox_size, supervision)
        if self.split_brain is None:
            raise ValueError("singleton actors fail over only with open_system(split_brain=...)")
        return self.split_brain.spawn_singleton(factory, name, mailbox_size, supervision)

    def spawn_public(
        self,
        actor: ActorSource,
        name: str | None,
        mailbox_size: int | Mailbox | None = None,
        supervision: Strategy | None = None,
        meta: bytes = b"",
    ) -> ActorRef:
        """Start a top-level actor under a cluster-wide ``name`` (registry ``meta`` with it);
        the synchronous core of ``spawn(public=True)``."""
        claimed = self._claim(name)
        ref = self.spawn_under(self, actor, claimed, mailbox_size, supervision)
        self._publish(claimed, ref, meta)
        return ref

    def _claim(self, name: str | None) -> str:
        """Refuse a public ``name`` this node may not take now: none given, no quorum, an
        invalid name or one another node holds."""
        if name is None:
            raise ValueError("a public actor needs a name")
        cluster = self.cluster
        if cluster is not None:
            self.check_quorum()
            check_name(name)
            holder = cluster.names.registration(name)
            if holder is not None and holder.node != self.name:
                raise NameTaken(f"the name {name!r} is held on node {holder.node}")
        return name

    def _publish(self, name: str, ref: ActorRef, meta: bytes = b"") -> None:
        if self.cluster is not None:
            self.cluster.names.publish(name, ref, meta)

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
        public: bool = False,
    ) -> ActorRef:
        """A pool (see :meth:`LocalSystem.spawn_pool`); ``public`` registers its name
        cluster-wide, so ``find(name)`` on any node returns the pool's ref."""
        if public:
            self._claim(name)
        ref = await super().spawn_pool(
            actor,
            size,
            name,
            routing=routing,
            key=key,
            mailbox_size=mailbox_size,
            supervision=supervision,
        )
        if public:
            assert name is not None
            self._publish(name, ref)
        return ref

    async def spawn_group_router(
        self,
        group: str,
        name: str | None = None,
        *,
        routing: str = "round-robin",
        key: Callable[[Any], Any] | None = None,
        public: bool = False,
    ) -> ActorRef:
        """A ref whose messages go to the members of ``group`` across the cluster, picked
        by ``routing`` (round-robin, random, consistent-hash with ``key``, broadcast); the
        routees follow the group's members (see :mod:`.group_routers`).  ``public``
        registers ``name`` cluster-wide."""
        check_group_routing(routing, key)
        check_group(group)
        if public:
            self._claim(name)
        ref = self.spawn_under(self, RouterActor, name, None, None, cell_type=GroupRouterCell)
        router = ref.target
        assert isinstance(router, GroupRouterCell)
        router.configure(self.groups, group, routing, key)
        if public:
            assert name is not None
            self._publish(name, ref)
        await trio.lowlevel.checkpoint()
        return ref

    def lookup(self, name: str) -> ActorRef | None:
        """What :meth:`find` returns: cluster-wide for public names, else a local actor at
        that path (``"parent/child"`` for a child); None if nobody holds it, or if its
        holder is not (yet) a live member with an actor port: a name can arrive by gossip
        before its node's membership record, and a ref to it would fail with NodeDown."""
        if self.cluster is not None:
            self.check_quorum()
            registration = self.cluster.names.registration(name)
            if registration is not None:
                holder = registration.node
                if holder != self.name and self.cluster.actor_address(holder) is None:
                    return None
                return self.cluster.names.ref_for(registration)
        return super().lookup(name)

    def names(self) -> list[str]:
        """Every public name the cluster registry knows (the local top-level names when
        the system is local-only), sorted."""
        if self.cluster is not None:
            return self.cluster.names.registry.names()
        return super().names()

    async def names_may_change(self) -> None:
        """Return when the cluster's names may have changed (at most 0.5 s: local names
        appear unannounced)."""
        if self.cluster is None:
            await super().names_may_change()
            return
        with trio.move_on_after(0.5):  # names of local actors appear unannounced
            await self.cluster.names.changed.wait()

    def register_grain(
        self,
        kind: str,
        factory: Callable[[], Grain],
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        placement: Placement = Placement.RENDEZVOUS,
        store: GrainStore | None = None,
    ) -> None:
        """Host grains of ``kind`` here: ``factory()`` builds one (its ``identity`` and
        ``state`` set) when placement picks this node.  An activation passivates after
        ``idle_timeout`` seconds without a message (None: never); ``store`` keeps the
        states (default: in this process); see docs/grains.md."""
        self.grains.register(
            kind, factory, idle_timeout=idle_timeout, placement=placement, store=store
        )

    def grain(self, kind: str, identity: str) -> ActorRef:
        """The ref of grain ``identity`` of ``kind``: tell or ask it from any node and it
        is activated where placement says, on its first message."""
        return self.grains.ref(kind, identity)

    def resolve(self, node: str, path: str, uid: int) -> ActorRef:
        """A grain's path resolves to a grain ref here (uid 0: the virtual one, else this
        node's activation); anything else as usual."""
        grain = self.grains.ref_at(node, path, uid)
        return grain if grain is not None else super().resolve(node, path, uid)

    def local_endpoint(self, path: str, uid: int, peer: str | None) -> Any:
        """A message from ``peer`` to a grain's path goes to its activation here (made on
        demand for the virtual path); anything else to the actor there."""
        if path.startswith(GRAIN_PREFIX):
            return self.grains.endpoint(path, uid, peer)
        return super().local_endpoint(path, uid, peer)

    async def shutdown(self) -> None:
        """Deactivate the grains (hooks run, states saved), then stop every actor."""
        self.closing = True
        await self.grains.shutdown()
        await super().shutdown()

    async def join_group(self, group: str, ref: ActorRef) -> None:
        """Add the local actor ``ref`` to ``group`` cluster-wide (it leaves when it stops)."""
        await trio.lowlevel.checkpoint()
        self.groups.join(group, ref)

    async def leave_group(self, group: str, ref: ActorRef) -> None:
        """Take ``ref`` out of ``group`` on every node."""
        await trio.lowlevel.checkpoint()
        self.groups.leave_now(group, ref)

    def group_members(self, group: str) -> list[ActorRef]:
        """The members of ``group`` this node knows, its own first."""
        return self.groups.members(group)

    async def subscribe(self, topic: str, ref: ActorRef) -> None:
        """Deliver every message published on ``topic`` to the local actor ``ref``."""
        await self.join_group(TOPIC_GROUP + topic, ref)

    async def unsubscribe(self, topic: str, ref: ActorRef) -> None:
        """Stop ``ref`` receiving what is published to ``topic``."""
        await self.leave_group(TOPIC_GROUP + topic, ref)

    async def publish(self, topic: str, msg: Any) -> int:
        """Tell ``msg`` to every subscriber of ``topic`` on every node, at most once, in
        publish order per publisher; one transfer per other node.  Returns how many
        subscribers it was addressed to."""
        return await self.groups.publish(topic, msg)

    def register_spawnable(self, name: str, factory: Callable[..., Actor] | type[Any]) -> None:
        """Allow other nodes to start ``factory(*args)`` here by ``name`` (see spawn_on)."""
        if not callable(factory):
            raise TypeError(f"a spawnable must be callable, not {factory!r}")
        self.spawnables[name] = factory

    async def ping(self, node: str, timeout: float | None = DEFAULT_ASK_TIMEOUT) -> float:
        """Seconds for one request to ``node``'s system and its answer over the actor
        transport (``swimactors rtt``); errors as for :meth:`spawn_on`."""
        if self.cluster is None:
            raise ValueError(f"a local-only system has no node {node!r}")
        started = trio.current_time()
        await self.cluster.transport.request(node, Ping(), timeout)
        return trio.current_time() - started

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
            result = self.serve_request(request, self.name)
        elif self.cluster is None:
            raise ValueError(f"a local-only system has no node {node!r}")
        else:
            result = await self.cluster.transport.request(node, request, timeout)
        assert isinstance(result, ActorRef)
        return result

    def spawns(self, request: Any) -> bool:
        """Remote spawn is the one system request the spawn quota counts."""
        return isinstance(request, SpawnRequest)

    def serve_request(self, request: Any, peer: str) -> Any:
        """Answer node ``peer``'s request to this system itself: distributed-data reads and
        writes, grain probes and leases (only for ``peer`` itself: a forged one naming a
        member must not make an activation yield), pings, published messages for local
        subscribers, remote spawns."""
        if isinstance(request, GrainProbe | GrainLease) and request.node != peer:
            assert self.cluster is not None  # (a request from another node)
            self.cluster.transport.counters["refused_forged_requests"] += 1
            raise PermissionError(
                f"a {type(request).__name__} for {request.node!r} from {peer!r}, not that node"
            )
        if isinstance(request, DataWrite | DataRead):
            return self.data.serve(request)
        if isinstance(request, GrainProbe):
            return self.grains.probe(request)
        if isinstance(request, GrainLease):
            return self.grains.leases.serve(request)
        if isinstance(request, Ping):
            return self.name
        if isinstance(request, TopicDelivery):
            return self.groups.deliver(request)
        if not isinstance(request, SpawnRequest):
            raise TypeError(f"not a system request: {type(request).__qualname__}")
        factory = self.spawnables.get(request.factory)
        if factory is None:
            raise LookupError(f"no spawnable named {request.factory!r} on {self.name}")
        args = tuple(request.args)

        def create() -> Actor:
            return factory(*args)

        if request.public:
            return self.spawn_public(create, request.name)
        return self.spawn_under(self, create, request.name, None, None)

    @property
    def quorum_state(self) -> str:
        """``"ok"``, ``"pending"`` (serving, a change not yet confirmed), ``"lost"``, or
        ``"off"`` without a split-brain rule."""
        return "off" if self.split_brain is None else self.split_brain.state

    async def wait_serving(self, timeout: float | None = None) -> None:
        """Return once this node's side of the cluster serves: at once without a
        split-brain rule; with one, a new system starts ``lost`` until its rule agrees.
        Raises :class:`QuorumLost` if it does not serve within ``timeout`` seconds."""
        split_brain = self.split_brain
        if split_brain is None:
            return
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while not split_brain.serving:
                await split_brain.changed.wait()
            return
        raise QuorumLost(
            f"node {self.name} did not serve within {timeout:g} s: its side is "
            f"{split_brain.state} under {split_brain.tracker.strategy.spec}"
        )

    def check_quorum(self) -> None:
        """Raise :class:`QuorumLost` if this node's side of a split lost its quorum."""
        if self.split_brain is not None:
            self.split_brain.check()

    def actor_address(self, node: str) -> Address | None:
        """Where ``node``'s actor transport listens, if it is a live member with one."""
        return None if self.cluster is None else self.cluster.actor_address(node)


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
    mailbox_size: int | Mailbox = DEFAULT_MAILBOX,
    supervision: Strategy = DEFAULT_STRATEGY,
    shutdown_timeout: float = 10.0,
    environment: Environment | None = None,
    membership_thread: bool = False,
    client: bool = False,
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
    ``membership_thread`` runs the membership node on a thread of its own, so an actor
    that blocks the loop does not get this node suspected (docs/guide.md).  ``client``
    marks a short-lived member (a command-line client): peers forget it soon after it
    leaves or fails instead of listing it for their ``reap_time`` (``REAP_KEY``).
    """
    check_capacity(mailbox_size)  # here, not inside the nurseries: a plain ValueError
    check_strategy(supervision)  # likewise a plain TypeError
    quorum = None if split_brain is None else SplitBrainConfig.of(split_brain)
    if bind is None and not seeds:
        if quorum is not None:
            raise ValueError("split_brain needs a cluster (bind or seeds)")
        async with run_system(
            _maker(name or "local", mailbox_size, supervision), shutdown_timeout
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
        if client:
            tags[REAP_KEY] = "0"  # as soon as the peers find it safe
        if quorum is not None:  # who is oldest, the same on every node
            tags[AGE_KEY] = str(started)
        if membership_thread and env.node_transport is not None:
            raise ValueError("membership_thread needs the real sockets, not a node_transport")
        async with (open_mirrored_node if membership_thread else open_node)(
            name=name or f"{socket.gethostname()}-{os.getpid()}",
            bind=bind,
            seeds=seeds,
            config=config,
            advertise=advertise,
            meta=encode_meta(tags),
            rng=env.rng,
            incarnation=started,
            transport=env.node_transport,
            clock=env.clock,
        ) as running:
            node = cast(Node, running)  # a MirroredNode offers the Node interface
            # The registry's epoch must be the node's start incarnation: read it before
            # the node has handled any packet (nothing has run since open_node set it).
            incarnation = started if membership_thread else node.incarnation

            def attach(system: System) -> None:
                actors = (
                    ActorTransport(system, incarnation, transport_config, env.actor_network)
                    if quorum is None
                    else GatedTransport(
                        system,
                        incarnation,
                        transport_config,
                        system.check_quorum,
                        env.actor_network,
                    )
                )
                actors.keyring, actors.label = node.config.keyring, node.config.label
                actors.tls = node.config.tls
                actors.allowed = node.config.allow_list()
                names = Names(system, node, incarnation=incarnation, keep_losers=keep_losers)
                cluster = Cluster(node, names, actors)
                system.cluster = cluster
                system.data.join_cluster(node, incarnation, env.clock)
                names.handlers.append(system.grains.follow)
                names.handlers.append(system.groups.follow)
                system.nursery.start_soon(system.grains.run)
                system.nursery.start_soon(system.data.run)
                system.remote = actors
                system.nursery.start_soon(actors.serve, listener)
                system.nursery.start_soon(cluster.run)
                if quorum is not None:
                    system.split_brain = SplitBrain(system, cluster, quorum, env.clock)
                    system.nursery.start_soon(system.split_brain.run)

            async with run_system(
                _maker(node.name, mailbox_size, supervision), shutdown_timeout, attach
            ) as system:
                yield system
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(listener)


def _maker(
    name: str, mailbox_size: int | Mailbox, supervision: Strategy
) -> Callable[[trio.Nursery], System]:
    def make(nursery: trio.Nursery) -> System:
        return System(name, nursery, mailbox_size=mailbox_size, supervision=supervision)

    return make
