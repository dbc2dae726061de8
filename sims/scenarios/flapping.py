"""flapping link: the direct link between two members goes down and up every few
seconds (a link failure, not a declared fault), while both stay reachable through
others; indirect probes must keep both from being declared DOWN."""

from __future__ import annotations

import functools
from typing import Any

from swimactors.sim import LinkModel

from ..common import Params, Progress, Run
from ..scenario import Scenario


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress)
    start = sim.start_cluster()
    world = sim.world
    a, b = list(world.nodes)[:2]
    sim.planned = start + (params.duration or 300.0)
    down = True
    at = start
    while at < sim.planned - 10.0:
        model = LinkModel(loss=1.0) if down else sim.link
        world.at(at, functools.partial(world.set_link, model, a, b))
        at += 4.0 if down else 6.0
        down = not down
    world.at(at, lambda: world.set_link(sim.link, a, b))
    sim.advance(sim.planned)
    return sim.report(link=[a, b], flap_down_s=4.0, flap_up_s=6.0)


SCENARIO = Scenario(
    "flapping", "one link flaps (4 s down, 6 s up): no false deaths", run, 10, (100,)
)
