"""The registry on real SWIM cores over the in-memory network of ``harness.py``.

Timing bounds come from the membership configuration: gossip rounds, the push/pull
period and the DOWN bound of the core contract (``suspicion_timeouts(n)[1] +
3 * probe_interval + 1.0``).  Time is simulated, so these are exact, not lucky.
"""

from __future__ import annotations

from swimactors.membership import Config, Status
from swimactors.registry import NameLost

from .harness import Cluster

PUSH_PULL = 5.0
CONFIG = Config.lan().replace(push_pull_interval=PUSH_PULL)


def _cluster(size: int, seed: int, loss: float = 0.0) -> Cluster:
    cluster = Cluster(CONFIG, seed=seed, loss=loss)
    for i in range(size):
        cluster.add(f"n{i:02d}")
    assert cluster.run_until(30.0, cluster.all_up, every=0.5) < 30.0
    return cluster


def _register_all(cluster: Cluster, per_node: int) -> dict[str, tuple[str, str]]:
    expected = {}
    for node in cluster.live():
        for j in range(per_node):
            name, actor = f"{node.name}/svc{j}", f"actor-{j}"
            node.delegate.register(name, actor)
            expected[name] = (node.name, actor)
    return expected


def test_fifty_nodes_with_twenty_names_each_converge_to_one_view() -> None:
    cluster = _cluster(50, seed=1)
    start = cluster.now
    expected = _register_all(cluster, 20)
    assert len(expected) == 1000
    period = CONFIG.push_pull_period(50)
    end = cluster.run_until(start + 3 * period, lambda: cluster.converged(expected), every=0.2)
    assert cluster.converged(expected), "no convergence within three push/pull periods"
    assert end - start <= 2 * period
    sizes = {len(n.registry.state().entries) for n in cluster.live()}
    assert sizes == {1000}


def test_a_concurrent_double_registration_has_one_winner_everywhere_and_the_loser_is_told() -> None:
    cluster = _cluster(10, seed=2)
    first, second = cluster.nodes["n03"], cluster.nodes["n07"]
    for node in cluster.live():
        node.registry.take_changes()
    first.delegate.register("leader", "on-n03")
    second.delegate.register("leader", "on-n07")  # before either has heard of the other

    def one_winner() -> bool:
        winners = {n.registry.lookup("leader") for n in cluster.live()}
        return len(winners) == 1 and None not in winners and len(_all_claims(cluster)) == 2

    cluster.run_until(cluster.now + CONFIG.push_pull_period(10), one_winner)
    assert one_winner()
    winner = first.registry.lookup("leader")
    assert winner is not None and winner.node == "n03"  # equal clocks: smaller node name
    lost = [c for c in second.registry.take_changes() if isinstance(c, NameLost)]
    assert [(c.lost.node, c.winner.node) for c in lost] == [("n07", "n03")]
    assert not any(isinstance(c, NameLost) for c in first.registry.take_changes())


def _all_claims(cluster: Cluster) -> set[tuple[str, int, int]]:
    return {r.dot for n in cluster.live() for r in n.registry.lookup_all("leader")}


def test_a_crashed_nodes_names_vanish_everywhere_within_the_down_bound() -> None:
    size = 10
    cluster = _cluster(size, seed=3)
    expected = _register_all(cluster, 5)
    cluster.run_until(cluster.now + 60.0, lambda: cluster.converged(expected))
    assert cluster.converged(expected)
    cluster.crash("n04")
    crashed_at = cluster.now
    survivors = {k: v for k, v in expected.items() if v[0] != "n04"}
    cluster.run_until(crashed_at + 120.0, lambda: cluster.converged(survivors))
    assert cluster.converged(survivors)
    down_bound = CONFIG.suspicion_timeouts(size)[1] + 3 * CONFIG.probe_interval + 1.0
    assert cluster.now - crashed_at <= down_bound + CONFIG.gossip_interval


def test_five_percent_loss_still_converges_within_one_push_pull_period() -> None:
    size = 20
    cluster = _cluster(size, seed=4, loss=0.05)
    start = cluster.now
    expected = _register_all(cluster, 10)
    period = CONFIG.push_pull_period(size)
    cluster.run_until(start + 3 * period, lambda: cluster.converged(expected), every=0.1)
    assert cluster.converged(expected)
    assert cluster.now - start <= period


def test_a_node_declared_dead_by_mistake_gets_its_names_back_after_refuting() -> None:
    size = 8
    cluster = _cluster(size, seed=5)
    expected = _register_all(cluster, 3)
    cluster.run_until(cluster.now + 30.0, lambda: cluster.converged(expected))
    victim = cluster.nodes["n02"]
    before = victim.core.incarnation
    cluster.isolate("n02")
    survivors = {k: v for k, v in expected.items() if v[0] != "n02"}
    others = [n for n in cluster.live() if n is not victim]
    cluster.run_until(
        cluster.now + 60.0, lambda: all(len(n.registry) == len(survivors) for n in others)
    )
    assert all(cluster.view(n) == survivors for n in others)
    cluster.heal("n02")
    cluster.run_until(cluster.now + 60.0, lambda: cluster.converged(expected))
    assert cluster.converged(expected)
    assert victim.core.incarnation > before
    assert victim.registry.incarnation > before  # its names moved to the refuted incarnation
    assert victim.delegate.counters["reregistrations"] == 1


def test_after_a_cut_heals_the_names_of_both_sides_answer_everywhere_within_seconds() -> None:
    """Each side of a cut counts the other DOWN and floors its names; after the heal a
    floor reaches the other side in a push/pull, and the floored node must re-register
    at once (not at its own next push/pull, up to minutes later) or its names stay
    missing everywhere: the default 30 s period, so gossip alone must do it."""
    config = Config.lan()
    cluster = Cluster(config, seed=2)
    for i in range(5):
        cluster.add(f"n{i}")
    assert cluster.run_until(30.0, cluster.all_up, every=0.5) < 30.0
    expected = _register_all(cluster, 2)
    cluster.run_until(cluster.now + 60.0, lambda: cluster.converged(expected))
    small, large = ["n0", "n4"], ["n1", "n2", "n3"]
    cluster.cut(small, large)
    nodes = cluster.nodes

    def counted_down(viewers: list[str], others: list[str]) -> bool:
        return all(nodes[v].core.member(o).status is Status.DOWN for v in viewers for o in others)

    cluster.run_until(
        cluster.now + 120.0,
        lambda: counted_down(small, large) and counted_down(large, small),
        every=0.5,
    )
    assert counted_down(small, large) and counted_down(large, small)
    nodes["n2"].delegate.register("made-during-the-cut", "actor-x")
    expected["made-during-the-cut"] = ("n2", "actor-x")
    cluster.heal_cut()
    cluster.run_until(cluster.now + 60.0, cluster.all_up, every=0.2)
    assert cluster.all_up()
    up = cluster.now
    cluster.run_until(up + 120.0, lambda: cluster.converged(expected), every=0.1)
    assert cluster.converged(expected)
    assert cluster.now - up <= 5.0
