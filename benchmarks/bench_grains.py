"""Grains against plain actors measured in the same run.

Remote rows: this process (a cluster member that hosts no grains) asks grains hosted by a
second process (``python -m benchmarks.bench_grains serve``), so every grain lives there.
Floor: a plain remote ask to a public actor on the same far node.  Grain and floor runs
alternate ``PAIRS`` times; rows give medians and the median of the per-pair ratios.

* first message: the ask that activates a new grain (placement, the ActivateGrain request,
  the activation's probe of the members, then the ask itself);
* steady: asks to a grain that is already active;
* memory: bytes per idle activation (an empty grain) in a local system, by tracemalloc,
  against a plain spawned actor;
* moved on a join: the share of identities whose rendezvous owner changes when a sixth
  node joins five (ideal 1/6).
"""

from __future__ import annotations

import gc
import math
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

import swimactors
from swimactors import Actor, Context
from swimactors.cluster.grains import Grain
from swimactors.membership import Config
from swimactors.placement import moved

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


async def _serve() -> None:
    async with swimactors.open_system("far", bind="127.0.0.1:0", config=CONFIG) as system:
        system.register_grain("echo", EchoGrain, idle_timeout=None)
        await system.spawn(Echo, name="echo", public=True)
        assert system.cluster is not None
        print(f"port {system.cluster.node.address[1]}", flush=True)
        await trio.sleep_forever()


@asynccontextmanager
async def _far() -> AsyncIterator[int]:
    command = [sys.executable, "-m", "benchmarks.bench_grains", "serve"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = await trio.to_thread.run_sync(process.stdout.readline)
        yield int(line.split()[1])
    finally:
        process.kill()
        process.wait()


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
        _far() as port,
        swimactors.open_system(
            "near", bind="127.0.0.1:0", seeds=[f"127.0.0.1:{port}"], config=CONFIG
        ) as system,
    ):
        plain = await system.wait_for("echo", timeout=10.0)
        while system.grains.hosts("echo") != ["far"]:
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
                await system.grain("idle", f"g{i}").tell(None)
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


def _moved() -> list[Row]:
    identities = [f"user-{i}" for i in range(100_000)]
    before = [f"node-{i}" for i in range(5)]
    start = time.perf_counter()
    share = len(moved(identities, before, [*before, "node-5"])) / len(identities)
    elapsed = time.perf_counter() - start
    return [
        {
            "benchmark": "grains",
            "metric": "identities moved when a 6th node joins",
            "value": share,
            "unit": "share",
            "floor": 1 / 6,
            "ratio": share * 6,
            "note": f"100,000 identities, rendezvous; owners computed twice in {elapsed:.2f} s",
        }
    ]


async def _measure(quick: bool) -> list[Row]:
    return [*(await _remote(quick)), *(await _memory(quick)), *_moved()]


def run(quick: bool) -> list[Row]:
    import trio.testing

    return trio.run(_measure, quick)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        trio.run(_serve)
    else:
        for result in run(quick="--quick" in sys.argv):
            print(result)
