"""Invariants a cluster must satisfy once faults have stopped and a bound has passed."""

from __future__ import annotations

from ..membership.types import Status
from .metrics import Metrics
from .node import NodeState
from .world import World

__all__ = ["check_all", "crashed_are_down", "incarnations_monotonic", "live_agree"]


def live_agree(world: World) -> list[str]:
    """Every running node sees exactly the live nodes as UP (itself included)."""
    live = {node.name for node in world.alive_nodes()}
    problems = []
    for node in world.nodes.values():
        if node.state is not NodeState.RUNNING:
            continue
        up = {m.name for m in node.core.members() if m.status is Status.UP}
        if up != live:
            missing, extra = sorted(live - up), sorted(up - live)
            problems.append(f"{node.name} disagrees: missing {missing}, extra {extra}")
    return problems


def crashed_are_down(world: World) -> list[str]:
    """Every crashed node is DOWN (or forgotten) in every running node's view."""
    crashed = [node.name for node in world.nodes.values() if node.state is NodeState.CRASHED]
    problems = []
    for node in world.nodes.values():
        if node.state is not NodeState.RUNNING:
            continue
        for name in crashed:
            member = node.core.member(name)
            if member is not None and member.status.is_alive:
                problems.append(f"{node.name} still sees crashed {name} as {member.status.value}")
    return problems


def incarnations_monotonic(metrics: Metrics) -> list[str]:
    """No node ever saw a member's incarnation go backwards."""
    return [
        f"{observer} saw {subject}'s incarnation go {old} -> {new} at {time:.3f}"
        for time, observer, subject, old, new in metrics.incarnation_regressions
    ]


def check_all(world: World, metrics: Metrics, faults_injected: bool) -> list[str]:
    """All invariants; a run without injected faults must also have no false positive."""
    problems = live_agree(world) + crashed_are_down(world) + incarnations_monotonic(metrics)
    if not faults_injected:
        problems += [
            f"false positive: {observer} marked healthy {subject} DOWN at {time:.3f}"
            for time, observer, subject in metrics.false_positives
        ]
    return problems
