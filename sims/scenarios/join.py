"""join: N nodes start 20 ms apart, each joining the first; how long until all agree."""

from __future__ import annotations

from typing import Any

from ..common import Params, Progress, Run
from ..scenario import Scenario, require


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress, planned=30.0)
    converged_at = sim.start_cluster(stagger=0.02)
    last_join = 0.02 * (params.nodes - 1)
    return sim.report(
        converged_s=converged_at,
        converged_after_last_join_s=converged_at - last_join,
    )


SCENARIO = Scenario(
    "join",
    "N nodes join one seed; time until every view agrees",
    run,
    10,
    (100, 300),
    require("converged_s"),
)
