"""churn: for a while, members keep joining, leaving gracefully, crashing and
restarting; once it stops, every live node must agree on who is alive."""

from __future__ import annotations

from typing import Any

from swimactors.sim import NodeState
from swimactors.sim.checks import crashed_are_down, live_agree

from ..common import Params, Progress, Run
from ..scenario import Scenario, require


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress)
    start = sim.start_cluster()
    world = sim.world
    rng = world.streams.get("faults")
    duration = params.duration or 120.0
    sim.planned = start + duration + 150.0
    second = start
    while second < start + duration:
        second += 1.0
        sim.advance(second)
        roll = rng.random()
        running = [n.name for n in world.nodes.values() if n.state is NodeState.RUNNING]
        gone = [n.name for n in world.nodes.values() if not n.alive]
        if roll < 0.05:
            world.add_node()
        elif roll < 0.10 and len(running) > 3:
            world.leave(rng.choice(running[1:]))
        elif roll < 0.15 and len(running) > 3:
            world.crash(rng.choice(running[1:]))
        elif roll < 0.20 and gone:
            world.restart(rng.choice(gone))
    settled = sim.wait_for(sim.metrics.converged, sim.planned)
    problems = live_agree(world) + crashed_are_down(world)
    return sim.report(
        churn_s=duration,
        settled=settled,
        settle_s=world.now - start - duration,
        final_members=len(world.alive_nodes()),
        problems=problems,
    )


SCENARIO = Scenario(
    "churn",
    "joins, leaves, crashes and restarts for 2 min, then agreement",
    run,
    10,
    (100,),
    require("settled"),
)
