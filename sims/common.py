"""What every scenario shares: parameters, building a converged cluster, advancing time
with a progress callback, and the common fields of a report."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import attrs

from swimactors.membership.config import Config
from swimactors.sim import LinkModel, Metrics, World

Progress = Callable[[float], None]
"""Called with the fraction of the scenario done (0..1)."""


@attrs.frozen(kw_only=True)
class Params:
    """Knobs every scenario understands (each picks its own defaults for the rest)."""

    nodes: int = 10
    seed: int = 0
    loss: float | None = None
    lifeguard: bool = True
    duration: float | None = None
    crashes: int = 1
    starved: int | None = None
    """Members on a starved CPU (``starved``: default 1; ``swarm``: the liveness mode,
    default 0)."""
    starvation: str = "cpu"
    """How the starved members starve: ``cpu`` (``Starvation()``: a slow CPU that stalls)
    or ``late-reader`` (``Starvation.late_reader()``: packets read 0.5-2.5 s late)."""
    settle: float = 0.0
    formed: bool = False
    """Start from a converged cluster (``World.add_formed``) instead of joining by gossip."""
    """Simulated seconds to wait after the cluster formed (lets join gossip drain)."""
    keep_trace: bool = False
    on_world: Callable[[World], object] | None = attrs.field(default=None, eq=False, repr=False)
    """Called with each world the scenario builds (the determinism check keeps them)."""

    def config(self) -> Config:
        """memberlist's LAN preset; without Lifeguard: no local health (awareness 1) and a
        fixed suspicion timeout (max multiplier 1)."""
        config = Config.lan()
        if not self.lifeguard:
            config = config.replace(
                awareness_max_multiplier=1, suspicion_max_timeout_mult=1, buddy_first=False
            )
        return config


class Run:
    """One scenario run in progress: the world, its metrics and the progress bar."""

    def __init__(
        self, params: Params, progress: Progress, loss: float = 0.0, planned: float = 60.0
    ) -> None:
        self.params = params
        self.config = params.config()
        self.link = LinkModel(loss=params.loss if params.loss is not None else loss)
        self.world = World(
            params.seed, config=self.config, link=self.link, keep_trace=params.keep_trace
        )
        if params.on_world is not None:
            params.on_world(self.world)
        self.metrics = Metrics(self.world)
        self.progress = progress
        self.planned = planned
        self.extra: dict[str, Any] = {}
        self.phases: dict[str, float] = {}
        self._phase_started = time.perf_counter()

    def phase(self, name: str) -> None:
        """Record the wall time spent since the previous phase ended (runner-side timing;
        the simulator itself never reads a clock)."""
        now = time.perf_counter()
        self.phases[name] = now - self._phase_started
        self._phase_started = now

    def advance(self, until: float) -> None:
        """Run to simulated ``until`` in one-second steps, reporting progress."""
        world = self.world
        while world.now < until:
            world.run_until(min(until, world.now + 1.0))
            self.progress(min(1.0, world.now / self.planned))

    def wait_for(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Run until ``predicate()`` holds (checked every 0.1 s) or ``deadline``."""
        world = self.world
        while world.now < deadline:
            if world.run_until(predicate, min(deadline, world.now + 1.0), poll=0.1):
                return True
            self.progress(min(1.0, world.now / self.planned))
        return predicate()

    def start_cluster(self, stagger: float = 0.02) -> float:
        """Start ``nodes`` nodes joining the first one (or formed already, with
        ``params.formed``); returns when all views agree."""
        if self.params.formed:
            self.world.add_formed(self.params.nodes)
            return self.world.now
        self.world.add_nodes(self.params.nodes, stagger=stagger)
        deadline = 120.0 + self.params.nodes * 0.2
        if not self.wait_for(self.metrics.converged, deadline):
            raise RuntimeError(f"cluster of {self.params.nodes} did not converge by {deadline} s")
        return self.world.now

    def report(self, **fields: Any) -> dict[str, Any]:
        """The common report fields, then the scenario's own."""
        summary = self.metrics.summary()
        world = self.world
        result: dict[str, Any] = {
            "nodes": self.params.nodes,
            "seed": self.params.seed,
            "loss": self.link.loss,
            "lifeguard": self.params.lifeguard,
            "start": "formed" if self.params.formed else "join",
            "trace_hash": world.trace_hash,
            "sim_seconds": world.now,
            "false_positives": summary["false_positives"],
            "false_suspicions": summary["false_suspicions"],
            "false_positives_per_node_hour": summary["false_positives_per_node_hour"],
            "false_suspicions_per_node_hour": summary["false_suspicions_per_node_hour"],
            "node_seconds": summary["node_hours"] * 3600.0,
            "log2_n": math.log2(max(2, self.params.nodes)),
            "load": summary["load"],
            "load_by_kind": self.metrics.load_by_kind(),
            "coverage": summary["coverage"],
            "incarnation_regressions": summary["incarnation_regressions"],
            "phase_wall_s": self.phases,
        }
        result.update(self.extra)
        result.update(fields)
        return result


def crash_fields(run: Run) -> dict[str, Any]:
    """Detection of the first crash (seconds after it) and the Dead news' dissemination."""
    crashes = run.metrics.crashes
    if not crashes:
        return {}
    first = crashes[0]
    fields: dict[str, Any] = {
        "first_suspect_s": first.first_suspect,
        "first_down_s": first.first_down,
        "all_down_s": first.all_down,
        "crashes": [crash.as_dict() for crash in crashes],
    }
    if first.all_down is not None and first.first_down is not None:
        spread = first.all_down - first.first_down
        fields["dissemination_s"] = spread
        fields["dissemination_rounds"] = spread / run.config.gossip_interval
        fields["probe_periods_to_first_suspect"] = (
            first.first_suspect or 0.0
        ) / run.config.probe_interval
    return fields
