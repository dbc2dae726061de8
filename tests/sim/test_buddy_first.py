"""Lifeguard's buddy system, first, in the simulator: under loss a suspicion of a live
member is answered by the suspect before it spreads (issue 13, the 10 % loss row)."""

from __future__ import annotations

from sims.common import Params
from swimactors.sim import LinkModel, Metrics, World
from swimactors.sim.network import Action, Rule


def suspicions_under_loss(lifeguard: bool) -> tuple[int, int]:
    """30 nodes for 120 s at 10 % datagram loss, with the reliable channel cut so that
    probes fail often enough to count (about one in 130): (raised, SUSPECT marks)."""
    world = World(0, config=Params(lifeguard=lifeguard).config())
    metrics = Metrics(world)
    world.add_formed(30)
    world.set_link(LinkModel(loss=0.10))
    world.network.add_rule(Rule(action=Action.DROP, datagrams=False))
    world.run_until(120.0)
    raised = sum(node.counters()["suspicions_raised"] for node in world.nodes.values())
    assert not metrics.false_positives
    return raised, len(metrics.false_suspicions)


def test_under_loss_a_raised_suspicion_reaches_few_members_with_lifeguard() -> None:
    """Without Lifeguard a failed probe's suspicion reaches nearly all 30 members before
    the refutation catches up; with it, the suspect hears first and its refutation comes
    back on the ack (81 % of the time at 10 % loss), so most reach only the raiser."""
    reach = {}
    for lifeguard in (True, False):
        raised, marks = suspicions_under_loss(lifeguard)
        assert raised >= 10
        reach[lifeguard] = marks / raised
    assert reach[False] >= 15
    assert reach[True] <= 5
