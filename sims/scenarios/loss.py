"""loss: a healthy cluster under steady packet loss (default 5 %) for a long time;
every SUSPECT and DOWN is false.  Compare with ``--no-lifeguard``."""

from __future__ import annotations

from typing import Any

import attrs

from ..common import Params, Progress, Run
from ..scenario import Scenario


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress)
    start = sim.start_cluster()
    before = raised(sim)
    sim.world.set_link(attrs.evolve(sim.link, loss=0.05 if params.loss is None else params.loss))
    sim.planned = start + (params.duration or 600.0)
    sim.advance(sim.planned)
    return sim.report(
        loss=sim.world.network.default.loss,
        measured_s=sim.planned - start,
        suspicions_raised=raised(sim) - before,
    )


def raised(sim: Run) -> int:
    """Failed probes of members thought alive, all nodes together (each starts or
    confirms a suspicion): false suspicions at their source, where ``false_suspicions``
    counts every node that marked the member SUSPECT."""
    return sum(node.counters()["suspicions_raised"] for node in sim.world.nodes.values())


SCENARIO = Scenario(
    "loss", "steady loss (5%) for 10 min: false suspicions and deaths", run, 10, (100,)
)
