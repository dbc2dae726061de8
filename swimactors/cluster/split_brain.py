"""The System's split-brain component: a QuorumTracker on the node, and what its decisions do.

:mod:`swimactors.quorum` decides (sans-IO) whether this node's side of a partition keeps
serving; :class:`SplitBrain` drives it from the membership node (member events, the
announcements on :data:`~swimactors.quorum.QUORUM_CHANNEL`, a timer) and acts:

* a side that **loses** withdraws its public names from the registry, stops its
  ``singleton=True`` actors, and makes ``find``, public spawns and remote asks fail fast
  with :class:`QuorumLost`; membership keeps running, and it gives up its seniority;
* when it **serves again** it re-registers the withdrawn names it still holds (those
  nobody else took meanwhile);
* a winning side **takes over**: the far side's members are treated as DOWN (their
  registrations pruned, pending asks failed), and the singleton host (the oldest member
  of the winning side) re-creates each singleton that lived there from its spawnable
  factory, whose name rides in the singleton's registration metadata.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..actors.errors import ActorError
from ..actors.mailbox import Mailbox
from ..actors.ref import ActorRef
from ..actors.reply import Notify, Reply
from ..actors.transport import TCP, ActorNetwork, ActorTransport, RemoteTarget, TransportConfig
from ..logs import logger
from ..membership.core import BroadcastTooLarge
from ..membership.delegate import Delegate
from ..membership.meta import decode_meta, encode_meta
from ..membership.node import Node
from ..quorum import AGE_KEY, QUORUM_CHANNEL, Decision, QuorumTracker, Strategy, describe
from ..quorum.tracker import ANNOUNCEMENT_OVERHEAD, REPORT_BUDGET
from .names import actor_id
from .singletons import (
    SINGLETON_CHANNEL,
    Singleton,
    SingletonBook,
    retirement,
    singleton_factory,
    singleton_meta,
)

if TYPE_CHECKING:
    from .system import Cluster, System

__all__ = [
    "GatedTransport",
    "QuorumChanged",
    "QuorumLost",
    "SplitBrain",
    "SplitBrainConfig",
    "singleton_factory",
    "singleton_meta",
]

log = logger("swimactors.split_brain")

MAX_HISTORY = 32
"""Decisions kept for the API (the most recent ones)."""


@attrs.frozen
class QuorumChanged:
    """A system event: this side stopped (``serving`` False) or resumed serving."""

    serving: bool
    reason: str


class QuorumLost(ActorError):
    """This node's side of a partition lost its quorum: it serves no cluster names until
    the partition heals (``find``, public spawns and remote asks fail fast with it)."""


@attrs.frozen(kw_only=True)
class SplitBrainConfig:
    """A rule plus the tracker's timing; ``open_system(split_brain=...)`` takes either a
    bare rule (default timing, ``stable_after`` from the cluster size) or one of these."""

    strategy: Strategy
    stable_after: float | None = None
    down_all_when_unstable: bool | float = True
    takeover_margin: float | None = None

    def __attrs_post_init__(self) -> None:
        # the tracker's own checks (QuorumConfigError), when configuring rather than later
        QuorumTracker(
            "-",
            self.strategy,
            stable_after=self.stable_after,
            down_all_when_unstable=self.down_all_when_unstable,
            takeover_margin=self.takeover_margin,
        )

    @classmethod
    def of(cls, value: Strategy | SplitBrainConfig) -> SplitBrainConfig:
        """``open_system(split_brain=...)``'s value as a config (a bare rule: default timing)."""
        if isinstance(value, SplitBrainConfig):
            return value
        if not callable(getattr(value, "decide", None)):
            raise TypeError(f"split_brain takes a quorum rule or a SplitBrainConfig, not {value!r}")
        return cls(strategy=value)


class GatedTransport(ActorTransport):
    """The actor transport of a system with a split-brain rule: asks (and so
    ``spawn_on``), started by a task or not, fail fast with :class:`QuorumLost` while
    this side has lost."""

    def __init__(
        self,
        host: Any,
        incarnation: int,
        config: TransportConfig,
        gate: Callable[[], None],
        network: ActorNetwork = TCP,
    ) -> None:
        super().__init__(host, incarnation, config, network)
        self._gate = gate

    async def ask(
        self, target: RemoteTarget, msg: Any, sender: ActorRef | None, timeout: float | None
    ) -> Any:
        self._gate()
        return await super().ask(target, msg, sender, timeout)

    def start_ask(
        self,
        target: RemoteTarget,
        msg: Any,
        sender: ActorRef | None,
        timeout: float | None,
        notify: Notify,
    ) -> Reply | None:
        """The same gate for an ask started without a task (the asyncio and blocking
        fronts' asks): it fails at once with :class:`QuorumLost`."""
        try:
            self._gate()
        except QuorumLost as exc:
            return self.failed_ask(target, exc, notify)
        return super().start_ask(target, msg, sender, timeout, notify)


class SplitBrain(Delegate):
    """Runs one node's quorum tracker and applies its decisions to the System."""

    def __init__(
        self,
        system: System,
        cluster: Cluster,
        config: SplitBrainConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.system = system
        self.clock = clock
        """Wall-clock seconds, for a renounced seniority's fresh start time."""
        self.cluster = cluster
        self.node: Node = cluster.node
        self.config = config
        room = self.node.max_broadcast_size - ANNOUNCEMENT_OVERHEAD - len(self.node.name.encode())
        self.tracker = QuorumTracker(
            self.node.name,
            config.strategy,
            stable_after=config.stable_after,
            down_all_when_unstable=config.down_all_when_unstable,
            takeover_margin=config.takeover_margin,
            report_budget=max(0, min(REPORT_BUDGET, room)),
        )
        self.counters: Counter[str] = Counter()
        self.history: deque[Decision] = deque(maxlen=MAX_HISTORY)
        self.changed = trio.Event()
        """Set (and replaced) whenever the quorum state changes."""
        self.book = SingletonBook(self._registered, self.counters)
        """The cluster's singletons as this node knows them (and their retirements)."""
        self.withheld: dict[str, ActorRef] = {}
        """Public names withdrawn while lost, and the local actor each named."""
        self._local_singletons: dict[str, ActorRef] = {}
        """The singletons running here, until they stop (a step-down clears it first)."""
        self._timer = trio.CancelScope()
        self.node.register_delegate(QUORUM_CHANNEL, self)
        self.node.register_delegate(SINGLETON_CHANNEL, self.book)

    # -- reading -----------------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        """Whether this side serves now."""
        return self.tracker.serving

    @property
    def state(self) -> str:
        """The quorum state users see: ``ok``, ``pending`` or ``lost``."""
        return self.tracker.state

    def check(self) -> None:
        """Raise :class:`QuorumLost` unless this side is serving."""
        if not self.tracker.serving:
            raise QuorumLost(
                f"node {self.node.name} is on a side without quorum ({self.tracker.strategy.spec})"
            )

    def health(self) -> Mapping[str, object]:
        """The ``/v1/health`` fields: ``quorum`` ("ok" | "lost") and the details."""
        details = dict(describe(self.tracker))
        last = self.history[-1] if self.history else None
        details["reason"] = last.reason if last is not None else ""
        return {"quorum": details.pop("quorum"), "split_brain": details}

    def metrics(self) -> Mapping[str, int]:
        """Gauges for ``/metrics``: whether this side serves, and the counters."""
        gauges = {"quorum_serving": int(self.tracker.serving)}
        gauges.update((f"quorum_{key}", value) for key, value in self.counters.items())
        return gauges

    # -- the System's side -------------------------------------------------------------------

    def spawn_singleton(
        self, factory: str, name: str, mailbox_size: int | Mailbox | None, supervision: Any
    ) -> ActorRef:
        """Start the spawnable ``factory`` here as the singleton ``name`` (public)."""
        self.check()
        create = self.system.spawnables.get(factory)
        if create is None:
            raise LookupError(
                f"no spawnable named {factory!r} on {self.node.name}: a "
                "singleton needs a factory registered with register_spawnable"
            )
        ref = self.system.spawn_public(
            create, name, mailbox_size, supervision, singleton_meta(factory)
        )
        self._local_singletons[name] = ref
        self.book.spawned(name, Singleton(factory, self.node.name, actor_id(ref)))
        cell = self.system.local_cell(ref)
        assert cell is not None
        cell.add_watcher(_SingletonStopped(self, name))
        return ref

    def _stopped(self, name: str, ref: ActorRef) -> None:
        """A singleton of this node stopped.  Unless this side stepped down (which stops
        them itself), the system is closing (a failover moves them) or it lost its name
        to another node, it was stopped on purpose: every node forgets it."""
        if self._local_singletons.get(name) != ref:
            return
        del self._local_singletons[name]
        holder = self.cluster.names.registration(name)
        here = (self.node.name, actor_id(ref))
        if self.system.closing or (holder is not None and (holder.node, holder.actor_id) != here):
            return
        self.book.retire(name, *here)
        try:
            self.node.broadcast(SINGLETON_CHANNEL, retirement(name, *here), key=f"retired {name}")
        except BroadcastTooLarge:
            self.counters["retirements_unsent"] += 1
        log.info("%s: singleton %r stopped on purpose", self.node.name, name)

    # -- driving -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow membership, the tracker's deadlines and the registry's singletons until
        cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_members)
            nursery.start_soon(self._run_timer)
            nursery.start_soon(self._follow_names)

    def notify_message(self, payload: bytes, now: float) -> None:
        self.tracker.receive(now, payload)
        self._after_input()

    async def _follow_members(self) -> None:
        with self.node.events() as events:
            self._observe()
            async for _event in events:
                self._observe()

    def _observe(self) -> None:
        node = self.node
        self.tracker.observe(trio.current_time(), node.members(), unreached=node.unreached())
        self._after_input()

    async def _run_timer(self) -> None:
        while True:
            with trio.CancelScope(deadline=self._deadline()) as self._timer:
                await trio.sleep_forever()
            self._observe()  # observing ticks; a probe's verdict raises no event
            await trio.lowlevel.checkpoint()

    async def _follow_names(self) -> None:
        """Learn the registry's singletons whenever the registry changed."""
        while True:
            await self.cluster.names.changed.wait()
            self._learn_singletons()

    def _deadline(self) -> float:
        deadlines = [self.tracker.next_deadline()]
        if self._hosting():
            deadlines.append(self.book.next_due(self.tracker.stable_after))
        return min((d for d in deadlines if d is not None), default=math.inf)

    def _hosting(self) -> bool:
        """Serving on a confirmed view as the singleton host."""
        tracker = self.tracker
        return tracker.state == "ok" and tracker.singleton_host() == self.node.name

    def _registered(self, name: str) -> bool:
        return self.cluster.names.registration(name) is not None

    def _after_input(self) -> None:
        for payload in self.tracker.take_outgoing():
            self.node.broadcast(QUORUM_CHANNEL, payload, key="quorum")
        for decision in self.tracker.take_decisions():
            self._apply(decision)
        self._recreate_overdue(trio.current_time())
        self._timer.deadline = self._deadline()

    # -- acting on decisions -----------------------------------------------------------------

    def _announce(self, decision: Decision) -> None:
        hub = self.system.event_hub
        if hub.active:
            hub.publish(QuorumChanged(decision.serving, decision.reason))

    def _apply(self, decision: Decision) -> None:
        was_serving = not self.history or self.history[-1].serving
        self.history.append(decision)
        self.counters["decisions"] += 1
        if not decision.serving:
            if was_serving:
                self.counters["lost"] += 1
                log.warning("%s: quorum lost (%s)", self.node.name, decision.reason)
                self._announce(decision)
                self._step_down()
            if decision.downed:
                if not was_serving:
                    log.warning("%s: gives up its seniority (%s)", self.node.name, decision.reason)
                self._renounce_seniority()
        else:
            if not was_serving:
                self.counters["regained"] += 1
                log.warning("%s: quorum ok (%s)", self.node.name, decision.reason)
                self._announce(decision)
                self._resume()
            if decision.down:
                self._take_over(decision.down)
            if decision.stable and self.tracker.singleton_host() == self.node.name:
                self._recreate(self.book.missing())
        self.changed.set()
        self.changed = trio.Event()

    def _step_down(self) -> None:
        """Withdraw every public name, stop the singletons and the grain activations
        (membership keeps running)."""
        for name, ref in self.cluster.names.withdraw_all().items():
            if name not in self._local_singletons:
                self.withheld[name] = ref
            self.counters["names_withdrawn"] += 1
        for ref in self._local_singletons.values():
            self._stop(ref)
        self._local_singletons.clear()
        self.system.grains.step_down()

    def _resume(self) -> None:
        """Gossip the withdrawals again (they may not have crossed the cut), and
        re-register the withdrawn names this node still legitimately holds."""
        self.cluster.names.repeat_withdrawals()
        withheld, self.withheld = self.withheld, {}
        for name, ref in withheld.items():
            cell = self.system.local_cell(ref)
            if cell is None:
                continue
            holder = self.cluster.names.registration(name)
            if holder is not None and holder.node != self.node.name:
                log.warning(
                    "%s: %r is held on %s now; stopping %s", self.node.name, name, holder.node, ref
                )
                if not self.cluster.names.keep_losers:
                    cell.request_stop()
                continue
            self.cluster.names.restore(name, ref)
            self.counters["names_restored"] += 1

    def _stop(self, ref: ActorRef) -> None:
        cell = self.system.local_cell(ref)
        if cell is not None:
            cell.request_stop()
            self.counters["singletons_stopped"] += 1

    def _renounce_seniority(self) -> None:
        """This side lost: come back as the youngest member (a fresh start time)."""
        tags = decode_meta(self.node.local_member.meta)
        tags[AGE_KEY] = str(int(self.clock() * 1000))
        self.system.nursery.start_soon(self.node.set_meta, encode_meta(tags))

    def _take_over(self, down: frozenset[str]) -> None:
        """Treat ``down`` as DOWN: prune their names, fail the asks pending there."""
        for member_name in sorted(down):
            member = self.node.member(member_name)
            if member is not None:
                self.cluster.names.node_down(member_name, member.incarnation)
            self.cluster.transport.node_down(member_name, "down")
            self.counters["members_downed"] += 1

    def _recreate(self, names: Iterable[str]) -> None:
        """On the singleton host, serving: re-create these remembered singletons (nobody
        holds them: they lived on a downed member, or their holder stepped down)."""
        for name in names:
            singleton = self.book.remembered[name]
            try:
                self.spawn_singleton(singleton.factory, name, None, None)
            except (ActorError, LookupError, ValueError) as exc:
                self.counters["singleton_failovers_failed"] += 1
                self.book.postpone(name, trio.current_time())
                log.error("%s: cannot re-create singleton %r: %s", self.node.name, name, exc)
                continue
            self.counters["singletons_recreated"] += 1
            log.warning(
                "%s: re-created singleton %r (it lived on %s)", self.node.name, name, singleton.node
            )

    def _recreate_overdue(self, now: float) -> None:
        """A remembered singleton nobody has held for ``stable_after`` while this node
        served on a confirmed view was not stopped on purpose (its notice would have
        come): its holder stepped down while this side kept winning.  The host
        re-creates it."""
        self.book.hold_absences(now, self.tracker.state == "ok")
        if self._hosting():
            self._recreate(self.book.overdue(now, self.tracker.stable_after))

    def _learn_singletons(self) -> None:
        """Remember every singleton in the registry and where it lives."""
        # a singleton's registration carries meta: the others need not be built
        self.book.learn(self.cluster.names.registrations(with_meta=True), trio.current_time())
        self._timer.deadline = self._deadline()


class _SingletonStopped:
    """Watches a singleton of this node and tells the component when it stops."""

    __slots__ = ("name", "split_brain")

    def __init__(self, split_brain: SplitBrain, name: str) -> None:
        self.split_brain = split_brain
        self.name = name

    def notify_terminated(self, ref: ActorRef, reason: str | None) -> None:
        self.split_brain._stopped(self.name, ref)
