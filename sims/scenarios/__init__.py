"""The scenario suite, one short module each; ``SCENARIOS`` maps names to them."""

from __future__ import annotations

from ..scenario import Scenario
from . import (
    churn,
    crash,
    flapping,
    join,
    load,
    loss,
    partition_heal,
    rejoin,
    slow_node,
    split_brain,
    starved,
    swarm,
)

SCENARIOS: dict[str, Scenario] = {
    module.SCENARIO.name: module.SCENARIO
    for module in (
        join,
        crash,
        loss,
        slow_node,
        starved,
        partition_heal,
        churn,
        flapping,
        rejoin,
        load,
        swarm,
        split_brain,
    )
}

__all__ = ["SCENARIOS"]
