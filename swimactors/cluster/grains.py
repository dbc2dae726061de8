"""Grains: virtual actors addressed by ``(kind, identity)``, alive wherever placement says.

``system.register_grain(kind, factory)`` makes this node a host of ``kind`` (announced in
the registry as ``$hosts/<kind>/<node>``); ``system.grain(kind, identity)`` is an
:class:`ActorRef` from any node.  A message to it goes to the grain's *virtual path*
``$grain/<kind>/<identity>`` on the node that holds the activation (the registry's record
``$grain/<kind>/<identity>``) or, with none recorded, on the node placement picks among the
hosts that are UP (rendezvous hashing by default); the route is cached until the registry
or the hosts change.  A message reaching a virtual path with no activation there
activates the grain: it queues while the new activation probes the other members (the
one that sent it excepted) and takes the grain only if no other activation has it.  An
activation is a small object with no task while idle.  The registry's winner rule settles
duplicates that a partition let through: the loser forwards what it still has queued to
the winner and stops without saving.  An activation serves only while its side of a
split has quorum and passivates after its kind's idle timeout (saving its state).  See
docs/grains.md.
"""

from __future__ import annotations

import enum
import inspect
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import count
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import outcome
import trio

from ..actors.errors import (
    ActorError,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    NodeDown,
    describe,
)
from ..actors.mailbox import as_mailbox
from ..actors.message import message
from ..actors.ref import DEFAULT_ASK_TIMEOUT, READY, ActorRef, Target, Watcher, current_sender
from ..actors.reply import Reply
from ..logs import logger
from ..membership import Status
from ..placement import Placement, place, rendezvous
from ..registry import Change, Registration, RegistryError
from ..registry import NameLost as RegistryNameLost
from ..registry.codec import MAX_COUNTER, MAX_NAME_BYTES
from .grain_leases import LEASE_TIME, Leases
from .grain_store import GrainStore, MemoryGrainStore
from .names import actor_id
from .split_brain import QuorumLost

if TYPE_CHECKING:
    from .system import System

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "GRAIN_PREFIX",
    "Activation",
    "Grain",
    "GrainClaim",
    "GrainContext",
    "GrainKind",
    "GrainProbe",
    "GrainStopping",
    "Grains",
    "NoGrainHost",
]

log = logger("swimactors.grains")

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
MAX_CACHED_ROUTES = 65536
"""Routes to other nodes' grains kept for reuse (the cache starts over when full)."""
_REACHABLE = (Status.UP, Status.SUSPECT)
PROBE_TIMEOUT = 2.0
"""Seconds a new activation waits for each other member's answer to its probe."""
PROBE_RETRY = 0.25
"""Seconds between probes of a member that did not answer and may still hold the grain
(it is UP or SUSPECT here, or the split-brain rule has not taken over from it)."""
PROBE_PATIENCE = 60.0
"""Seconds a new activation waits for such members before it gives up without taking
the grain (what it queued fails; the next message starts a new one)."""
MAX_CLOCK = MAX_COUNTER
"""The grains' Lamport clock stops here (2**44-1, the registry's bound); a probe claiming
more is refused: past 2**64 no probe could be encoded again, so a node's activations
would go ahead without asking anyone."""
RECORD_DELAY = 0.005
"""Seconds between an activation taking its grain and its registry record, so activations
starting close together are recorded in one delta (one broadcast)."""


class NoGrainHost(ActorError):
    """No member that is UP hosts the grain's kind (or it is unknown here)."""


class GrainContext(Protocol):
    """What a grain's ``receive`` may use of its activation (its ``ctx``): annotate
    ``ctx: GrainContext`` in a typed grain."""

    @property
    def identity(self) -> str:
        """The grain's identity (its ``kind`` is the one it was registered under)."""
        ...

    @property
    def system(self) -> System:
        """The node's system."""
        ...

    @property
    def sender(self) -> ActorRef | None:
        """Who sent the message being handled, when it came from an actor."""
        ...

    @property
    def self_ref(self) -> ActorRef:
        """The grain's ref (virtual: it reaches the grain wherever it is activated)."""
        ...

    def deactivate(self) -> None:
        """Passivate after the message in hand (state saved, hooks run)."""
        ...


class Grain:
    """A virtual actor: subclass it and write ``receive(msg, ctx)`` (plain or ``async``);
    ``identity`` and ``state`` (loaded from the kind's store, None the first time) are set
    before ``on_activate`` runs.  ``ctx`` is the grain's :class:`GrainContext`."""

    __slots__ = ("__dict__", "_activation", "identity", "state")
    identity: str
    state: Any
    _activation: Activation

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a plain ``def`` hook where it is written: the runtime awaits them."""
        super().__init_subclass__(**kwargs)
        for hook in ("on_activate", "on_deactivate"):
            method = cls.__dict__.get(hook)
            if method is not None and not inspect.iscoroutinefunction(method):
                raise TypeError(f"{cls.__qualname__}.{hook} must be `async def` (it is awaited)")

    @property
    def context(self) -> GrainContext:
        """This grain's activation (``receive`` gets it as ``ctx``)."""
        return self._activation

    def receive(self, msg: Any, ctx: GrainContext) -> Any:
        """Handle one message; its return value answers an ask."""
        raise NotImplementedError(f"{type(self).__qualname__} must define receive")

    async def on_activate(self) -> None:
        """Called when the grain activates, before its first message."""

    async def on_deactivate(self) -> None:
        """Called when it passivates or its node stops (not when it lost a duplicate)."""

    async def save_state(self) -> None:
        """Write ``state`` to the kind's store now (it is also written on deactivation)."""
        await self._activation.save()


@attrs.frozen
class GrainKind:
    """A registered grain kind: how to build one, where it lives, how long it idles and
    where its state is kept."""

    name: str
    factory: Callable[[], Grain]
    """Builds a grain (a class works); its ``identity`` is set before ``on_activate``."""
    idle_timeout: float | None
    placement: Placement
    store: GrainStore
    sync: bool
    """Whether the grains' ``receive`` is a plain ``def`` (then an idle one is asked
    directly from the asker's task, as a plain actor is)."""


@message("swimactors.GrainProbe")
class GrainProbe:
    """A new activation (``uid`` on ``node``) with start stamp ``(clock, node)`` asks a
    member whether it holds one of the same grain.  Answered with a :class:`GrainClaim` or
    None.  Activations are named by uid, not ref: the grain's path is known."""

    kind: str
    identity: str
    clock: int
    node: str
    uid: int


@message("swimactors.GrainClaim")
class GrainClaim:
    """An activation (``uid`` on ``node``), its start stamp ``(clock, node)`` and whether
    it took the grain (``confirmed``): a confirmed one keeps it; between two still probing,
    the lower stamp."""

    clock: int
    node: str
    uid: int
    confirmed: bool


@message("swimactors.GrainStopping")
class GrainStopping:
    """The answer to a :class:`GrainProbe` from a member whose activation of the grain is
    still stopping (finishing its message in hand, saving its state), or still probing
    while it does not count the prober as UP or SUSPECT: probe again."""


class Phase(enum.Enum):
    """An activation's life, from asking the other members whether they hold the grain to
    its end."""

    PROBING = "probing"
    """Asking the other members; messages queue."""
    LOADING = "loading"
    """Took the grain; loading its state and running on_activate; messages queue."""
    ACTIVE = "active"
    FORWARDING = "forwarding"
    """Yielded to another activation: forwards what it holds, then stops."""
    STOPPING = "stopping"
    DEAD = "dead"


_CONFIRMED = (Phase.LOADING, Phase.ACTIVE)
Envelope = tuple[Any, ActorRef | None, Reply | None]


class Activation:
    """One grain's activation on this node: the delivery target of its ref and the
    ``ctx`` its ``receive`` gets (a :class:`GrainContext`).  It has no task while idle:
    one is started when a message arrives and ends when the queue is empty (an idle
    plain-``def`` grain is asked directly, in the asker's task)."""

    __slots__ = (
        "_room",
        "busy",
        "forward_to",
        "grain",
        "grains",
        "kind",
        "last",
        "lessees",
        "phase",
        "queue",
        "record",
        "recorded",
        "ref",
        "requester",
        "save_on_stop",
        "sender",
        "stamp",
    )

    def __init__(
        self, grains: Grains, kind: GrainKind, grain: Grain, uid: int, stamp: int, requester: str
    ) -> None:
        self.grains = grains
        self.kind = kind
        self.grain = grain
        self.ref = ActorRef(grains.system.name, grains.path(kind.name, grain.identity), uid, self)
        self.stamp = stamp
        """The start stamp's clock (its node is this one)."""
        self.requester = requester
        """The node whose message created it ('' if none): not probed unless this node
        ever granted it a lease."""
        self.lessees: dict[str, float] | None = None
        """Members this node had granted a lease under which they own the grain, when
        it was created: each until when (they are probed even if not UP or SUSPECT)."""
        self.phase = Phase.PROBING
        self.queue: deque[Envelope] | None = None
        self.busy = False
        """A task runs its messages (or a direct ask is inside ``receive``)."""
        self.last = trio.current_time()
        self.forward_to: ActorRef | None = None
        self.record: Registration | None = None
        self.recorded = False
        """Whether it has been recorded in the registry (soon after it took the grain)."""
        self.save_on_stop = True
        self.sender: ActorRef | None = None
        """Who sent the message being handled, when it came from an actor."""
        self._room: trio.Event | None = None

    # -- what ``receive`` may use ----------------------------------------------------------

    @property
    def identity(self) -> str:
        return self.grain.identity

    @property
    def system(self) -> System:
        return self.grains.system

    @property
    def self_ref(self) -> ActorRef:
        """The grain's ref (virtual: it reaches the grain wherever it is activated)."""
        return self.grains.ref(self.kind.name, self.grain.identity)

    def deactivate(self) -> None:
        """Passivate after the message in hand (state saved, hooks run)."""
        self.grains.deactivate(self, save=True)

    async def save(self) -> None:
        await self.kind.store.save(self.kind.name, self.grain.identity, self.grain.state)

    # -- delivery (a Target, and what the transport puts messages into) --------------------

    def offer(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> bool:
        """Queue a message (and start its task if none runs); False if the queue is full."""
        if self.phase is Phase.DEAD or self.phase is Phase.STOPPING:
            self.grains.system.dead_letters.publish(self.ref, msg, sender)
            if reply is not None:
                reply.set(outcome.Error(ActorStopped(f"{self.ref} is stopped")))
            return True
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        elif len(queue) >= self.grains.capacity:
            return False
        queue.append((msg, sender, reply))
        if not self.busy:
            self._start_task()
        return True

    async def put(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> None:
        """Queue a message, waiting while the queue is full."""
        while not self.offer(msg, sender, reply):
            if self._room is None:
                self._room = trio.Event()
            await self._room.wait()

    def ask_now(self, msg: Any, sender: ActorRef | None) -> outcome.Outcome[Any] | None:
        """Answer at once if this is an idle, active plain-``def`` grain; else None."""
        if not self._direct():
            return None
        self.busy = True
        token = current_sender.set(self.ref)
        try:
            return outcome.Value(self._receive_now(msg, sender))
        except QuorumLost as exc:
            return outcome.Error(exc)
        except Exception as exc:
            return outcome.Error(self._failed(exc))
        finally:
            current_sender.reset(token)
            self.busy = False
            if self.queue or self.phase is Phase.STOPPING:  # told to stop, or raced
                self._start_task()

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        if self.offer(msg, sender, None):
            return READY
        return self.put(msg, sender, None)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        if not self.offer(msg, sender, None):
            raise MailboxFull(f"mailbox of {self.ref} is full ({self.grains.capacity} messages)")

    async def ask(self, msg: Any, sender: ActorRef | None, timeout: float | None) -> Any:
        if self.phase is Phase.DEAD or self.phase is Phase.STOPPING:
            raise ActorStopped(f"{self.ref} is stopped")
        now = self.ask_now(msg, sender)
        if now is not None:
            if self.grains.system.spend_direct_budget():
                await trio.lowlevel.checkpoint()
            return now.unwrap()
        reply = Reply(self.grains.system.stats, self.ref)
        deadline = None if timeout is None else trio.current_time() + timeout
        if deadline is None:
            await self.put(msg, sender, reply)
        else:
            with trio.move_on_at(deadline) as scope:
                await self.put(msg, sender, reply)
            if scope.cancelled_caught:
                raise MailboxFull(f"no room in the mailbox of {self.ref} within {timeout} s")
            if reply.pending:
                self.grains.system.ask_deadlines.add(deadline, reply)
        return await reply.wait()

    def add_watcher(self, watcher: Watcher) -> None:
        raise TypeError("a grain is virtual: it has no lifetime to watch")

    def remove_watcher(self, watcher: Watcher) -> None:
        raise TypeError("a grain is virtual: it has no lifetime to watch")

    # -- running messages ---------------------------------------------------------------

    def _direct(self) -> bool:
        return (
            self.kind.sync
            and self.phase is Phase.ACTIVE
            and not self.busy
            and not self.queue
            and self.grains.recorded_here(self)
        )

    def _receive_now(self, msg: Any, sender: ActorRef | None) -> Any:
        """Run ``receive`` for one message this activation may process now; on a side
        that lost its quorum it stops instead (without saving) and raises QuorumLost."""
        try:
            self.grains.system.check_quorum()
        except QuorumLost:
            self.grains.deactivate(self, save=False)
            raise
        self.last = trio.current_time()
        self.sender = sender
        try:
            return self.grain.receive(msg, self)
        finally:
            self.sender = None

    def _failed(self, exc: Exception) -> ActorFailed:
        """``receive`` raised: the asker gets it, the activation carries on (resumes)."""
        self.grains.system.stats.failures += 1
        log.warning("%s failed: %s", self.ref, describe(exc), exc_info=exc)
        return ActorFailed.from_exception(exc)

    def _start_task(self) -> None:
        self.busy = True
        self.grains.system.nursery.start_soon(self._run)

    async def _run(self) -> None:
        """Start if new, run the queue, stop if asked; the task ends when it is idle."""
        current_sender.set(self.ref)
        try:
            if self.phase is Phase.PROBING:
                await self.grains.start(self)
            queue = self.queue
            while queue and self.phase is not Phase.STOPPING and self.phase is not Phase.DEAD:
                envelope = queue.popleft()
                if self._room is not None:
                    self._room.set()
                    self._room = None
                await self._handle(*envelope)
            if self.phase is Phase.STOPPING:
                await self.grains.stopped(self)
            elif self.phase is Phase.FORWARDING:
                self.grains.released(self)  # all it held is passed on
                self.phase = Phase.DEAD
        finally:
            self.busy = False
            if not self.queue:
                self.queue = None  # an idle activation keeps no queue

    async def _handle(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> None:
        if self.phase is Phase.ACTIVE and not self.grains.recorded_here(self):
            await self.grains.confirm_record(self)
        if self.phase is Phase.FORWARDING:
            await self._forward(msg, sender, reply)
            return
        if self.phase is not Phase.ACTIVE:
            self.grains.system.dead_letters.publish(self.ref, msg, sender)
            if reply is not None:
                reply.set(outcome.Error(ActorStopped(f"{self.ref} stopped before replying")))
            return
        try:
            result = self._receive_now(msg, sender)
            if not self.kind.sync and inspect.isawaitable(result):
                self.sender = sender
                result = await result
        except QuorumLost as exc:
            if reply is not None:
                reply.set(outcome.Error(exc))
            return
        except Exception as exc:
            error = self._failed(exc)
            if reply is not None:
                reply.set(outcome.Error(error))
            return
        finally:
            self.sender = None
        if reply is not None:
            reply.set(outcome.Value(result))

    async def _forward(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> None:
        """Pass a message on to the activation this one yielded to, or along the grain's
        route if that one has stopped meanwhile (it yielded in turn, or passivated)."""
        winner = self.forward_to
        assert winner is not None
        if reply is None:
            try:
                await winner.target.tell(msg, sender)
            except ActorError as exc:
                log.info("%s: forwarding to %s failed: %s", self.ref, winner, exc)
            return
        result = await outcome.acapture(winner.target.ask, msg, sender, DEFAULT_ASK_TIMEOUT)
        if isinstance(result, outcome.Error) and isinstance(result.error, ActorStopped):
            route = self.self_ref.target
            result = await outcome.acapture(route.ask, msg, sender, DEFAULT_ASK_TIMEOUT)
        reply.set(result)

    def fail_queued(self) -> None:
        """Turn what is still queued into dead letters; fail its asks."""
        queue, self.queue = self.queue, None
        while queue:
            msg, sender, reply = queue.popleft()
            self.grains.system.dead_letters.publish(self.ref, msg, sender)
            if reply is not None:
                reply.set(outcome.Error(ActorStopped(f"{self.ref} stopped before replying")))
        if self._room is not None:
            self._room.set()
            self._room = None


class AfterRelease:
    """The route of a grain whose activation here is still stopping (finishing its message
    in hand, saving its state): a message waits for it to finish, then takes the grain's
    route.  So no new activation elsewhere, made by a message from here (which does not
    probe this node), starts while the old one still runs."""

    __slots__ = ("grain",)

    def __init__(self, grain: GrainTarget) -> None:
        self.grain = grain

    async def tell(self, msg: Any, sender: ActorRef | None) -> None:
        await self.grain.grains.wait_released(*self.grain.key)
        await self.grain.tell(msg, sender)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        kind, identity = self.grain.key
        raise MailboxFull(f"grain {kind}/{identity} is stopping here: no room until it is done")

    async def ask(self, msg: Any, sender: ActorRef | None, timeout: float | None) -> Any:
        deadline = None if timeout is None else trio.current_time() + timeout
        with trio.move_on_at(math.inf if deadline is None else deadline) as scope:
            await self.grain.grains.wait_released(*self.grain.key)
        if scope.cancelled_caught:
            raise AskTimeout(f"grain {'/'.join(self.grain.key)} was still stopping here")
        left = None if deadline is None else deadline - trio.current_time()
        return await self.grain.ask(msg, sender, left)

    def add_watcher(self, watcher: Watcher) -> None:
        raise TypeError("a grain is virtual: it has no lifetime to watch")

    def remove_watcher(self, watcher: Watcher) -> None:
        raise TypeError("a grain is virtual: it has no lifetime to watch")


class GrainTarget:
    """The delivery target of a grain's ref: the route to its activation (cached per
    grain until the registry or the hosts change), found or made on first use."""

    __slots__ = ("grains", "identity", "key", "kind")

    def __init__(self, grains: Grains, kind: str, identity: str) -> None:
        self.grains = grains
        self.kind = kind
        self.identity = identity
        self.key = (kind, identity)

    def _route(self) -> Target:
        grains = self.grains
        activation = grains.local.get(self.key)
        if activation is not None:
            return activation
        if grains.stopping(self.key):
            return AfterRelease(self)
        route = grains.routes.get(self.key)
        return route if route is not None else grains.route(self.kind, self.identity)

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        return self._route().tell(msg, sender)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        self._route().tell_nowait(msg, sender)

    async def ask(self, msg: Any, sender: ActorRef | None, timeout: float | None) -> Any:
        """Ask the activation; once more, along a fresh route, if the one it reached had
        just stopped (a message it had not started is safe to send again)."""
        for attempt in range(2):
            try:
                return await self._route().ask(msg, sender, timeout)
            except ActorStopped:
                self.grains.routes.pop(self.key, None)
                if attempt:
                    raise
                await trio.lowlevel.checkpoint()
            except NodeDown:
                self.grains.routes.pop(self.key, None)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def add_watcher(self, watcher: Watcher) -> None:
        raise TypeError("a grain is virtual: it has no lifetime to watch")

    def remove_watcher(self, watcher: Watcher) -> None:
        raise TypeError("a grain is virtual: it has no lifetime to watch")


class Grains:
    """One system's grain kinds, its activations and the routes of grain refs."""

    def __init__(self, system: System, rng: random.Random | None = None) -> None:
        self.system = system
        self.rng = rng or random.Random()
        self.kinds: dict[str, GrainKind] = {}
        self.local: dict[tuple[str, str], Activation] = {}
        """This node's activations that hold (or are taking) their grain."""
        self.leaving: dict[int, Activation] = {}
        """Activations that yielded or are stopping, by uid, until they are done."""
        self.routes: dict[tuple[str, str], Target] = {}
        """Where this node sends other nodes' grains' messages (their virtual path there)."""
        self.capacity = as_mailbox(system.mailbox_size).size
        """Messages an activation may have queued."""
        self._stopping: dict[tuple[str, str], trio.Event] = {}
        self._uids = count(1)
        self._sweeping = False
        self._unrecorded: list[Activation] = []
        """Activations to record in the registry at the end of :data:`RECORD_DELAY`."""
        self._unrecorded_logged = False
        """Whether the registry's refusal (it is full) was logged since it last took some."""
        self.clock = 0
        """A Lamport clock: ticks at each activation, follows every probe seen."""
        self.leases = Leases(self)
        """Leases that let this node's rendezvous activations skip probing."""
        self.activations = 0
        """Activations started here (a counter)."""
        self.started = trio.current_time()
        """When this system started: it takes no grain before :data:`LEASE_TIME` later
        (see :meth:`confirm`)."""

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
        """Host grains of ``kind`` here (see :meth:`System.register_grain`)."""
        if not isinstance(kind, str) or not kind or "/" in kind:
            raise ValueError(f"a grain kind is a non-empty string without '/': {kind!r}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive or None, not {idle_timeout!r}")
        sample = factory()
        if not isinstance(sample, Grain):
            raise TypeError(f"the factory {factory!r} returned {sample!r}, not a Grain")
        sync = not inspect.iscoroutinefunction(type(sample).receive)
        self.kinds[kind] = GrainKind(
            kind,
            factory,
            idle_timeout,
            placement,
            MemoryGrainStore() if store is None else store,
            sync,
        )
        cluster = self.system.cluster
        if cluster is not None:
            cluster.names.delegate.register(f"{HOST_PREFIX}{kind}/{self.system.name}", "host")

    @staticmethod
    def path(kind: str, identity: str) -> str:
        """The actor path of a grain: ``$grain/<kind>/<identity>``."""
        return f"{GRAIN_PREFIX}{kind}/{identity}"

    def ref(self, kind: str, identity: str) -> ActorRef:
        """The grain's ref (no activation until a message is sent)."""
        path = self.path(kind, identity)
        if "/" in kind or not kind or not identity or len(path.encode()) > MAX_NAME_BYTES:
            raise ValueError(f"not a grain address: kind {kind!r}, identity {identity!r}")
        return ActorRef(self.system.name, path, 0, GrainTarget(self, kind, identity))

    def ref_at(self, node: str, path: str, uid: int) -> ActorRef | None:
        """A grain ref decoded from the wire: the grain's (virtual) ref for uid 0, this
        node's activation for its own uid; None if the path is not a grain's."""
        key = self._key(path)
        if key is None:
            return None
        if uid == 0:
            try:
                return self.ref(*key)
            except ValueError:
                return None
        if node != self.system.name:
            return None  # another node's activation: an ordinary remote ref
        activation = self._exact(key, uid)
        return None if activation is None else activation.ref

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

    # -- routing -------------------------------------------------------------------------------

    def route(self, kind: str, identity: str) -> Target:
        """Where a message to the grain goes from here: its recorded activation's node,
        else the node placement picks (activating it here if that is this node)."""
        cluster = self.system.cluster
        if cluster is not None:
            registration = cluster.names.registration(self.path(kind, identity))
            node = None if registration is None else registration.node
            if node is not None and node != self.system.name and cluster.actor_address(node):
                return self._remember(kind, identity, node)
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
        return self._remember(kind, identity, owner)

    def _remember(self, kind: str, identity: str, node: str) -> Target:
        cluster = self.system.cluster
        assert cluster is not None
        target = cluster.transport.resolve(node, self.path(kind, identity), 0).target
        if len(self.routes) >= MAX_CACHED_ROUTES:
            self.routes.clear()
        self.routes[(kind, identity)] = target
        return target

    def endpoint(self, path: str, uid: int, peer: str | None) -> Activation | None:
        """Where a message from node ``peer`` to ``path#uid`` here goes: for a grain's
        virtual path (uid 0) its activation, made now if there is none; for an
        activation's own uid that activation while it lasts."""
        key = self._key(path)
        if key is None:
            return None
        if uid:
            return self._exact(key, uid)
        activation = self.local.get(key)
        if activation is not None:
            return activation
        try:
            return self.activate(*key, requester=peer or "")
        except (ActorError, QuorumLost) as exc:
            log.info("%s/%s: not activated for %s: %s", *key, peer, exc)
            return None

    def _exact(self, key: tuple[str, str], uid: int) -> Activation | None:
        activation = self.local.get(key)
        if activation is not None and activation.ref.uid == uid:
            return activation
        return self.leaving.get(uid)

    @staticmethod
    def _key(path: str) -> tuple[str, str] | None:
        if not path.startswith(GRAIN_PREFIX):
            return None
        kind, _, identity = path[len(GRAIN_PREFIX) :].partition("/")
        if not kind or not identity or len(path.encode()) > MAX_NAME_BYTES:
            return None
        return kind, identity

    # -- activating ------------------------------------------------------------------------

    def activate(self, kind: str, identity: str, requester: str = "") -> Activation:
        """A new activation of the grain here (it probes before it takes messages), or
        the one that exists.  Refused while this side has no quorum."""
        existing = self.local.get((kind, identity))
        if existing is not None:
            return existing
        grain_kind = self.kinds.get(kind)
        if grain_kind is None:
            raise NoGrainHost(f"{self.system.name} does not host grains of kind {kind!r}")
        if self.system.closing:
            raise ActorStopped(f"system {self.system.name} is stopping")
        self.system.check_quorum()
        grain = grain_kind.factory()
        grain.identity = identity
        grain.state = None
        self.clock = min(self.clock + 1, MAX_CLOCK)
        activation = Activation(self, grain_kind, grain, next(self._uids), self.clock, requester)
        grain._activation = activation
        self.local[(kind, identity)] = activation
        if self.system.cluster is not None:
            activation.lessees = self.leases.grantees(kind, identity)
            if grain_kind.placement is Placement.RENDEZVOUS:
                self.leases.want()
        self.activations += 1
        if grain_kind.idle_timeout is not None and not self._sweeping:
            self._sweeping = True
            self.system.nursery.start_soon(self._sweep)
        return activation

    async def start(self, activation: Activation) -> None:
        """Take the grain if no other activation has it (:meth:`confirm`), then load its
        state and run ``on_activate``; else yield to the one that has it."""
        kind, identity = activation.kind.name, activation.grain.identity
        await self.wait_released(kind, identity)
        winner = await self.confirm(activation)
        if activation.phase is not Phase.PROBING:
            return  # a lower-stamped activation probed us meanwhile: we yielded to it
        if winner is not None:
            self.yield_to(activation, winner)
            return
        activation.phase = Phase.LOADING
        grain = activation.grain
        try:
            grain.state = await activation.kind.store.load(kind, identity)
            await grain.on_activate()
        except Exception as exc:
            log.warning("%s failed to activate: %s", activation.ref, describe(exc), exc_info=exc)
            self.system.stats.failures += 1
            self.deactivate(activation, save=False)
            return
        if activation.phase is Phase.LOADING:
            activation.phase = Phase.ACTIVE
            self.record_soon(activation)

    async def confirm(self, activation: Activation) -> ActorRef | None:
        """Probe every other member that may serve (:meth:`unsettled`), and every member
        this node had granted a lease under which it owns the grain: the activation this one must
        yield to, if any.  None at once, without probing, when the leases allow it
        (:meth:`Leases.may_skip_probes`).

        A member answers with its own activation of the grain: a confirmed one wins; one
        still probing wins if its stamp ``(clock, node)`` is lower, and yields to ours if
        it is higher (the member tells it so as it answers).  So of two activations that
        overlap, whichever probes the other's node second sees the first, and both decide
        the same way.  The member that sent the creating message is skipped if this
        node never granted it a lease: it had no activation when it sent it, and its own
        later probe travels behind that message on the same connection (a lessee may
        skip that probe).  A member that does not answer is probed again until it
        does or no longer counts (:meth:`unsettled`; a lessee also not before its lease
        has run out), at most :data:`PROBE_PATIENCE` seconds: then the activation stops
        without taking the grain.

        A process decides nothing in its first :data:`LEASE_TIME` seconds: a previous
        process under this node's name may have granted leases it does not know of (they
        have run out by then), and until its join has shown it the members it would take
        any grain at once (no member to ask, leases from all none of them).
        """
        cluster = self.system.cluster
        if cluster is None:
            return None
        kind, identity = activation.kind.name, activation.grain.identity
        if trio.current_time() < self.started + LEASE_TIME:  # a fresh process (above)
            await trio.sleep_until(self.started + LEASE_TIME)
            if activation.phase is not Phase.PROBING:
                return None
        lessees, activation.lessees = activation.lessees or {}, None
        if not lessees and self.leases.may_skip_probes(kind, identity):
            self.leases.skipped += 1
            return None
        me = self.system.name
        mine = (activation.stamp, me)
        probe = GrainProbe(
            activation.kind.name,
            activation.grain.identity,
            activation.stamp,
            me,
            activation.ref.uid,
        )
        requester = activation.requester
        if not requester or self.leases.ever_granted(requester):
            requester = me  # probed like any other (a lessee may skip its later probe)
        others = [node for node in self.unsettled() if node != requester]
        others += [node for node in lessees if node != me and node not in others]
        best: tuple[tuple[int, int, str], ActorRef] | None = None
        patience = trio.current_time() + PROBE_PATIENCE

        async def ask(node: str) -> None:
            nonlocal best
            claim = await self._claim_of(
                activation, node, probe, lessees.get(node, -math.inf), patience
            )
            if claim is not None:
                self.clock = min(max(self.clock, claim.clock), MAX_CLOCK)
                stamp = (claim.clock, claim.node)
                if claim.confirmed or stamp < mine:
                    rank = (0 if claim.confirmed else 1, *stamp)
                    if best is None or rank < best[0]:
                        best = (
                            rank,
                            self._activation_at(claim.node, activation.ref.path, claim.uid),
                        )

        if len(others) == 1:
            await ask(others[0])  # no task for a lone probe
        elif others:
            async with trio.open_nursery() as nursery:
                for node in others:
                    nursery.start_soon(ask, node)
        return None if best is None else best[1]

    async def _claim_of(
        self,
        activation: Activation,
        node: str,
        probe: GrainProbe,
        granted_until: float,
        patience: float,
    ) -> GrainClaim | None:
        """``node``'s claim on the grain (None: it has none).  Asked again while its
        activation is still stopping, and while it does not answer but may still hold
        one that serves: it is in :meth:`unsettled`, or a lease this node granted it
        runs (until then it may take the grain without probing us).  Past ``patience``
        the activation stops instead, without taking the grain."""
        cluster = self.system.cluster
        assert cluster is not None
        while activation.phase is Phase.PROBING:
            try:
                answer = await cluster.transport.request(node, probe, PROBE_TIMEOUT)
            except ActorError as exc:
                if trio.current_time() >= granted_until and node not in self.unsettled():
                    log.info("%s: %s did not answer a probe: %s", activation.ref, node, exc)
                    return None
                answer = None
            else:
                if not isinstance(answer, GrainStopping):  # a stopping one finishes first
                    return answer if isinstance(answer, GrainClaim) else None
            if trio.current_time() >= patience:
                log.warning("%s: gave up waiting for %s to answer", activation.ref, node)
                self.deactivate(activation, save=False)
                return None
            await trio.sleep(PROBE_RETRY if answer is None else RECORD_POLL)
        return None

    def unsettled(self) -> list[str]:
        """The other members whose activations may serve, so a new activation must hear
        from them before it takes a grain (in member order: the simulator replays from
        a seed): those UP or SUSPECT here, and those the split-brain rule still counts
        (a member DOWN here before the rule took over from it may still serve on its
        side; once it took over, that side has stopped: docs/split-brain.md).  Without
        a rule a member DOWN here is passed over: both sides of a partition serve."""
        cluster = self.system.cluster
        if cluster is None:
            return []
        me = self.system.name
        split_brain = self.system.split_brain
        counted = [] if split_brain is None else [m.name for m in split_brain.tracker.members]
        names = [
            m.name
            for m in cluster.node.members()
            if m.name != me and (m.status in _REACHABLE or m.name in counted)
        ]
        return names + [n for n in counted if n != me and n not in names]

    def probe(self, request: GrainProbe) -> GrainClaim | GrainStopping | None:
        """Answer another member's :class:`GrainProbe` (and follow its clock): a probing
        activation here with a higher stamp than the prober's yields to it if the prober
        is a member UP or SUSPECT here, else makes it probe again (a made-up name must not
        make a live activation give way); one that is still stopping makes the prober
        wait.  A clock past :data:`MAX_CLOCK` is refused.
        Unless it claims the grain, the answer voids the prober's lease here (the prober
        may take the grain)."""
        if not 0 <= request.clock <= MAX_CLOCK:
            raise ValueError(f"a grain probe's clock must be within 0..{MAX_CLOCK}")
        self.clock = min(max(self.clock, request.clock) + 1, MAX_CLOCK)
        key = (request.kind, request.identity)
        activation = self.local.get(key)
        if activation is not None:
            confirmed = activation.phase in _CONFIRMED
            mine = (activation.stamp, self.system.name)
            if confirmed or mine < (request.clock, request.node):
                return GrainClaim(activation.stamp, self.system.name, activation.ref.uid, confirmed)
            if not self._counts(request.node):  # unverifiable: a made-up name, or a joiner
                self.leases.revoke(request.node)
                return GrainStopping()  # its next probe meets ours once it took the grain
            self.yield_to(
                activation, self._activation_at(request.node, activation.ref.path, request.uid)
            )
        self.leases.revoke(request.node)
        return GrainStopping() if key in self._stopping else None

    def _counts(self, node: str) -> bool:
        """Whether ``node`` is a member UP or SUSPECT here (one a probe could come from)."""
        cluster = self.system.cluster
        member = None if cluster is None else cluster.node.member(node)
        return member is not None and member.status in _REACHABLE

    def _activation_at(self, node: str, path: str, uid: int) -> ActorRef:
        """The ref of another node's activation ``uid`` of the grain at ``path``."""
        cluster = self.system.cluster
        assert cluster is not None
        return cluster.transport.resolve(node, path, uid)

    def yield_to(self, activation: Activation, winner: ActorRef) -> None:
        """Another activation has the grain: forward what this one holds to it, then stop."""
        kind, identity = activation.kind.name, activation.grain.identity
        activation.save_on_stop = False
        self.release(activation)
        activation.phase = Phase.FORWARDING
        activation.forward_to = winner
        self.leaving[activation.ref.uid] = activation
        if not activation.busy:
            activation._start_task()
        log.info("%s/%s: %s yields to %s", kind, identity, activation.ref, winner)

    # -- the registry record ---------------------------------------------------------------

    def record_soon(self, activation: Activation) -> None:
        """Record a confirmed activation in the registry :data:`RECORD_DELAY` seconds from
        now, with every other confirmed meanwhile: off the first message's path, one delta
        and one broadcast for a batch."""
        if self.system.cluster is None:
            activation.recorded = True
            return
        self._unrecorded.append(activation)
        if len(self._unrecorded) == 1:
            self.system.nursery.start_soon(self._record_batch)

    async def _record_batch(self) -> None:
        await trio.sleep(RECORD_DELAY)
        batch, self._unrecorded = self._unrecorded, []
        self.record(batch)

    def record(self, activations: list[Activation]) -> None:
        """Record those of ``activations`` still active here in the registry (one delta)."""
        cluster = self.system.cluster
        assert cluster is not None
        live = [
            a
            for a in activations
            if a.phase is Phase.ACTIVE and self.local.get((a.kind.name, a.grain.identity)) is a
        ]
        if not live:
            return
        names = cluster.names
        claims = [(a.ref.path, actor_id(a.ref), b"") for a in live]
        try:
            names.delegate.publish(names.registry.register_all(claims))
        except RegistryError as exc:  # full: they serve unrecorded, probes still guard them
            names.delegate.counters["grains_unrecorded"] += len(live)
            if not self._unrecorded_logged:
                self._unrecorded_logged = True
                log.warning("grain activations are not recorded in the registry: %s", exc)
            return
        self._unrecorded_logged = False
        for activation in live:
            activation.recorded = True
            activation.record = names.registry.lookup(activation.ref.path)  # None if DOWN

    def recorded_here(self, activation: Activation) -> bool:
        """Whether the registry still records ``activation`` as the grain's (always, with
        no registry or before it is recorded)."""
        cluster = self.system.cluster
        if cluster is None or not activation.recorded:
            return True
        mine = cluster.names.registry.lookup(activation.ref.path)
        if mine is activation.record:
            return mine is not None
        if (
            mine is not None
            and mine.node == self.system.name
            and mine.actor_id == actor_id(activation.ref)
        ):
            activation.record = mine  # re-registered (after a refuted DOWN)
            return True
        return False

    async def confirm_record(self, activation: Activation) -> None:
        """Process only as the registry's activation of the grain: if another won, forward
        to it from now on; while the record is gone (this node was counted DOWN and has
        not re-registered yet) wait for it, up to :data:`RECORD_WAIT` seconds."""
        cluster = self.system.cluster
        assert cluster is not None
        with trio.move_on_after(RECORD_WAIT):
            while activation.phase is Phase.ACTIVE and not self.recorded_here(activation):
                registration = cluster.names.registration(activation.ref.path)
                winner = None if registration is None else cluster.names.ref_for(registration)
                if winner is not None and winner != activation.ref:
                    self.yield_to(activation, winner)
                    return
                await trio.sleep(RECORD_POLL)
            return
        self.deactivate(activation, save=False)

    def registration(self, kind: str, identity: str) -> Registration | None:
        """The registry's record of the grain (None: none, or no registry)."""
        cluster = self.system.cluster
        return None if cluster is None else cluster.names.registration(self.path(kind, identity))

    def _loads(self) -> dict[str, int]:
        """Activations per node, as the registry records them."""
        cluster = self.system.cluster
        return {} if cluster is None else cluster.names.registry.count_by_node(GRAIN_PREFIX)

    def follow(self, change: Change) -> None:
        """A registry change: forget the route of a grain whose record changed, all routes
        when the hosts changed; a duplicate that lost asks the winner's node about it."""
        name = change.name
        if name.startswith(HOST_PREFIX):
            self.routes.clear()
            return
        key = self._key(name)
        if key is None:
            return
        self.routes.pop(key, None)
        if not isinstance(change, RegistryNameLost):
            return
        activation = self.local.get(key)
        if activation is None or actor_id(activation.ref) != change.lost.actor_id:
            return
        self.system.nursery.start_soon(self._settle_duplicate, activation, change.winner.node)

    async def _settle_duplicate(self, activation: Activation, node: str) -> None:
        """The registry ranks another node's record of our grain first: yield to that
        activation if its node confirms it holds it (a record withdrawn there, whose
        removal has not reached us yet, must not make a live activation give way)."""
        cluster = self.system.cluster
        assert cluster is not None
        kind, identity = activation.kind.name, activation.grain.identity
        probe = GrainProbe(kind, identity, activation.stamp, self.system.name, activation.ref.uid)
        try:
            claim = await cluster.transport.request(node, probe, PROBE_TIMEOUT)
        except ActorError as exc:
            log.info("%s: %s did not answer about its record: %s", activation.ref, node, exc)
            return
        if (
            isinstance(claim, GrainClaim)
            and claim.confirmed
            and self.local.get((kind, identity)) is activation
        ):
            log.warning("%s/%s: duplicate activation, %s keeps it", kind, identity, node)
            self.yield_to(
                activation, self._activation_at(claim.node, activation.ref.path, claim.uid)
            )

    # -- passivating and leaving -----------------------------------------------------------

    def deactivate(self, activation: Activation, *, save: bool) -> None:
        """Stop ``activation`` after the message in hand: with ``save``, run
        ``on_deactivate`` and save its state; its queue fails (asks are retried)."""
        if activation.phase in (Phase.STOPPING, Phase.DEAD):
            return
        if activation.phase is not Phase.ACTIVE or not save:
            activation.save_on_stop = False
        self.release(activation)
        activation.phase = Phase.STOPPING
        self.leaving[activation.ref.uid] = activation
        if not activation.busy:
            activation._start_task()

    async def stopped(self, activation: Activation) -> None:
        """The last of a stopping activation, in its task: hooks, state, bookkeeping."""
        activation.fail_queued()
        try:
            if activation.save_on_stop:
                await activation.grain.on_deactivate()
                await activation.save()
        except Exception as exc:
            self.system.stats.failures += 1
            log.warning("%s: deactivation failed: %s", activation.ref, describe(exc))
        finally:
            activation.phase = Phase.DEAD
            self.released(activation)

    def release(self, activation: Activation) -> None:
        """Stop routing to ``activation``: forget it and withdraw its record.  If it will
        save its state, a new activation here waits for that (see :meth:`wait_released`);
        one that yielded or stepped down saves nothing, so nothing waits for it."""
        key = (activation.kind.name, activation.grain.identity)
        if self.local.get(key) is activation:
            del self.local[key]
            if activation.save_on_stop:
                self._stopping[key] = trio.Event()
            cluster = self.system.cluster
            if cluster is not None and activation.recorded:
                cluster.names.delegate.unregister(self.path(*key))

    def released(self, activation: Activation) -> None:
        """``activation`` is done (state saved)."""
        self.release(activation)
        self.leaving.pop(activation.ref.uid, None)
        if activation.save_on_stop:
            event = self._stopping.pop((activation.kind.name, activation.grain.identity), None)
            if event is not None:
                event.set()

    def held_keys(self) -> list[tuple[str, str]]:
        """Every grain with an activation here in any phase, or one still stopping."""
        return [
            *self.local,
            *self._stopping,
            *((a.kind.name, a.grain.identity) for a in self.leaving.values()),
        ]

    def stopping(self, key: tuple[str, str]) -> bool:
        """Whether an activation of grain ``key`` here is still stopping (and saving)."""
        return key in self._stopping

    async def wait_released(self, kind: str, identity: str) -> None:
        """Return once this node's activation of the grain, if stopping, has stopped."""
        event = self._stopping.get((kind, identity))
        if event is not None:
            await event.wait()

    def step_down(self) -> None:
        """This side lost its quorum: stop every activation here without saving (the
        serving side may activate the grains meanwhile) and withdraw their records."""
        for activation in list(self.local.values()):
            self.deactivate(activation, save=False)

    async def shutdown(self) -> None:
        """The system stops: deactivate every activation (hooks run, states saved)."""
        for activation in list(self.local.values()):
            self.deactivate(activation, save=True)
        while self._stopping:
            await next(iter(self._stopping.values())).wait()

    async def _sweep(self) -> None:
        """Passivate activations idle for their kind's timeout (one task for all of them,
        waking every quarter of the shortest timeout while there are activations)."""
        try:
            while self.local:
                timeouts = [k.idle_timeout for k in self.kinds.values() if k.idle_timeout]
                await trio.sleep(min(timeouts) / 4)
                now = trio.current_time()
                for activation in list(self.local.values()):
                    timeout = activation.kind.idle_timeout
                    if (
                        timeout is not None
                        and activation.phase is Phase.ACTIVE
                        and not activation.busy
                        and not activation.queue
                        and now - activation.last >= timeout
                    ):
                        self.deactivate(activation, save=True)
        finally:
            self._sweeping = False

    # -- hand-off when the hosts change ----------------------------------------------------

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
                self.routes.clear()
                await self.hand_off()

    async def hand_off(self) -> int:
        """Passivate each activation here whose rendezvous owner is now another host (its
        state saved; the next message activates it there), at most :data:`HANDOFF_RATE`
        a second; returns how many it passivated."""
        hosts = {kind: self.hosts(kind) for kind in self.kinds}
        passivated = 0
        for (kind, identity), activation in list(self.local.items()):
            if activation.kind.placement is not Placement.RENDEZVOUS:
                continue
            owner = rendezvous(identity, hosts[kind])
            if owner in (None, self.system.name) or self.local.get((kind, identity)) is not (
                activation
            ):
                continue
            if activation.phase is not Phase.ACTIVE:
                continue
            self.deactivate(activation, save=True)
            passivated += 1
            if passivated % HANDOFF_BATCH == 0:
                await trio.sleep(HANDOFF_BATCH / HANDOFF_RATE)
        return passivated
