"""Grains: virtual actors addressed by ``(kind, identity)``, alive wherever placement says.

``system.register_grain(kind, factory)`` makes this node a host of ``kind`` (announced in
the registry as ``$hosts/<kind>/<node>``); ``system.grain(kind, identity)`` is an
:class:`ActorRef` from any node.  Its first message activates the grain on the node the
placement picks among the hosts that are UP (rendezvous hashing by default), which records
the activation in the registry as ``$grain/<kind>/<identity>``; later messages go straight
to it.  The registry's winner rule settles two activations of one identity: the loser
forwards what it still has queued to the winner and stops without saving.  An activation
serves only while its side of a split has quorum, passivates after its kind's idle timeout
(saving its state), and is found again elsewhere once its node is DOWN or LEFT (the
registry drops its record).  See docs/grains.md.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..actors.actor import Actor
from ..actors.context import Context
from ..actors.errors import ActorError, ActorStopped
from ..actors.message import message
from ..actors.ref import DEFAULT_ASK_TIMEOUT, ActorRef, Watcher
from ..membership import Status
from ..placement import Placement, place, rendezvous
from ..registry import Change, Registration
from ..registry import NameLost as RegistryNameLost
from ..registry.codec import MAX_NAME_BYTES
from .grain_store import GrainStore, MemoryGrainStore
from .names import actor_id
from .split_brain import QuorumLost

if TYPE_CHECKING:
    from .system import System

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "GRAIN_PREFIX",
    "ActivateGrain",
    "Grain",
    "GrainClaim",
    "GrainKind",
    "GrainProbe",
    "Grains",
    "NoGrainHost",
]

log = logging.getLogger("swimactors.grains")

GRAIN_PREFIX = "$grain/"
"""Registry names of activations (and ref paths of grains): ``$grain/<kind>/<identity>``."""
HOST_PREFIX = "$hosts/"
"""Registry names of hosts: ``$hosts/<kind>/<node>``."""
DEFAULT_IDLE_TIMEOUT = 300.0
"""Seconds without a message after which an activation passivates."""
RECORD_WAIT = 5.0
"""Seconds an activation whose registry record vanished waits for it before it refuses
a message (the record returns once its node has refuted being counted DOWN)."""
RECORD_POLL = 0.05
HANDOFF_RATE = 1000.0
"""Activations a node hands off per second at most after the hosts changed."""
HANDOFF_BATCH = 50
MAX_CACHED_REFS = 65536
"""Refs to other nodes' activations kept for reuse (the cache starts over when full)."""
_REACHABLE = (Status.UP, Status.SUSPECT)
PROBE_TIMEOUT = 2.0
"""Seconds a new activation waits for each other host's answer to its probe."""


class NoGrainHost(ActorError):
    """No member that is UP hosts the grain's kind (or it is unknown here)."""


class _Missing:
    """The registry records no activation of a grain."""


RECORD_MISSING: Any = _Missing()


class Grain(Actor):
    """A virtual actor: subclass it, write ``receive``; ``identity`` and ``state`` (loaded
    from the kind's store, None the first time) are set before ``on_activate`` runs."""

    identity: str
    state: Any = None
    _activation: Activation

    async def on_activate(self) -> None:
        """Called when the grain activates, before its first message."""

    async def on_deactivate(self) -> None:
        """Called when it passivates or its node stops (not when it lost a duplicate)."""

    async def save_state(self) -> None:
        """Write ``state`` to the kind's store now (it is also written on deactivation)."""
        await self._activation.save()


@attrs.frozen
class GrainKind:
    name: str
    factory: Callable[[], Grain]
    """Builds a grain (a class works); its ``identity`` is set before ``on_activate``."""
    idle_timeout: float | None
    placement: Placement
    store: GrainStore


@message("swimactors.ActivateGrain")
class ActivateGrain:
    """Asks the node placement chose to activate a grain; answered with its ref."""

    kind: str
    identity: str


@message("swimactors.GrainProbe")
class GrainProbe:
    """Asks a host whether it holds (or is starting) an activation of a grain; ``clock``
    carries the asker's logical clock.  Answered with a :class:`GrainClaim` or None."""

    kind: str
    identity: str
    clock: int


@message("swimactors.GrainClaim")
class GrainClaim:
    """An activation and its start stamp ``(clock, node)``: the lowest stamp keeps the
    grain, every other activation of it yields (forwards to it and stops)."""

    clock: int
    node: str
    ref: ActorRef


@attrs.frozen
class _IdleCheck:
    """An activation's own timer tick: passivate if idle (local only, never on the wire)."""


@attrs.frozen
class _HandOver:
    """Queued behind everything a losing duplicate holds: stop once those are forwarded."""


class Activation(Actor):
    """The actor running one grain: state in and out, quorum checks, idle passivation,
    and forwarding to the winner after losing a duplicate."""

    def __init__(self, grains: Grains, kind: GrainKind, identity: str) -> None:
        self.grains = grains
        self.kind = kind
        self.identity = identity
        self.grain = kind.factory()
        self.grain.identity = identity
        self.grain._activation = self
        self.forward_to: ActorRef | None = None
        self.last_message = trio.current_time()
        self.active = False
        self.stale = False
        self.record_id = ""
        """How the registry names this activation once recorded."""
        """Set when its side lost quorum: it stops without saving (the serving side may
        have moved the grain on)."""

    async def on_start(self) -> None:
        kind, identity, me = self.kind.name, self.identity, self.context.self_ref
        await self.grains.wait_released(kind, identity)
        winner = await self.grains.confirm(kind, identity, me)
        if winner is not None:
            self.forward_to = winner
            self.grains.release(kind, identity, me)
            me.tell_nowait(_HandOver())
            return
        self.grains.record(kind, identity, me)
        self.record_id = actor_id(me)
        self.grain._context = self.context
        self.grain.state = await self.kind.store.load(kind, identity)
        await self.grain.on_activate()
        self.active = True
        if self.kind.idle_timeout is not None:
            period = self.kind.idle_timeout / 4
            self.context.schedule_every(period, _IdleCheck())

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if isinstance(msg, _IdleCheck):
            self._check_idle()
            return None
        if isinstance(msg, _HandOver):
            ctx.stop()
            return None
        if self.forward_to is None:
            await self._confirm_record()
        if self.forward_to is not None:
            return await self.forward_to.ask(msg)
        try:
            self.grains.system.check_quorum()
        except QuorumLost:
            self.stale = True
            self.grains.release(self.kind.name, self.identity, ctx.self_ref)
            ctx.stop()
            raise
        self.last_message = trio.current_time()
        result = self.grain.receive(msg, ctx)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _confirm_record(self) -> None:
        """Process only as the registry's activation of this grain: if another won, forward
        to it from now on; while the record is gone (this node was counted DOWN and has
        not re-registered yet) wait for it, up to :data:`RECORD_WAIT` seconds."""
        if self.grains.system.cluster is None:
            return
        mine = self.grains.registration(self.kind.name, self.identity)
        name = self.grains.system.name
        if mine is not None and mine.actor_id == self.record_id and mine.node == name:
            return  # the common case: the registry records this activation
        with trio.move_on_after(RECORD_WAIT):
            while True:
                winner = self.grains.recorded(self.kind.name, self.identity)
                if winner is None or winner == self.context.self_ref:
                    return
                if winner != RECORD_MISSING:
                    self.forward_to = winner
                    return
                await trio.sleep(RECORD_POLL)
        raise ActorStopped(f"{self.kind.name}/{self.identity}: its activation record is gone")

    def _check_idle(self) -> None:
        timeout = self.kind.idle_timeout
        cell = self.grains.system.local_cell(self.context.self_ref)
        if timeout is None or cell is None or cell.queue:
            return
        if trio.current_time() - self.last_message >= timeout:
            self.grains.release(self.kind.name, self.identity, self.context.self_ref)
            self.context.stop()

    async def save(self) -> None:
        await self.kind.store.save(self.kind.name, self.identity, self.grain.state)

    async def on_stop(self) -> None:
        try:
            if self.active and self.forward_to is None and not self.stale:
                await self.grain.on_deactivate()
                await self.save()
        finally:
            self.grains.released(self.kind.name, self.identity, self.context.self_ref)


class GrainTarget:
    """The delivery target of a grain's ref: finds (or activates) the grain per message."""

    __slots__ = ("grains", "identity", "kind")

    def __init__(self, grains: Grains, kind: str, identity: str) -> None:
        self.grains = grains
        self.kind = kind
        self.identity = identity

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        ref = self.grains.current(self.kind, self.identity)
        if ref is not None:
            return ref.target.tell(msg, sender)
        return self._tell_when_found(msg, sender)

    async def _tell_when_found(self, msg: Any, sender: ActorRef | None) -> None:
        ref = await self.grains.resolve(self.kind, self.identity, DEFAULT_ASK_TIMEOUT)
        await ref.target.tell(msg, sender)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        ref = self.grains.current(self.kind, self.identity)
        if ref is not None:
            ref.target.tell_nowait(msg, sender)
        else:
            self.grains.system.nursery.start_soon(self._tell_logged, msg, sender)

    async def _tell_logged(self, msg: Any, sender: ActorRef | None) -> None:
        try:
            await self._tell_when_found(msg, sender)
        except ActorError as exc:
            self.grains.counters_undelivered += 1
            log.info("%s/%s: a told message was lost: %s", self.kind, self.identity, exc)

    async def ask(self, msg: Any, sender: ActorRef | None, timeout: float | None) -> Any:
        """Ask the activation; once more, after finding it again, if it had just stopped
        (a message it had not started is safe to send again)."""
        find_timeout = DEFAULT_ASK_TIMEOUT if timeout is None else timeout
        for attempt in range(2):
            ref = self.grains.current(self.kind, self.identity)
            if ref is None:
                ref = await self.grains.resolve(self.kind, self.identity, find_timeout)
            try:
                return await ref.target.ask(msg, sender, timeout)
            except ActorStopped:
                if attempt:
                    raise
                await trio.sleep(0)
        raise AssertionError("unreachable")  # pragma: no cover

    def add_watcher(self, watcher: Watcher) -> None:
        raise TypeError("a grain is virtual: it has no lifetime to watch")

    def remove_watcher(self, watcher: Watcher) -> None:
        raise TypeError("a grain is virtual: it has no lifetime to watch")


class Grains:
    """One system's grain kinds, its activations and the resolution of grain refs."""

    def __init__(self, system: System, rng: random.Random | None = None) -> None:
        self.system = system
        self.rng = rng or random.Random()
        self.kinds: dict[str, GrainKind] = {}
        self.local: dict[tuple[str, str], ActorRef] = {}
        """This node's activations."""
        self._stopping: dict[tuple[str, str], trio.Event] = {}
        self._stamps: dict[ActorRef, tuple[int, str]] = {}
        """Each local activation's start stamp (logical clock, node)."""
        self._refs: dict[str, tuple[Registration, ActorRef]] = {}
        """Refs made for registry records, reused while the record is the same object."""
        self.clock = 0
        """A Lamport clock: ticks at each activation, follows every probe seen."""
        self.activations = 0
        """Activations started here (a counter)."""
        self.counters_undelivered = 0

    # -- the API ---------------------------------------------------------------------------

    def register(
        self,
        kind: str,
        factory: Callable[[], Grain],
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        placement: Placement = Placement.RENDEZVOUS,
        store: GrainStore | None = None,
    ) -> None:
        if not isinstance(kind, str) or not kind or "/" in kind:
            raise ValueError(f"a grain kind is a non-empty string without '/': {kind!r}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive or None, not {idle_timeout!r}")
        self.kinds[kind] = GrainKind(
            kind, factory, idle_timeout, placement, MemoryGrainStore() if store is None else store
        )
        cluster = self.system.cluster
        if cluster is not None:
            cluster.names.delegate.register(f"{HOST_PREFIX}{kind}/{self.system.name}", "host")

    def ref(self, kind: str, identity: str) -> ActorRef:
        """The grain's ref (no activation until a message is sent)."""
        path = f"{GRAIN_PREFIX}{kind}/{identity}"
        if "/" in kind or not kind or not identity or len(path.encode()) > MAX_NAME_BYTES:
            raise ValueError(f"not a grain address: kind {kind!r}, identity {identity!r}")
        return ActorRef(self.system.name, path, 0, GrainTarget(self, kind, identity))

    def ref_at(self, path: str) -> ActorRef | None:
        """A grain's ref decoded from the wire (its path), or None if not a grain path."""
        if not path.startswith(GRAIN_PREFIX):
            return None
        kind, _, identity = path[len(GRAIN_PREFIX) :].partition("/")
        try:
            return self.ref(kind, identity)
        except ValueError:
            return None

    def hosts(self, kind: str) -> list[str]:
        """The nodes hosting ``kind`` that are UP (this one included if it hosts it)."""
        cluster = self.system.cluster
        if cluster is None:
            return [self.system.name] if kind in self.kinds else []
        registry = cluster.names.registry
        up = {m.name for m in cluster.node.members() if m.status is Status.UP}
        return sorted(
            node for node in up if registry.lookup(f"{HOST_PREFIX}{kind}/{node}") is not None
        )

    # -- finding and activating ------------------------------------------------------------

    def current(self, kind: str, identity: str) -> ActorRef | None:
        """The grain's activation as this node knows it, if any."""
        ref = self.local.get((kind, identity))
        if ref is not None:
            return ref
        cluster = self.system.cluster
        if cluster is None:
            return None
        name = f"{GRAIN_PREFIX}{kind}/{identity}"
        registration = cluster.names.registration(name)
        if registration is None:
            return None
        cached = self._refs.get(name)
        if cached is not None and cached[0] is registration:
            return cached[1]
        ref = cluster.names.ref_for(registration)
        if ref is not None:
            if len(self._refs) >= MAX_CACHED_REFS:
                self._refs.clear()
            self._refs[name] = (registration, ref)
        return ref

    async def resolve(self, kind: str, identity: str, timeout: float) -> ActorRef:
        """The grain's activation: the known one, else activated where placement says."""
        ref = self.current(kind, identity)
        if ref is not None:
            return ref
        placement = self.kinds[kind].placement if kind in self.kinds else Placement.RENDEZVOUS
        owner = place(
            identity,
            self.hosts(kind),
            placement,
            local=self.system.name,
            rng=self.rng,
            loads=self._loads() if placement is Placement.LEAST_LOADED else None,
        )
        if owner is None:
            raise NoGrainHost(f"no member that is up hosts grains of kind {kind!r}")
        if owner == self.system.name:
            return self.activate(kind, identity)
        cluster = self.system.cluster
        assert cluster is not None
        answer = await cluster.transport.request(owner, ActivateGrain(kind, identity), timeout)
        if not isinstance(answer, ActorRef):
            raise NoGrainHost(f"{owner} answered an activation with {answer!r}")
        return answer

    def activate(self, kind: str, identity: str) -> ActorRef:
        """Activate the grain here (or return the activation that exists); also answers
        another node's :class:`ActivateGrain`.  Refused while this side has no quorum."""
        grain_kind = self.kinds.get(kind)
        if grain_kind is None:
            raise NoGrainHost(f"{self.system.name} does not host grains of kind {kind!r}")
        self.system.check_quorum()
        existing = self.current(kind, identity)
        if existing is not None:
            return existing
        ref = self.system.spawn_under(
            self.system, lambda: Activation(self, grain_kind, identity), None, None, None
        )
        self.clock += 1
        self._stamps[ref] = (self.clock, self.system.name)
        self.local[(kind, identity)] = ref
        self.activations += 1
        return ref

    async def confirm(self, kind: str, identity: str, ref: ActorRef) -> ActorRef | None:
        """Probe every other member that is UP or SUSPECT: the activation with the lowest
        start stamp among those answering, if it is not ``ref``'s (``ref`` yields to it).

        With Lamport stamps, of two activations started concurrently the later-stamped
        one always sees the earlier (a probe answered before an activation started raised
        that host's clock past the prober's stamp), so exactly one proceeds among hosts
        that can reach each other.  A host that does not answer in time is passed over.
        """
        cluster = self.system.cluster
        mine = self._stamps.get(ref)
        if cluster is None or mine is None:
            return None
        best: tuple[tuple[int, str], ActorRef] | None = None
        probe = GrainProbe(kind, identity, mine[0])

        async def ask(node: str) -> None:
            nonlocal best
            try:
                claim = await cluster.transport.request(node, probe, PROBE_TIMEOUT)
            except ActorError as exc:
                log.info("%s/%s: host %s did not answer a probe: %s", kind, identity, node, exc)
                return
            if isinstance(claim, GrainClaim):
                stamp = (claim.clock, claim.node)
                self.clock = max(self.clock, claim.clock)
                if stamp < mine and (best is None or stamp < best[0]):
                    best = (stamp, claim.ref)

        members = cluster.node.members()
        async with trio.open_nursery() as nursery:
            for member in members:  # hosts are read from the registry, which can lag
                if member.name != self.system.name and member.status in _REACHABLE:
                    nursery.start_soon(ask, member.name)
        return None if best is None else best[1]

    async def run(self) -> None:
        """Hand off activations whose owner changed whenever the hosts of a kind changed
        (one joined or left), as :meth:`hand_off` says."""
        cluster = self.system.cluster
        assert cluster is not None
        seen: dict[str, list[str]] = {}
        while True:
            await cluster.names.changed.wait()
            hosts = {kind: self.hosts(kind) for kind in self.kinds}
            if hosts != seen:
                seen = hosts
                await self.hand_off()

    async def hand_off(self) -> int:
        """Passivate each activation here whose rendezvous owner is now another host (its
        state saved; the next message activates it there), at most :data:`HANDOFF_RATE`
        a second; returns how many it passivated."""
        hosts = {kind: self.hosts(kind) for kind in self.kinds}
        passivated = 0
        for (kind, identity), ref in list(self.local.items()):
            grain_kind = self.kinds[kind]
            if grain_kind.placement is not Placement.RENDEZVOUS:
                continue
            owner = rendezvous(identity, hosts[kind])
            cell = self.system.local_cell(ref)
            if (
                owner in (None, self.system.name)
                or cell is None
                or self.local.get((kind, identity)) != ref
            ):
                continue
            if not (isinstance(cell.instance, Activation) and cell.instance.active):
                continue
            self.release(kind, identity, ref)
            cell.request_stop()
            passivated += 1
            if passivated % HANDOFF_BATCH == 0:
                await trio.sleep(HANDOFF_BATCH / HANDOFF_RATE)
        return passivated

    def step_down(self) -> None:
        """This side lost its quorum: stop every activation here without saving (the
        serving side may activate the grains meanwhile) and withdraw their records."""
        for (kind, identity), ref in list(self.local.items()):
            self.release(kind, identity, ref)
            cell = self.system.local_cell(ref)
            if cell is not None:
                if isinstance(cell.instance, Activation):
                    cell.instance.stale = True
                cell.request_stop()

    def probe(self, request: GrainProbe) -> GrainClaim | None:
        """Answer another host's :class:`GrainProbe` (and follow its clock)."""
        self.clock = max(self.clock, request.clock) + 1
        ref = self.local.get((request.kind, request.identity))
        stamp = None if ref is None else self._stamps.get(ref)
        return None if ref is None or stamp is None else GrainClaim(*stamp, ref)

    def record(self, kind: str, identity: str, ref: ActorRef) -> None:
        """Record a confirmed activation in the registry."""
        cluster = self.system.cluster
        if cluster is not None and self.local.get((kind, identity)) == ref:
            cluster.names.delegate.register(f"{GRAIN_PREFIX}{kind}/{identity}", actor_id(ref))

    def registration(self, kind: str, identity: str) -> Registration | None:
        """The registry's record of the grain (None: none, or no registry)."""
        cluster = self.system.cluster
        if cluster is None:
            return None
        return cluster.names.registration(f"{GRAIN_PREFIX}{kind}/{identity}")

    def recorded(self, kind: str, identity: str) -> ActorRef | None:
        """The activation the registry records for the grain: None when there is no
        registry (local-only), :data:`RECORD_MISSING` when it records none."""
        cluster = self.system.cluster
        if cluster is None:
            return None
        registration = cluster.names.registration(f"{GRAIN_PREFIX}{kind}/{identity}")
        ref = None if registration is None else cluster.names.ref_for(registration)
        return RECORD_MISSING if ref is None else ref

    def _loads(self) -> dict[str, int]:
        """Activations per node, as the registry records them."""
        cluster = self.system.cluster
        loads: dict[str, int] = {}
        if cluster is not None:
            for name, registration in cluster.names.registrations():
                if name.startswith(GRAIN_PREFIX):
                    loads[registration.node] = loads.get(registration.node, 0) + 1
        return loads

    # -- leaving -----------------------------------------------------------------------------

    def release(self, kind: str, identity: str, ref: ActorRef) -> None:
        """Stop routing to ``ref`` (it is deactivating): forget it and withdraw its record.
        A new activation here waits until it has stopped (see :meth:`wait_released`)."""
        key = (kind, identity)
        if self.local.get(key) == ref:
            del self.local[key]
            self._stopping[key] = trio.Event()
            cluster = self.system.cluster
            if cluster is not None:
                cluster.names.delegate.unregister(f"{GRAIN_PREFIX}{kind}/{identity}")

    def released(self, kind: str, identity: str, ref: ActorRef) -> None:
        """``ref`` has stopped (state saved)."""
        self.release(kind, identity, ref)
        self._stamps.pop(ref, None)
        event = self._stopping.pop((kind, identity), None)
        if event is not None:
            event.set()

    async def wait_released(self, kind: str, identity: str) -> None:
        event = self._stopping.get((kind, identity))
        if event is not None:
            await event.wait()

    def lost(self, change: Change) -> None:
        """Another node's activation won ours: forward what we hold to it, then stop."""
        if not isinstance(change, RegistryNameLost) or not change.name.startswith(GRAIN_PREFIX):
            return
        kind, _, identity = change.name[len(GRAIN_PREFIX) :].partition("/")
        ref = self.local.get((kind, identity))
        cell = None if ref is None else self.system.local_cell(ref)
        if ref is None or cell is None or actor_id(ref) != change.lost.actor_id:
            return
        cluster = self.system.cluster
        assert cluster is not None
        winner = cluster.names.ref_for(change.winner)
        log.warning("%s/%s: duplicate activation, %s keeps it", kind, identity, change.winner.node)
        del self.local[(kind, identity)]
        activation = cell.instance
        if isinstance(activation, Activation) and winner is not None:
            activation.forward_to = winner
            try:
                ref.tell_nowait(_HandOver())
                return
            except ActorError:
                pass
        cell.request_stop()
