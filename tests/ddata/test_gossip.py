"""Distributed data on real SWIM cores over the registry's in-memory test network.

Deltas spread on gossip; push/pull repairs what loss dropped; a crashed node's counts and
elements stay (they are data, not the node's liveness).  Time is simulated.
"""

from __future__ import annotations

import random

from swimactors.ddata import DataDelegate, DataStore, GCounter, LWWMap, ORSet
from swimactors.membership import Config
from tests.registry.harness import Cluster

CONFIG = Config.lan().replace(push_pull_interval=5.0)


def _cluster(size: int, seed: int, loss: float) -> tuple[Cluster, dict[str, DataDelegate]]:
    cluster = Cluster(CONFIG, seed=seed, loss=loss)
    delegates = {}
    for i in range(size):
        node = cluster.add(f"n{i:02d}")
        delegates[node.name] = DataDelegate(DataStore(node.name, 1), node.core)
    assert cluster.run_until(30.0, cluster.all_up, every=0.5) < 30.0
    return cluster, delegates


def _write_everywhere(cluster: Cluster, delegates: dict[str, DataDelegate]) -> None:
    for node in cluster.live():
        delegate = delegates[node.name]
        store, now = delegate.store, cluster.now
        for _ in range(3):
            delegate.publish(store.update("hits", GCounter, lambda c, w: c.increment(w), now))
        delegate.publish(store.update("who", ORSet, lambda s, w: s.add(w, w.node), now))
        delegate.publish(
            store.update("last", LWWMap, lambda m, w: m.set(w, w.node, len(w.node)), now)
        )


def _agreed(cluster: Cluster, delegates: dict[str, DataDelegate], size: int) -> bool:
    stores = [delegates[node.name].store for node in cluster.live()]
    return all(
        s.value("hits") == 3 * size and len(s.value("who", ())) == size for s in stores
    ) and all(s.state() == stores[0].state() for s in stores)


def test_twenty_nodes_agree_within_a_few_gossip_rounds_without_loss() -> None:
    cluster, delegates = _cluster(20, seed=3, loss=0.0)
    start = cluster.now
    _write_everywhere(cluster, delegates)
    done = cluster.run_until(start + 60, lambda: _agreed(cluster, delegates, 20), every=0.05)
    assert done - start < 2.0  # gossip alone: well under one push/pull period


def test_push_pull_repairs_deltas_lost_at_thirty_percent_loss() -> None:
    cluster, delegates = _cluster(10, seed=5, loss=0.3)
    start = cluster.now
    _write_everywhere(cluster, delegates)
    done = cluster.run_until(start + 60, lambda: _agreed(cluster, delegates, 10), every=0.1)
    assert done - start < 30.0


def test_a_crashed_nodes_counts_and_elements_stay() -> None:
    cluster, delegates = _cluster(5, seed=7, loss=0.0)
    _write_everywhere(cluster, delegates)
    cluster.run_until(cluster.now + 5)
    cluster.crash("n02")
    cluster.run_until(cluster.now + 40)  # well past the DOWN bound
    for node in cluster.live():
        store = delegates[node.name].store
        assert store.value("hits") == 15 and "n02" in store.value("who")


def test_a_node_that_never_knew_a_departed_writer_still_counts_its_data() -> None:
    """Why writers are not filtered by membership (docs/security.md): n02 wrote and went
    for good; n05 joins later, never sees n02 as a member (reaped), and must still take
    its counter slot and elements from a full state, or n05's values would differ from
    everyone else's for ever.  A forged writer looks just the same."""
    cluster, delegates = _cluster(5, seed=7, loss=0.0)
    for node in cluster.nodes.values():
        node.core.config = node.core.config.replace(reap_time=10.0)
    _write_everywhere(cluster, delegates)
    cluster.run_until(cluster.now + 5)
    cluster.crash("n02")
    cluster.run_until(cluster.now + 60)  # DOWN, then reaped everywhere
    assert all(node.core.member("n02") is None for node in cluster.live())
    joiner = cluster.add("n05")
    delegates["n05"] = DataDelegate(DataStore("n05", 1), joiner.core)
    cluster.run_until(cluster.now + 15)  # a push/pull or two
    store = delegates["n05"].store
    assert joiner.core.member("n02") is None
    assert store.value("hits") == 15 and "n02" in store.value("who")


def test_malformed_gossip_is_counted_and_dropped() -> None:
    cluster, delegates = _cluster(2, seed=1, loss=0.0)
    delegate = delegates["n00"]
    for payload in (b"", b"\xff" * 10, random.Random(1).randbytes(64)):
        delegate.notify_message(payload, cluster.now)
    assert delegate.counters["rejected_malformed"] == 3 and len(delegate.store) == 0
