"""rejoin: a member crashes, is declared DOWN everywhere, restarts with the same name
(a fresh core, a higher incarnation) and must be UP everywhere again."""

from __future__ import annotations

from typing import Any

from swimactors.membership.types import Status

from ..common import Params, Progress, Run, crash_fields
from ..scenario import Scenario, require


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress, planned=120.0)
    start = sim.start_cluster()
    world = sim.world
    victim = list(world.nodes)[-1]
    world.crash(victim)
    crash = sim.metrics.crashes[-1]
    sim.wait_for(lambda: crash.all_down is not None, start + 60.0)
    world.restart(victim)
    restarted_at = world.now
    incarnation = world.node(victim).core.incarnation

    def everyone_sees_it() -> bool:
        for node in world.alive_nodes():
            member = node.core.member(victim)
            if member is None or member.status is not Status.UP:
                return False
            if member.incarnation < incarnation:  # it may refute stale news: higher is fine
                return False
        return True

    back = sim.wait_for(everyone_sees_it, restarted_at + 60.0)
    sim.advance(world.now + 10.0)
    return sim.report(
        restarted=victim,
        new_incarnation=incarnation,
        rejoined=back,
        rejoin_s=(world.now - 10.0 - restarted_at) if back else None,
        **crash_fields(sim),
    )


SCENARIO = Scenario(
    "rejoin",
    "crash, DOWN everywhere, restart: UP again everywhere",
    run,
    10,
    (100,),
    require("rejoined"),
)
