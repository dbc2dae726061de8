"""Registry figures: convergence over gossip, wire sizes, compaction, merge speed.

Convergence runs real SWIM cores carrying the registry in the deterministic simulator
(``swimactors.sim``, LAN defaults, no loss) and is in *simulated* seconds; its floor is
the time one single registration takes to reach all 50 nodes in the same cluster.  Sizes
are against the same data as bare CBOR tuples (no dots, no causal context).  Merge speed is
against ``cbor2.loads`` of the same bytes.  Medians over seeds / repeats.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import cbor2

from swimactors.membership import Config, Status, Swim
from swimactors.registry import Registry, RegistryDelegate, decode, encode
from swimactors.sim import NodeSpec, World

Row = dict[str, Any]
NODES = 50
PER_NODE = 20
CYCLES = 100_000


def _cluster(seed: int) -> tuple[World, dict[str, RegistryDelegate]]:
    delegates: dict[str, RegistryDelegate] = {}

    def factory(spec: NodeSpec, rng: random.Random, incarnation: int) -> Swim:
        core = Swim(spec.name, spec.address, spec.config, rng, spec.meta, incarnation)
        delegates[spec.name] = RegistryDelegate(Registry(spec.name, incarnation), core)
        return core

    world = World(seed, config=Config.lan(), core_factory=factory)
    world.add_nodes(NODES)

    def all_up() -> bool:
        return all(
            sum(m.status is Status.UP for m in node.core.members()) == NODES
            for node in world.nodes.values()
        )

    world.run_until(all_up, deadline=120.0, poll=0.5)
    return world, delegates


def _time_to(world: World, done: Callable[[], bool]) -> float:
    start = world.now
    world.run_until(done, deadline=start + 600.0, poll=0.1)
    return world.now - start


def _convergence(seed: int) -> tuple[float, float, float]:
    """Seconds for: one name to reach everyone; 99.9 % of the 50,000 (node, name) pairs
    of 1,000 names to be known; all nodes to hold the identical 1,000-name view."""
    world, delegates = _cluster(seed)
    delegates["n0"].register("solo", "actor")
    single = _time_to(world, lambda: all(d.registry.lookup("solo") for d in delegates.values()))
    delegates["n0"].unregister("solo")
    world.run_for(60.0)
    for name, delegate in delegates.items():
        for j in range(PER_NODE):
            delegate.register(f"{name}/svc{j}", f"actor-{j}")
    total = NODES * PER_NODE
    reference = delegates["n0"].registry

    def mostly() -> bool:
        return sum(len(d.registry) for d in delegates.values()) >= 0.999 * total * NODES

    def converged() -> bool:
        if any(len(d.registry) != total for d in delegates.values()):
            return False
        view = {n: reference.lookup(n) for n in reference.names()}
        return all({n: d.registry.lookup(n) for n in view} == view for d in delegates.values())

    bulk = _time_to(world, mostly)
    return single, bulk, bulk + _time_to(world, converged)


def _sizes() -> list[Row]:
    registry = Registry("node-17", 1_700_000_000)
    delta = registry.register("service/counter-17", "actor-5f3a9c", b"")
    bare = cbor2.dumps(["service/counter-17", "node-17", 1_700_000_000, "actor-5f3a9c", b""])
    full = Registry("node-00", 1_700_000_000)
    for i in range(NODES):
        node = Registry(f"node-{i:02d}", 1_700_000_000 + i)
        for j in range(PER_NODE):
            full.merge(node.register(f"node-{i:02d}/svc{j}", f"actor-{j}"))
    state = encode(full.state())
    bare_state = cbor2.dumps(
        [
            [r.name, r.node, r.incarnation, r.actor_id, r.meta]
            for r in full.state().registrations_all()
        ]
    )
    return [
        _row("delta size", len(encode(delta)), "bytes", len(bare), "one registration"),
        _row("full state size", len(state), "bytes", len(bare_state), "1,000 names, 50 nodes"),
    ]


def _churn() -> list[Row]:
    node, observer = Registry("worker", 1_700_000_000), Registry("observer", 1)
    for i in range(CYCLES):
        name = f"job-{i % 64}"
        observer.merge(node.register(name, f"actor-{i}"))
        observer.merge(node.unregister(name))
    for k in range(10):
        observer.merge(node.register(f"live-{k}", "keeper"))
    fresh = Registry("worker", 1_700_000_000)
    for k in range(10):
        fresh.register(f"live-{k}", "keeper")
    note = f"{CYCLES:,} register/unregister cycles, 10 names live"
    return [
        _row("state after churn", observer.size(), "entries", fresh.size(), note),
        _row(
            "state after churn",
            len(encode(observer.state())),
            "bytes",
            len(encode(fresh.state())),
            "floor: the same 10 names without churn",
        ),
    ]


def _merge_speed(quick: bool) -> Row:
    source = Registry("source", 1_700_000_000)
    payloads = [encode(source.register(f"name-{i}", f"actor-{i}")) for i in range(2_000)]

    def merge_all() -> float:
        target = Registry("target", 1)
        began = time.perf_counter()
        for payload in payloads:
            target.merge(decode(payload))
        return len(payloads) / (time.perf_counter() - began)

    def loads_all() -> float:
        began = time.perf_counter()
        for payload in payloads:
            cbor2.loads(payload)
        return len(payloads) / (time.perf_counter() - began)

    repeats = 3 if quick else 9
    value = statistics.median(merge_all() for _ in range(repeats))
    floor = statistics.median(loads_all() for _ in range(repeats))
    return _row("delta decode+merge", value, "deltas/s", floor, "floor: cbor2.loads alone")


def _lookup_speed() -> list[Row]:
    """Nanoseconds per ``lookup`` among 10,000 held names, each in turn and one name
    again and again, against a dict lookup."""
    registry = Registry("a", 1)
    registry.register_all([(f"name-{i}", f"actor-{i}", b"") for i in range(10_000)])
    names = registry.names()
    plain = dict.fromkeys(names)

    def per_call(lookup: Callable[[str], object], keys: list[str]) -> float:
        began = time.perf_counter()
        for name in keys:
            lookup(name)
        return (time.perf_counter() - began) / len(keys) * 1e9

    rows = []
    for metric, keys in (
        ("lookup, names in turn", names),
        ("lookup, one name", names[:1] * 10_000),
    ):
        value = statistics.median(per_call(registry.lookup, keys) for _ in range(5))
        floor = statistics.median(per_call(plain.get, keys) for _ in range(5))
        rows.append(_row(metric, value, "ns", floor, "10,000 names held; floor: dict.get"))
    return rows


def _row(metric: str, value: float, unit: str, floor: float, note: str) -> Row:
    return {
        "benchmark": "registry",
        "metric": metric,
        "value": value,
        "unit": unit,
        "floor": floor,
        "ratio": value / floor if floor else None,
        "note": note,
    }


def run(quick: bool) -> list[Row]:
    seeds = [1] if quick else [1, 2, 3]
    results = [_convergence(seed) for seed in seeds]
    single, bulk, total = (statistics.median(r[i] for r in results) for i in range(3))
    note = f"simulated s, LAN config, median of {len(seeds)} seed(s); floor: one name"
    rows = [
        _row("99.9% of 1,000 names known / 50 nodes", bulk, "s", single, note + " (gossip)"),
        _row("convergence 1,000 names / 50 nodes", total, "s", single, note),
    ]
    return rows + _sizes() + _churn() + [_merge_speed(quick), *_lookup_speed()]
