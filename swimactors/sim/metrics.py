"""What a run measured: failure detection, accuracy, convergence, load and coverage.

A :class:`Metrics` subscribes to a world's events and faults.  A SUSPECT or DOWN about
a member counts as *false* when neither the member nor the observer was impaired
(crashed, paused, slowed, starved, leaving, or on either side of a partition) at any moment in
the ``grace`` window before it: such a member was alive and reachable throughout.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import attrs

from ..membership.types import (
    MemberAlive,
    MemberConflict,
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    Status,
)
from .node import NodeState
from .world import Fault, PacketRecord, World

__all__ = ["CrashStats", "Metrics", "percentile"]

_STATUS_OF = {
    MemberUp: Status.UP,
    MemberAlive: Status.UP,
    MemberSuspect: Status.SUSPECT,
    MemberDown: Status.DOWN,
    MemberLeft: Status.LEFT,
}
_IMPAIRING = {"crash", "pause", "leave", "partition", "partition_one_way", "starve"}
_RESTORING = {"restart", "resume", "feed"}


def percentile(values: Iterable[float], fraction: float) -> float:
    """The ``fraction`` percentile (nearest rank) of ``values``; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


@attrs.define
class CrashStats:
    """Detection of one crash, in seconds after it (None: not reached)."""

    subject: str
    time: float
    first_suspect: float | None = None
    first_down: float | None = None
    all_down: float | None = None
    down_by: set[str] = attrs.field(factory=set)
    down_times: list[float] = attrs.field(factory=list)
    """Seconds after the crash at which each node first marked it DOWN."""

    def as_dict(self) -> dict[str, Any]:
        """This crash's figures as plain values (seconds after the crash)."""
        return {
            "node": self.subject,
            "crashed_at": self.time,
            "first_suspect_s": self.first_suspect,
            "first_down_s": self.first_down,
            "all_down_s": self.all_down,
            "down_times": self.down_times,
        }


class Metrics:
    """Collects the measurements of one run from a :class:`World`'s observers."""

    def __init__(self, world: World, grace: float | None = None, packets: bool = True) -> None:
        self.world = world
        self.grace = grace
        self.views: dict[str, dict[str, Status]] = {}
        """Per observer, each member's status as its events told (see :meth:`status`)."""
        self._formed: dict[str, frozenset[str]] = {}
        """Per observer started by ``World.add_formed``: the members it began with UP
        (one set shared by all of them, so a 10,000-node warm start costs O(N))."""
        self.incarnations: dict[str, dict[str, int]] = {}
        """Per observer (its current core), the highest incarnation seen per member."""
        self.incarnation_regressions: list[tuple[float, str, str, int, int]] = []
        self.false_positives: list[tuple[float, str, str]] = []
        self.false_suspicions: list[tuple[float, str, str]] = []
        self.crashes: list[CrashStats] = []
        self.coverage: Counter[str] = Counter()
        self.sent_packets: Counter[str] = Counter()
        self.sent_bytes: Counter[str] = Counter()
        self._open_crash: dict[str, CrashStats] = {}
        self._impaired: dict[str, list[list[float]]] = {}
        self._alive_since: dict[str, float] = {}
        self._alive_seconds = 0.0
        self._suspects = 0
        self._up_count: Counter[str] = Counter()
        self._load_base: tuple[Counter[str], Counter[str], Counter[str], float] = (
            Counter(),
            Counter(),
            Counter(),
            0.0,
        )
        world.on_event(self._on_event)
        world.on_fault(self._on_fault)
        if packets:
            world.on_packet(self._on_packet)

    # -- observers -------------------------------------------------------------------------

    def _on_packet(self, record: PacketRecord) -> None:
        kind = "reliable" if record.reliable else "datagram"
        self.sent_packets[kind] += 1
        self.sent_bytes[kind] += len(record.data)

    def _on_fault(self, fault: Fault) -> None:
        now = fault.time
        kind = fault.kind
        self.coverage[f"fault_{kind}"] += 1
        if kind in ("start", "restart", "formed"):
            formed = frozenset(fault.nodes) if kind == "formed" else None
            for name in fault.nodes:
                self._alive_since[name] = now
                self.views[name] = {}
                self.incarnations[name] = {}  # a fresh core starts from nothing
                self._up_count[name] = len(fault.nodes) - 1 if formed else 0
                if formed:
                    self._formed[name] = formed
                else:
                    self._formed.pop(name, None)
        if kind in ("crash", "left"):
            for name in fault.nodes:
                self._alive_seconds += now - self._alive_since.pop(name, now)
        if kind == "crash":
            stats = CrashStats(fault.nodes[0], now)
            self.crashes.append(stats)
            self._open_crash[stats.subject] = stats
        elif kind == "restart":
            self._open_crash.pop(fault.nodes[0], None)
        if kind == "heal" and self._suspects:
            self.coverage["healed_while_suspected"] += 1
        if kind in _IMPAIRING or (kind == "slow" and fault.value > 0):
            for name in (*fault.nodes, *fault.peers):
                self._impaired.setdefault(name, []).append([now, float("inf")])
        elif kind in _RESTORING or (kind == "slow" and fault.value == 0):
            for name in fault.nodes:
                self._close(name, now)
        elif kind == "heal":
            for name in list(self._impaired):
                if not self._node_faulted(name):
                    self._close(name, now)

    def _node_faulted(self, name: str) -> bool:
        node = self.world.nodes.get(name)
        return (
            node is None
            or node.state is not NodeState.RUNNING
            or node.slowed
            or node.cpu is not None
        )

    def _close(self, name: str, now: float) -> None:
        for window in self._impaired.get(name, ()):
            if window[1] == float("inf"):
                window[1] = now

    def _on_event(self, observer: str, event: MemberEvent) -> None:
        now = self.world.now
        member = event.member
        subject = member.name
        if isinstance(event, MemberConflict):
            self.coverage["conflict"] += 1
            return
        status = _STATUS_OF.get(type(event))
        if status is None:
            self.coverage[type(event).__name__] += 1
            return
        before = self.status(observer, subject)
        self.views.setdefault(observer, {})[subject] = status
        self._suspects += (status is Status.SUSPECT) - (before is Status.SUSPECT)
        self._up_count[observer] += (status is Status.UP) - (before is Status.UP)
        self._check_incarnation(now, observer, subject, member.incarnation)
        if isinstance(event, MemberAlive):
            self.coverage["suspicion_refuted"] += 1
        elif isinstance(event, MemberUp) and before is Status.DOWN:
            self.coverage["back_from_down"] += 1
        if status not in (Status.SUSPECT, Status.DOWN):
            return
        crash = self._open_crash.get(subject)
        if crash is not None:
            self._detected(crash, now, observer, status)
        elif not self._excused(now, observer, subject):
            wrong = self.false_suspicions if status is Status.SUSPECT else self.false_positives
            wrong.append((now, observer, subject))
        else:
            self.coverage[f"{status.value}_of_impaired"] += 1

    def _check_incarnation(self, now: float, observer: str, subject: str, value: int) -> None:
        seen = self.incarnations.setdefault(observer, {})
        last = seen.get(subject)
        if last is not None and value < last:
            self.incarnation_regressions.append((now, observer, subject, last, value))
        else:
            seen[subject] = value

    def _detected(self, crash: CrashStats, now: float, observer: str, status: Status) -> None:
        elapsed = now - crash.time
        if crash.first_suspect is None:
            crash.first_suspect = elapsed
        if status is Status.DOWN:
            if crash.first_down is None:
                crash.first_down = elapsed
            if observer not in crash.down_by:
                crash.down_by.add(observer)
                crash.down_times.append(elapsed)
            if crash.all_down is None and self._all_know_down(crash):
                crash.all_down = elapsed

    def _all_know_down(self, crash: CrashStats) -> bool:
        for node in self.world.nodes.values():
            if node.name == crash.subject or not node.alive or node.name in crash.down_by:
                continue
            known = self.status(node.name, crash.subject)
            if known is not None and known not in (Status.DOWN, Status.LEFT):
                return False
        return True

    def _excused(self, now: float, observer: str, subject: str) -> bool:
        since = now - self.grace_seconds()
        for name in (observer, subject):
            for start, end in self._impaired.get(name, ()):
                if start <= now and end >= since:
                    return True
        return False

    # -- queries ---------------------------------------------------------------------------

    def grace_seconds(self) -> float:
        """How long after an impairment SUSPECT / DOWN events are still expected."""
        if self.grace is not None:
            return self.grace
        config = self.world.config
        return config.suspicion_timeouts(max(1, len(self.world.nodes)))[1] + (
            4 * config.probe_interval
        )

    def status(self, observer: str, subject: str) -> Status | None:
        """What ``observer``'s core holds about ``subject`` (None: unknown to it)."""
        known = self.views.get(observer, {}).get(subject)
        if known is None and subject in self._formed.get(observer, ()) and subject != observer:
            return Status.UP
        return known

    def converged(self) -> bool:
        """Every running node's view holds exactly the other live nodes as UP."""
        alive = [node.name for node in self.world.alive_nodes()]
        expected = len(alive) - 1
        for name in alive:
            if self.world.nodes[name].state is not NodeState.RUNNING:
                continue
            if self._up_count[name] != expected:
                return False
        alive_set = set(alive)
        gone_of: dict[frozenset[str], list[str]] = {}
        for name in alive:
            view = self.views.get(name, {})
            for subject, status in view.items():
                if (status is Status.UP) != (subject in alive_set):
                    return False
            formed = self._formed.get(name)
            if formed is not None:  # formed members it never heard news of are still UP
                if formed not in gone_of:
                    gone_of[formed] = [s for s in formed if s not in alive_set]
                if any(s not in view for s in gone_of[formed]):
                    return False
        return True

    def node_hours(self) -> float:
        """Simulated hours the nodes have been alive, summed: the denominator of the rates."""
        now = self.world.now
        live = sum(now - since for since in self._alive_since.values())
        return (self._alive_seconds + live) / 3600.0

    def _core_counters(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for node in self.world.nodes.values():
            total.update(node.counters())
        return total

    def start_load_window(self) -> None:
        """Measure load from now on (for instance once a join's gossip has drained)."""
        self._load_base = (
            Counter(self.sent_packets),
            Counter(self.sent_bytes),
            self._core_counters(),
            self.node_hours() * 3600.0,
        )

    def _window_seconds(self) -> float:
        return max(1e-9, self.node_hours() * 3600.0 - self._load_base[3])

    def load(self) -> dict[str, float]:
        """Packets and bytes sent per live node per second, datagram and reliable."""
        seconds = self._window_seconds()
        packets = self.sent_packets - self._load_base[0]
        sizes = self.sent_bytes - self._load_base[1]
        rows: dict[str, float] = {}
        for kind in ("datagram", "reliable"):
            rows[f"{kind}_packets_per_node_s"] = packets[kind] / seconds
            rows[f"{kind}_bytes_per_node_s"] = sizes[kind] / seconds
        return rows

    def load_by_kind(self) -> dict[str, float]:
        """Messages sent per node per second by message kind, from the cores' counters."""
        total = self._core_counters() - self._load_base[2]
        seconds = self._window_seconds()
        return {
            key: count / seconds
            for key, count in sorted(total.items())
            if key.startswith("sent_") and not key.startswith("sent_bytes")
        }

    def summary(self) -> dict[str, Any]:
        """The run's figures as plain values (for tables and JSON)."""
        hours = max(1e-12, self.node_hours())
        return {
            "false_positives": len(self.false_positives),
            "false_suspicions": len(self.false_suspicions),
            "false_positives_per_node_hour": len(self.false_positives) / hours,
            "false_suspicions_per_node_hour": len(self.false_suspicions) / hours,
            "node_hours": hours,
            "incarnation_regressions": len(self.incarnation_regressions),
            "crashes": [crash.as_dict() for crash in self.crashes],
            "load": self.load(),
            "coverage": dict(sorted(self.coverage.items())),
        }
