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
    sim.world.set_link(attrs.evolve(sim.link, loss=0.05 if params.loss is None else params.loss))
    sim.planned = start + (params.duration or 600.0)
    sim.advance(sim.planned)
    return sim.report(loss=sim.world.network.default.loss, measured_s=sim.planned - start)


SCENARIO = Scenario(
    "loss", "steady loss (5%) for 10 min: false suspicions and deaths", run, 10, (100,)
)
