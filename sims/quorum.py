"""A QuorumTracker on every simulated node, and the timeline of who serves.

:class:`QuorumCluster` feeds each node's tracker from its SWIM core's events, runs the
trackers' timers in the world, re-announces a node's age when its side loses (it
gives up its seniority, see swimactors.quorum), and records every change of a node's
``serving`` flag and of whether it hosts the singleton (the oldest member of its decided
membership, while serving).  :func:`overlaps` turns that record into the figures.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import partial

import attrs

from swimactors.membership.delegate import Delegate
from swimactors.membership.meta import encode_meta
from swimactors.membership.types import MemberEvent
from swimactors.quorum import QUORUM_CHANNEL, Decision, QuorumTracker, Strategy, age_meta
from swimactors.sim import NodeState, SimNode, World

__all__ = ["Change", "QuorumCluster", "Window", "overlaps"]


@attrs.frozen
class Change:
    """Node ``node`` serves (and hosts the singleton) from ``time`` on."""

    time: float
    node: str
    serving: bool
    holder: bool


@attrs.frozen
class Window:
    """Figures over ``[start, end)``: seconds with two or more holders, with no holder,
    with two or more sides serving, and the first instant each happened (None: never)."""

    double_holder_s: float
    no_holder_s: float
    double_side_s: float
    first_double_holder: float | None
    first_double_side: float | None


class QuorumCluster:
    """Runs one tracker per node of ``world`` with the same strategy and timing."""

    def __init__(
        self,
        world: World,
        strategy: Strategy,
        *,
        stable_after: float | None = None,
        down_all_when_unstable: bool | float = True,
    ) -> None:
        self.world = world
        self.strategy = strategy
        self._stable_after = stable_after
        self._down_all_when_unstable = down_all_when_unstable
        self.trackers: dict[str, QuorumTracker] = {}
        self.decisions: list[tuple[str, Decision]] = []
        self.changes: list[Change] = []
        self._shown: dict[str, tuple[bool, bool]] = {}
        self._timer: dict[str, int] = {}
        world.on_event(self._on_event)

    def add_nodes(self, count: int, stagger: float = 0.02) -> list[SimNode]:
        """Start ``count`` nodes, each advertising its start time (ms) as its age."""
        nodes = []
        for _ in range(count):
            meta = encode_meta(age_meta(int(self.world.now * 1000)))
            node = self.world.add_node(meta=meta, join_at=self.world.now + stagger)
            self.trackers[node.name] = QuorumTracker(
                node.name,
                self.strategy,
                stable_after=self._stable_after,
                down_all_when_unstable=self._down_all_when_unstable,
            )
            node.core.register_delegate(  # type: ignore[attr-defined]
                QUORUM_CHANNEL, _Announcements(self, node)
            )
            self._observe(node)
            nodes.append(node)
        return nodes

    # -- reading -----------------------------------------------------------------------------

    def serving(self) -> list[str]:
        return [
            name
            for name, tracker in self.trackers.items()
            if self._running(name) and tracker.serving
        ]

    def holders(self) -> list[str]:
        return [name for name in self.serving() if self.trackers[name].singleton_host() == name]

    def settled(self) -> bool:
        """Every node serves on a stable decision, all agreeing on the singleton host."""
        states = {tracker.state for tracker in self.trackers.values()}
        hosts = {tracker.singleton_host() for tracker in self.trackers.values()}
        return states == {"ok"} and len(hosts) == 1 and len(self.holders()) == 1

    # -- driving -----------------------------------------------------------------------------

    def _running(self, name: str) -> bool:
        return self.world.nodes[name].state is NodeState.RUNNING

    def _on_event(self, name: str, event: MemberEvent) -> None:
        if name in self.trackers:
            self._observe(self.world.nodes[name])

    def _observe(self, node: SimNode) -> None:
        tracker = self.trackers[node.name]
        unreached = node.core.unreached()  # type: ignore[attr-defined]
        tracker.observe(node.now(self.world.now), node.core.members(), unreached=unreached)
        self._after_input(node)

    def _tick(self, node: SimNode, generation: int) -> None:
        if self._timer.get(node.name) != generation or not self._running(node.name):
            return
        self._observe(node)  # observing ticks; a probe's verdict raises no event

    def _announcement(self, node: SimNode, payload: bytes) -> None:
        self.trackers[node.name].receive(node.now(self.world.now), payload)
        self._after_input(node)

    def _after_input(self, node: SimNode) -> None:
        tracker = self.trackers[node.name]
        for payload in tracker.take_outgoing():
            node.core.broadcast(QUORUM_CHANNEL, payload, key="quorum")  # type: ignore[attr-defined]
        for decision in tracker.take_decisions():
            self.decisions.append((node.name, decision))
            if decision.downed:
                self.world.at(self.world.now, partial(self._renounce, node))
        shown = (tracker.serving, tracker.singleton_host() == node.name and tracker.serving)
        if self._shown.get(node.name) != shown:
            self._shown[node.name] = shown
            self.changes.append(Change(self.world.now, node.name, *shown))
        deadline = tracker.next_deadline()
        generation = self._timer.get(node.name, 0) + 1
        self._timer[node.name] = generation
        if deadline is not None:
            when = node.clock.to_sim(deadline)
            self.world.at(when, lambda: self._tick(node, generation))

    def _renounce(self, node: SimNode) -> None:
        """A node that stopped serving comes back as the youngest member."""
        if self._running(node.name):
            now = node.now(self.world.now)
            set_meta: Callable[[bytes, float], None] = node.core.set_meta  # type: ignore[attr-defined]
            set_meta(encode_meta(age_meta(int(self.world.now * 1000))), now)


class _Announcements(Delegate):
    """Hands the quorum channel's gossip to the node's tracker."""

    def __init__(self, cluster: QuorumCluster, node: SimNode) -> None:
        self.cluster, self.node = cluster, node

    def notify_message(self, payload: bytes, now: float) -> None:
        self.cluster._announcement(self.node, payload)


def overlaps(
    changes: Sequence[Change], sides: Sequence[Sequence[str]], start: float, end: float
) -> Window:
    """Replay ``changes`` and measure holder and serving-side overlaps in ``[start, end)``."""
    side_of = {name: index for index, side in enumerate(sides) for name in side}
    ordered = sorted(changes, key=lambda change: change.time)
    points = sorted({start, end, *(c.time for c in ordered if start < c.time < end)})
    serving: dict[str, bool] = {}
    holding: dict[str, bool] = {}
    double_holder = no_holder = double_side = 0.0
    first_holder: float | None = None
    first_side: float | None = None
    index = 0
    for left, right in itertools.pairwise(points):
        while index < len(ordered) and ordered[index].time <= left:
            change = ordered[index]
            serving[change.node], holding[change.node] = change.serving, change.holder
            index += 1
        holders = sum(holding.values())
        if holders >= 2:
            double_holder += right - left
            first_holder = left if first_holder is None else first_holder
        elif holders == 0:
            no_holder += right - left
        if len({side_of.get(name, -1) for name, on in serving.items() if on}) >= 2:
            double_side += right - left
            first_side = left if first_side is None else first_side
    return Window(double_holder, no_holder, double_side, first_holder, first_side)
