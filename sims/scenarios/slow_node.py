"""slow-node: one member pauses (a GC stall) again and again and another handles its
messages 1.5 s late (a processing backlog: its probes time out although peers answered);
Lifeguard's claim is that healthy peers are not falsely suspected because of them."""

from __future__ import annotations

from typing import Any

from ..common import Params, Progress, Run
from ..scenario import Scenario


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress)
    start = sim.start_cluster()
    world = sim.world
    duration = params.duration or 300.0
    sim.planned = start + duration
    names = list(world.nodes)
    paused, starved = names[1], names[2]
    world.slow(starved, 0.0, receive_lag=1.5)
    at = start + 5.0
    while at < sim.planned - 10.0:
        world.at(at, lambda: world.pause(paused, duration=3.0))
        at += 20.0
    sim.advance(sim.planned)
    return sim.report(
        paused=paused,
        starved=starved,
        starved_receive_lag_s=1.5,
        pause_s=3.0,
        starved_probe_failures=world.node(starved).counters()["probe_failures"],
    )


SCENARIO = Scenario(
    "slow-node", "a paused and a starved member: no false suspicion of others", run, 10, (100,)
)
