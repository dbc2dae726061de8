"""crash: a converged cluster at 1 % loss loses k nodes at once; detection times."""

from __future__ import annotations

from typing import Any

from ..common import Params, Progress, Run, crash_fields
from ..scenario import Scenario, require


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress, loss=0.01)
    sim.start_cluster()
    sim.phase("form")
    if params.settle:
        sim.advance(sim.world.now + params.settle)
        sim.phase("settle")
    crash_at = sim.world.now
    sim.planned = crash_at + (params.duration or 60.0)
    victims = list(sim.world.nodes)[-params.crashes :]
    for name in victims:
        sim.world.crash(name)
    high = sim.config.suspicion_timeouts(params.nodes)[1]
    bound = crash_at + high + 3 * sim.config.probe_interval + 1.0
    crashes = sim.metrics.crashes[-params.crashes :]
    sim.wait_for(lambda: all(c.all_down is not None for c in crashes), bound)
    sim.advance(sim.planned)
    sim.phase("after_crash")
    return sim.report(crashed=victims, detection_bound_s=bound - crash_at, **crash_fields(sim))


SCENARIO = Scenario(
    "crash",
    "k nodes crash (default 1, at 1% loss); detection times",
    run,
    20,
    (10, 100, 1000),
    require("all_down_s"),
    large_formed=(1000, 10000),
)
