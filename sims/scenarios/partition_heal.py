"""partition-heal: the cluster splits in two for longer than a suspicion lasts, then
heals; each side declares the other DOWN, and after the heal all must agree again."""

from __future__ import annotations

from typing import Any

from ..common import Params, Progress, Run
from ..scenario import Scenario, require


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress, planned=200.0)
    start = sim.start_cluster()
    world = sim.world
    names = list(world.nodes)
    half = names[: len(names) // 2]
    world.partition(half, names[len(half) :])
    split_for = params.duration or 60.0
    sim.advance(start + split_for)
    split_views = sum(1 for m in world.node(names[0]).core.members() if m.status.is_alive)
    world.heal()
    healed_at = world.now
    sim.planned = healed_at + 180.0
    merged = sim.wait_for(sim.metrics.converged, sim.planned)
    return sim.report(
        partitioned_s=split_for,
        alive_seen_during_split=split_views,
        healed=merged,
        heal_converged_s=world.now - healed_at if merged else None,
    )


SCENARIO = Scenario(
    "partition-heal",
    "split in two halves for 60 s, heal; time to re-merge",
    run,
    10,
    (100,),
    require("healed"),
)
