"""Grains against plain actors measured in the same run.

Remote rows: this process (a cluster member that hosts no grains) asks grains hosted by a
second process (``python -m benchmarks.bench_grains serve``), so every grain lives there;
a third process (``... member``) is a plain member, so each activation probes one node.
Floor: a plain remote ask to a public actor on the same far node.  Grain and floor runs
alternate ``PAIRS`` times; rows give medians and the median of the per-pair ratios.

* first message: the ask that activates a new grain (its route, the ask to the grain's
  virtual path on the far node, the activation's probe of the third member, the reply);
* steady: asks to a grain that is already active;
* memory: bytes per idle activation (an empty grain, after its first message) in a local
  system, by tracemalloc, against a plain spawned actor;
* a join: five hosts in this process (loopback sockets) hold activations, a sixth joins
  and hosts the kind: the share of activations handed off (ideal 1/6) and the seconds
  until every old host has handed off, against the seconds until all five see the new
  member UP (the membership floor of that run).
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
import tracemalloc
from contextlib import AsyncExitStack
from typing import Any

import trio

import swimactors
from benchmarks.serving import served_port
from swimactors import Actor, Context
from swimactors.cluster.grains import Grain
from swimactors.membership import Config, Status
from swimactors.placement import rendezvous

Row = dict[str, Any]

CONFIG = Config.local()
PAIRS = 3


class Echo(Actor):
    def receive(self, msg: Any, ctx: Context) -> Any:
        return msg


class EchoGrain(Grain):
    def receive(self, msg: Any, ctx: Context) -> Any:
        return msg


class Idle(Grain):
    def receive(self, msg: Any, ctx: Context) -> Any:
        return None


class IdleActor(Actor):
    def receive(self, msg: Any, ctx: Context) -> Any:
        return None


async def _serve(role: str, seeds: list[str]) -> None:
    async with swimactors.open_system(
        role, bind="127.0.0.1:0", seeds=seeds, config=CONFIG
    ) as system:
        if role == "far":
            system.register_grain("echo", EchoGrain, idle_timeout=None)
            await system.spawn(Echo, name="echo", public=True)
        assert system.cluster is not None
        print(f"port {system.cluster.node.address[1]}", flush=True)
        await trio.sleep_forever()


async def _latencies(ask: Any, targets: list[Any]) -> list[float]:
    samples = []
    for target in targets:
        start = time.perf_counter()
        await ask(target)
        samples.append(time.perf_counter() - start)
    return samples


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _row(metric: str, ours: list[float], floors: list[float], note: str) -> Row:
    ratios = [o / f for o, f in zip(ours, floors, strict=True)]
    return {
        "benchmark": "grains",
        "metric": metric,
        "value": statistics.median(ours),
        "unit": "us",
        "floor": statistics.median(floors),
        "ratio": statistics.median(ratios),
        "note": note,
    }


async def _remote(quick: bool) -> list[Row]:
    count = 200 if quick else 2000
    async with (
        served_port("benchmarks.bench_grains", "serve", "far") as port,
        served_port("benchmarks.bench_grains", "serve", "third", f"127.0.0.1:{port}"),
        swimactors.open_system(
            "near", bind="127.0.0.1:0", seeds=[f"127.0.0.1:{port}"], config=CONFIG
        ) as system,
    ):
        plain = await system.wait_for("echo", timeout=10.0)
        assert system.cluster is not None
        while system.grains.hosts("echo") != ["far"] or len(system.cluster.node.members()) < 3:
            await trio.sleep(0.05)
        await plain.ask(0)

        async def ask(ref: Any) -> None:
            await ref.ask(1)

        first: list[float] = []
        steady: list[float] = []
        floor_first: list[float] = []
        floor_steady: list[float] = []
        for pair in range(PAIRS):
            fresh = [system.grain("echo", f"p{pair}-{i}") for i in range(count // 4)]
            floor_first.append(_percentile(await _latencies(ask, [plain] * len(fresh)), 0.5))
            first.append(_percentile(await _latencies(ask, fresh), 0.5))
            warm = [fresh[0]] * count
            floor_steady.append(_percentile(await _latencies(ask, [plain] * count), 0.5))
            steady.append(_percentile(await _latencies(ask, warm), 0.5))
    return [
        _row(
            "first-message activation p50",
            [x * 1e6 for x in first],
            [x * 1e6 for x in floor_first],
            "floor: plain remote ask p50 (target <= 2x)",
        ),
        _row(
            "steady grain ask p50",
            [x * 1e6 for x in steady],
            [x * 1e6 for x in floor_steady],
            "floor: plain remote ask p50 (target <= 1.1x)",
        ),
    ]


async def _memory(quick: bool) -> list[Row]:
    count = 10_000 if quick else 100_000
    async with swimactors.open_system(name="mem", mailbox_size=16) as system:
        system.register_grain("idle", Idle, idle_timeout=None)

        async def per_item(make: Any) -> float:
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            await make()
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            return (after - before) / count

        async def activations() -> None:
            for i in range(count):
                await system.grain("idle", f"g{i}").ask(None)
            await trio.testing.wait_all_tasks_blocked()

        async def actors() -> None:
            for _ in range(count):
                await system.spawn(IdleActor())
            await trio.testing.wait_all_tasks_blocked()

        grain_bytes = await per_item(activations)
        actor_bytes = await per_item(actors)
    return [
        {
            "benchmark": "grains",
            "metric": f"memory per idle activation ({count:,})",
            "value": grain_bytes,
            "unit": "B",
            "floor": actor_bytes,
            "ratio": grain_bytes / actor_bytes,
            "note": "floor: a plain idle actor; target <= 2 KB beyond user state",
        }
    ]


async def _join(quick: bool) -> list[Row]:
    count = 600 if quick else 3000
    identities = [f"user-{i}" for i in range(count)]
    async with AsyncExitStack() as stack:

        async def host(name: str, seeds: list[str]) -> swimactors.System:
            system = await stack.enter_async_context(
                swimactors.open_system(name, bind="127.0.0.1:0", seeds=seeds, config=CONFIG)
            )
            system.register_grain("echo", EchoGrain, idle_timeout=None)
            return system

        first = await host("h0", [])
        assert first.cluster is not None
        seeds = [f"127.0.0.1:{first.cluster.node.address[1]}"]
        systems = [first, *[await host(f"h{i}", seeds) for i in range(1, 5)]]
        while any(len(s.grains.hosts("echo")) != 5 for s in systems):
            await trio.sleep(0.05)
        for i, identity in enumerate(identities):
            await systems[i % 5].grain("echo", identity).ask(0)
        before = {identity: s.name for s in systems for (_, identity) in s.grains.local}
        after = [*(s.name for s in systems), "h5"]
        expected = {i for i in identities if rendezvous(i, after) == "h5"}
        start = time.perf_counter()
        late = await host("h5", seeds)
        seen_up = handed_off = 0.0
        while not handed_off:
            await trio.sleep(0.01)
            if time.perf_counter() - start > 120:
                raise TimeoutError("the hand-off did not finish within 120 s")
            now = time.perf_counter() - start
            if not seen_up and all(_sees_up(s, "h5") for s in systems):
                seen_up = now
            if all(not any(i in expected for (_, i) in s.grains.local) for s in systems):
                handed_off = now
        stayed = {identity: s.name for s in systems for (_, identity) in s.grains.local}
        assert all(before[i] == node for i, node in stayed.items())
        for identity in sorted(expected)[:50]:  # they answer again, from the new host
            await first.grain("echo", identity).ask(0)
        at_late = sum(i in {j for (_, j) in late.grains.local} for i in sorted(expected)[:50])
    share = (count - len(stayed)) / count
    return [
        {
            "benchmark": "grains",
            "metric": "share handed off when a 6th host joins 5",
            "value": share,
            "unit": "share",
            "floor": 1 / 6,
            "ratio": share * 6,
            "note": f"{count:,} activations, rendezvous; ideal 1/6; {at_late}/50 moved ones "
            "asked again answered from the new host",
        },
        {
            "benchmark": "grains",
            "metric": "hand-off time when a 6th host joins 5",
            "value": handed_off,
            "unit": "s",
            "floor": seen_up,
            "ratio": handed_off / seen_up if seen_up else None,
            "note": "floor: until all 5 see the new member UP (same run)",
        },
    ]


def _sees_up(system: swimactors.System, node: str) -> bool:
    assert system.cluster is not None
    member = system.cluster.node.member(node)
    return member is not None and member.status is Status.UP


async def _measure(quick: bool) -> list[Row]:
    return [*(await _remote(quick)), *(await _memory(quick)), *(await _join(quick))]


def run(quick: bool) -> list[Row]:
    import trio.testing

    return trio.run(_measure, quick)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        trio.run(_serve, sys.argv[2], sys.argv[3:])
    else:
        for result in run(quick="--quick" in sys.argv):
            print(result)
