"""swarm: a random fault schedule whose rates are drawn from the seed (swarm testing),
then the invariants after faults stop; ``sweep swarm --seeds 0:500`` runs many, and
``--starved K`` is the liveness mode (K members starved throughout, see run_schedule)."""

from __future__ import annotations

from typing import Any

import attrs

from swimactors.sim.rng import Streams
from swimactors.sim.schedule import Swarm, dumps, random_schedule, run_schedule

from ..common import Params, Progress
from ..scenario import Scenario, require


def run(params: Params, progress: Progress) -> dict[str, Any]:
    streams = Streams(params.seed)
    rng = streams.get("swarm")
    swarm = Swarm.draw(rng)
    names = [f"n{i}" for i in range(params.nodes)]
    steps = random_schedule(rng, names, swarm, params.duration or 60.0)
    outcome = run_schedule(
        params.seed,
        params.nodes,
        steps,
        swarm=swarm,
        keep_trace=params.keep_trace,
        formed=params.formed,
        starved=params.starved or 0,
    )
    if params.on_world is not None:
        params.on_world(outcome.world)
    progress(1.0)
    summary = outcome.metrics.summary()
    return {
        "nodes": params.nodes,
        "seed": params.seed,
        "trace_hash": outcome.trace_hash,
        "sim_seconds": outcome.world.now,
        "false_positives": summary["false_positives"],
        "false_suspicions": summary["false_suspicions"],
        "node_seconds": summary["node_hours"] * 3600.0,
        "swarm": attrs.asdict(swarm),
        "schedule": dumps(steps),
        "problems": outcome.problems,
        "passed": not outcome.problems,
        "start": "formed" if params.formed else "join",
        "starved": params.starved or 0,
        "coverage": summary["coverage"],
    }


SCENARIO = Scenario(
    "swarm",
    "random fault schedule at per-seed rates, then invariants",
    run,
    6,
    (10,),
    require("passed"),
)
