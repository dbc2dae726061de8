"""Causal-context compaction: past churn leaves nothing behind but one entry per node."""

from __future__ import annotations

import random

from swimactors.registry import Registry, encode
from swimactors.registry.crdt import joined

CYCLES = 100_000


def test_100000_register_unregister_cycles_leave_a_bounded_state() -> None:
    node = Registry("worker", 1_700_000_000)
    observer = Registry("observer", 1)
    rng = random.Random(11)
    deltas = []
    for i in range(CYCLES):
        name = f"job-{i % 64}"
        deltas += [node.register(name, f"actor-{i}"), node.unregister(name)]
        if i % 1_000 == 0:  # a few names stay live
            deltas.append(node.register(f"live-{i // 1_000}", "keeper"))
        for delta in deltas:
            if rng.random() > 0.01:  # 1 % of deltas lost on the way
                observer.merge(delta)
        deltas.clear()
    live = {f"live-{k}" for k in range(CYCLES // 1_000)}
    observer.merge(node.state())  # the push/pull that repairs the losses
    assert set(node.names()) == set(observer.names()) == live
    nodes = 2  # worker and observer: one context entry and one floor each at most
    for registry in (node, observer):
        assert registry.size() <= len(live) + 2 * nodes
    assert observer.state() == joined(observer.state(), node.state())
    assert len(encode(node.state())) < 60 * len(live) + 100


def test_churn_across_restarts_and_failures_stays_bounded() -> None:
    rng = random.Random(5)
    incarnations = {f"n{i}": 1 for i in range(4)}
    replicas = {name: Registry(name, inc) for name, inc in incarnations.items()}
    observer = Registry("observer", 1)
    for step in range(20_000):
        name = rng.choice(sorted(replicas))
        replica = replicas[name]
        if step % 2_000 == 1_999:  # a crash, detected, then a restart
            observer.merge(replica.state())
            observer.node_down(name, replica.incarnation)
            incarnations[name] += 10
            replicas[name] = Registry(name, incarnations[name])
            continue
        key = f"k{rng.randrange(8)}"
        delta = replica.register(key, "a") if rng.random() < 0.5 else replica.unregister(key)
        observer.merge(delta)
    for replica in replicas.values():
        observer.merge(replica.state())
    live = len(observer.state().entries)
    assert live == sum(len(r.state().entries) for r in replicas.values())
    assert observer.size() <= live + 2 * (len(replicas) + 1)
