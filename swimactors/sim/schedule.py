"""Fault schedules: a JSON-able list of timed steps, applied to a world, then checked.

The hypothesis state-machine test, ``python -m sims replay`` and the swarm sweep all run
schedules through :func:`run_schedule`: build and converge a cluster, apply the steps,
stop every fault, wait out a bound, and check the invariants of :mod:`.checks`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import attrs

from ..membership.config import Config
from .checks import check_all, crashed_are_down
from .metrics import Metrics
from .network import LinkModel
from .node import NodeState
from .world import World

__all__ = [
    "OPS",
    "Outcome",
    "Step",
    "Swarm",
    "detection_bound",
    "quiesce_bound",
    "random_schedule",
    "run_schedule",
]


def _names(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(value)


OPS = ("crash", "restart", "partition", "heal", "loss", "pause", "slow")


@attrs.frozen
class Step:
    """One fault, ``at`` seconds after the cluster converged."""

    at: float
    op: str = attrs.field(validator=attrs.validators.in_(OPS))
    node: str = ""
    group: tuple[str, ...] = attrs.field(default=(), converter=_names)
    value: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The step as JSON-able data, empty fields left out."""
        return {k: v for k, v in attrs.asdict(self).items() if v not in ("", (), 0.0)} | {
            "at": self.at,
            "op": self.op,
        }


def dumps(steps: Sequence[Step]) -> str:
    """The schedule as compact JSON (:func:`loads` reads it back)."""
    return json.dumps([step.as_dict() for step in steps], separators=(",", ":"))


def loads(text: str) -> list[Step]:
    """Parse a schedule; a clear ValueError on anything malformed."""
    try:
        raw = json.loads(text)
        return [Step(**item) for item in raw]
    except (TypeError, ValueError) as error:
        raise ValueError(f"bad schedule JSON: {error}") from None


@attrs.frozen
class Swarm:
    """Per-seed fault rates (swarm testing: each seed stresses a different mix)."""

    loss: float
    duplicate: float
    crash_rate: float
    partition_rate: float
    pause_rate: float

    @classmethod
    def draw(cls, rng: random.Random) -> Swarm:
        """Fault rates drawn from ``rng`` (one seed's swarm run)."""
        return cls(
            loss=rng.choice([0.0, 0.0, 0.01, 0.05, 0.1]),
            duplicate=rng.choice([0.0, 0.01, 0.05]),
            crash_rate=rng.choice([0.0, 0.02, 0.05]),
            partition_rate=rng.choice([0.0, 0.02, 0.05]),
            pause_rate=rng.choice([0.0, 0.02, 0.05]),
        )


def random_schedule(
    rng: random.Random, names: Sequence[str], swarm: Swarm, duration: float
) -> list[Step]:
    """Faults at Poisson-ish times over ``duration`` seconds, at the swarm's rates."""
    steps: list[Step] = []
    crashed: list[str] = []
    for second in range(int(duration)):
        at = second + rng.random()
        up = [n for n in names if n not in crashed]
        if rng.random() < swarm.crash_rate and len(up) > 2:
            victim = rng.choice(up)
            crashed.append(victim)
            steps.append(Step(at, "crash", victim))
        elif crashed and rng.random() < swarm.crash_rate:
            steps.append(Step(at, "restart", crashed.pop(rng.randrange(len(crashed)))))
        if rng.random() < swarm.partition_rate:
            side = rng.sample(list(names), rng.randint(1, max(1, len(names) // 2)))
            steps.append(Step(at, "partition", group=tuple(sorted(side))))
        elif rng.random() < swarm.partition_rate:
            steps.append(Step(at, "heal"))
        if rng.random() < swarm.partition_rate:
            steps.append(Step(at, "loss", value=rng.choice([0.2, 0.5, 1.0])))
            steps.append(Step(at + rng.uniform(1, 10), "loss", value=swarm.loss))
        if rng.random() < swarm.pause_rate:
            steps.append(Step(at, "pause", rng.choice(list(names)), value=rng.uniform(1, 8)))
    return steps


def detection_bound(config: Config, nodes: int) -> float:
    """Liveness mode: how long after the faults stop (and the longest suspicion has run
    out) a crashed member may still be alive in some running node's view: with round
    robin some prober reaches it within a few periods whatever ``nodes`` is, its
    suspicion runs out (at most the longest timeout) and the news spreads in seconds."""
    return 10 * config.probe_interval + config.suspicion_timeouts(nodes)[1] + 5.0


def quiesce_bound(config: Config, nodes: int) -> float:
    """Time after faults stop within which the invariants must hold: a suspicion runs
    out, the news spreads, and the two sides of a healed partition find each other.
    That last step is the slow one: each node re-contacts one random DOWN member per
    ``reconnect_interval`` (Serf's reconnect), so with up to ``nodes`` DOWN members it
    takes about ``nodes`` tries to hit a live one; three times that makes a miss on both
    sides less likely than one in a thousand."""
    return (
        config.suspicion_timeouts(nodes)[1]
        + config.push_pull_period(nodes)
        + 3 * nodes * config.reconnect_interval
        + 10 * config.probe_interval
    )


@attrs.frozen
class Outcome:
    """The result of one schedule: the problems found (empty: all invariants held)."""

    world: World
    metrics: Metrics
    problems: list[str]

    @property
    def trace_hash(self) -> str:
        return self.world.trace_hash


def start_cluster(
    seed: int,
    nodes: int,
    config: Config,
    link: LinkModel,
    keep_trace: bool = False,
    formed: bool = False,
) -> tuple[World, Metrics]:
    """A converged cluster: joined by gossip, or formed from the start (``formed``)."""
    world = World(seed, config=config, link=link, keep_trace=keep_trace)
    metrics = Metrics(world)
    if formed:
        world.add_formed(nodes)
    else:
        world.add_nodes(nodes, stagger=0.05)
    if not world.run_until(metrics.converged, deadline=60.0 + nodes, poll=0.5):
        raise RuntimeError(f"seed {seed}: {nodes} nodes did not converge before any fault")
    return world, metrics


def apply(world: World, step: Step, link: LinkModel) -> None:
    """Apply one step now; steps that make no sense in the current state do nothing."""
    op = step.op
    node = world.nodes.get(step.node)
    if op == "crash" and node is not None:
        world.crash(node.name)
    elif op == "restart" and node is not None and node.state is NodeState.CRASHED:
        # every other node as a seed (a full seed list, or DNS discovery): with the first
        # node as its only seed, a process restarted while that node was out of reach and
        # then dead could never find the cluster again, which no protocol can fix
        # (swarm seed 2491: two such nodes each alone for good)
        world.restart(node.name, seeds=[n.address for n in world.nodes.values() if n is not node])
    elif op == "partition":
        side = [name for name in step.group if name in world.nodes]
        rest = [name for name in world.nodes if name not in side]
        if side and rest:
            world.partition(side, rest)
    elif op == "heal":
        world.heal()
    elif op == "loss":
        world.set_link(attrs.evolve(link, loss=min(1.0, max(0.0, step.value))))
    elif op == "pause" and node is not None:
        world.pause(node.name, duration=max(0.0, step.value))
    elif op == "slow" and node is not None:
        world.slow(node.name, max(0.0, step.value))


def stop_faults(world: World, link: LinkModel) -> None:
    """Heal, restore the link, resume and unslow every node (crashed ones stay down)."""
    world.heal()
    world.set_link(link)
    for node in world.nodes.values():
        if node.state is NodeState.PAUSED:
            world.resume(node.name)
        if node.slowed:
            world.slow(node.name, 0.0)


def run_schedule(
    seed: int,
    nodes: int,
    steps: Sequence[Step],
    config: Config | None = None,
    swarm: Swarm | None = None,
    keep_trace: bool = False,
    formed: bool = False,
    starved: int = 0,
) -> Outcome:
    """Converge (or start ``formed``), apply ``steps``, stop the faults, wait the bound,
    check the invariants.

    ``starved`` is the liveness mode (TigerBeetle's VOPR): that many members (``n1``,
    ``n2``, ...) run on a starved CPU (:mod:`.starvation`) from the start and *stay*
    starved after the other faults stop, so the invariants (every crashed member DOWN
    everywhere, every live member UP everywhere) must be reached within the bound
    despite them: a standing slow member must not keep the cluster from converging."""
    config = config or Config.lan()
    link = LinkModel(duplicate=swarm.duplicate if swarm else 0.0)
    world, metrics = start_cluster(seed, nodes, config, link, keep_trace, formed)
    for index in range(1, 1 + min(starved, nodes - 1)):
        world.starve(f"n{index}")
    origin = world.now
    if swarm is not None and swarm.loss:
        world.set_link(attrs.evolve(link, loss=swarm.loss))
    for step in sorted(steps, key=lambda s: s.at):
        world.run_until(origin + step.at)
        apply(world, step, link)
    world.run_until(origin + max((s.at for s in steps), default=0.0) + 1.0)
    stop_faults(world, link)
    faulted = bool(steps) or (swarm is not None and swarm.loss > 0) or starved > 0
    settled = world.now + config.suspicion_timeouts(nodes)[1] + 3 * config.probe_interval
    if starved:  # liveness: every running node probes each crashed member within a pass
        world.run_until(settled + detection_bound(config, nodes))
        late = crashed_are_down(world)
        if late:
            return Outcome(world, metrics, [f"liveness: {problem}" for problem in late])
    world.run_until(settled)  # let every pending suspicion run out first
    world.run_until(
        lambda: not check_all(world, metrics, faulted),
        deadline=world.now + quiesce_bound(config, nodes),
        poll=config.probe_interval,
    )
    return Outcome(world, metrics, check_all(world, metrics, faulted))
