"""The registry in the deterministic simulator (``swimactors.sim``): netsplits and restarts."""

from __future__ import annotations

import random

from swimactors.membership import Config, Status, Swim
from swimactors.registry import NameLost, Registry, RegistryDelegate
from swimactors.sim import NodeSpec, World

CONFIG = Config.lan().replace(push_pull_interval=5.0, reconnect_interval=5.0)


class Cluster:
    """A World whose every core (restarts included) carries a registry delegate."""

    def __init__(self, size: int, seed: int) -> None:
        self.delegates: dict[str, RegistryDelegate] = {}
        self.world = World(seed, config=CONFIG, core_factory=self._make)
        self.world.add_nodes(size)
        assert self.world.run_until(self.all_up, deadline=30.0, poll=0.5)

    def _make(self, spec: NodeSpec, rng: random.Random, incarnation: int) -> Swim:
        core = Swim(spec.name, spec.address, spec.config, rng, spec.meta, incarnation)
        self.delegates[spec.name] = RegistryDelegate(Registry(spec.name, incarnation), core)
        return core

    def running(self) -> list[RegistryDelegate]:
        return [self.delegates[n.name] for n in self.world.alive_nodes()]

    def all_up(self) -> bool:
        nodes = self.world.alive_nodes()
        return all(
            sum(m.status is Status.UP for m in node.core.members()) == len(nodes) for node in nodes
        )

    def holders(self, name: str) -> set[tuple[str, str] | None]:
        """Every running node's answer for ``name``: (node, actor id) or None."""
        answers = set()
        for delegate in self.running():
            found = delegate.registry.lookup(name)
            answers.add(None if found is None else (found.node, found.actor_id))
        return answers


def test_a_name_claimed_on_both_sides_of_a_netsplit_has_one_winner_after_healing() -> None:
    cluster = Cluster(10, seed=21)
    world = cluster.world
    side_a = [f"n{i}" for i in range(5)]
    side_b = [f"n{i}" for i in range(5, 10)]
    world.partition(side_a, side_b)

    def split_seen() -> bool:
        down = {m.name for m in world.node("n0").core.members() if m.status is Status.DOWN}
        return down == set(side_b)

    assert world.run_until(split_seen, deadline=world.now + 60.0, poll=0.5)
    cluster.delegates["n1"].register("leader", "on-a")
    cluster.delegates["n7"].register("leader", "on-b")
    world.run_for(5.0)
    assert cluster.delegates["n0"].registry.lookup("leader").actor_id == "on-a"  # type: ignore[union-attr]
    assert cluster.delegates["n9"].registry.lookup("leader").actor_id == "on-b"  # type: ignore[union-attr]
    for delegate in cluster.running():
        delegate.registry.take_changes()
    world.heal()

    def one_winner() -> bool:
        holders = cluster.holders("leader")
        claims = {len(d.registry.lookup_all("leader")) for d in cluster.running()}
        return cluster.all_up() and len(holders) == 1 and None not in holders and claims == {2}

    assert world.run_until(one_winner, deadline=world.now + 60.0, poll=0.5)
    (answer,) = cluster.holders("leader")
    assert answer is not None
    holder = answer[0]
    loser = "n7" if holder == "n1" else "n1"
    lost = [c for c in cluster.delegates[loser].registry.take_changes() if isinstance(c, NameLost)]
    assert [c.winner.node for c in lost] == [holder]
    winner_changes = cluster.delegates[holder].registry.take_changes()
    assert not any(isinstance(c, NameLost) for c in winner_changes)


def test_a_restarted_node_never_brings_back_its_previous_names() -> None:
    cluster = Cluster(6, seed=22)
    world = cluster.world
    cluster.delegates["n3"].register("old-a", "a1")
    cluster.delegates["n3"].register("shared", "a2")
    assert world.run_until(
        lambda: cluster.holders("old-a") == {("n3", "a1")}, deadline=world.now + 30.0, poll=0.2
    )
    world.crash("n3")
    world.run_for(0.5)  # restarted long before anyone declares it DOWN
    world.restart("n3")
    cluster.delegates["n3"].register("shared", "b2")

    def settled() -> bool:
        return cluster.holders("old-a") == {None} and cluster.holders("shared") == {("n3", "b2")}

    assert world.run_until(settled, deadline=world.now + 30.0, poll=0.2)
    world.run_for(30.0)  # and they stay gone
    assert settled()
