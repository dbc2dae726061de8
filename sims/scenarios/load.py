"""load: a converged, healthy cluster after its join gossip has drained; packets,
bytes and messages per node per second, which SWIM keeps flat as N grows."""

from __future__ import annotations

from typing import Any

from ..common import Params, Progress, Run
from ..scenario import Scenario


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress)
    start = sim.start_cluster()
    config = sim.config
    # every join's Alive is re-gossiped retransmit_limit times by every node
    drain = (
        0.0
        if params.formed
        else config.retransmit_limit(params.nodes)
        * params.nodes
        / (max(1, config.gossip_nodes) * 10)
        * config.gossip_interval
        + 10.0
    )
    sim.planned = start + drain + (params.duration or 60.0)
    sim.advance(start + drain)
    sim.metrics.start_load_window()
    sim.advance(sim.planned)
    return sim.report(drain_s=drain, measured_s=sim.planned - start - drain)


SCENARIO = Scenario(
    "load",
    "steady-state packets and bytes per node per second",
    run,
    10,
    (10, 100, 300),
    large_formed=(1000,),
)
