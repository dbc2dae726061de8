"""Grains against plain actors measured in the same run.

Remote rows: this process (a cluster member that hosts no grains) asks grains hosted by a
second process (``python -m benchmarks.bench_grains serve far``), so every grain lives
there; a third process (``... serve third``) is a plain member.  Each row is a run of
pairs, one grain ask and one floor ask each (which goes first alternates), on the same
connections: medians, the median of the per-pair ratios and both p90s (``python -m
benchmarks.bench_grains remote [--quick]``: these rows alone).

* first message: the ask that activates a new grain (its route, the ask to the grain's
  virtual path on the far node, which holds leases from both other members and so takes
  the grain without probing, the reply) against a plain remote ask to a public actor on
  the far node (target 2x); the note says how many of them probed this node anyway;
* first message with probes: the same for a kind placed LOCAL (no leases, so the far node
  probes both other members) against the floor of that path: an ask that a far actor
  answers after one ask of its own to an actor on the third member (two round trips);
* steady: asks to a grain that is already active, against a plain remote ask;
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
from swimactors import Actor, Context, Grain, GrainContext
from swimactors.membership import Config, Status
from swimactors.placement import Placement, rendezvous

LOCAL = Placement.LOCAL

Row = dict[str, Any]

CONFIG = Config.local()


class Echo(Actor):
    def receive(self, msg: Any, ctx: Context) -> Any:
        return msg


class EchoGrain(Grain):
    def receive(self, msg: Any, ctx: GrainContext) -> Any:
        return msg


class Idle(Grain):
    def receive(self, msg: Any, ctx: GrainContext) -> Any:
        return None


class IdleActor(Actor):
    def receive(self, msg: Any, ctx: Context) -> Any:
        return None


class Relay(Actor):
    """Answers after asking a plain actor on the third member: one ask that makes one more
    remote ask, the round trips a first message takes (the design floor)."""

    def __init__(self) -> None:
        self.peer: Any = None

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if self.peer is None:
            self.peer = await ctx.system.wait_for("echo3", timeout=10.0)
        return await self.peer.ask(msg)


async def _serve(role: str, seeds: list[str]) -> None:
    async with swimactors.open_system(
        role, bind="127.0.0.1:0", seeds=seeds, config=CONFIG
    ) as system:
        if role == "far":
            system.register_grain("echo", EchoGrain, idle_timeout=None)
            system.register_grain("probing", EchoGrain, idle_timeout=None, placement=LOCAL)
            await system.spawn(Echo, name="echo", public=True)
            await system.spawn(Relay, name="relay", public=True)
        else:
            await system.spawn(Echo, name="echo3", public=True)
        assert system.cluster is not None
        print(f"port {system.cluster.node.address[1]}", flush=True)
        await trio.sleep_forever()


async def _pairs(count: int, ours: Any, floor: Any) -> tuple[list[float], list[float]]:
    """``count`` pairs of one ``ours(i)`` and one ``floor(i)`` (which goes first
    alternates, so neither always runs right after the other): their seconds."""
    mine: list[float] = []
    floors: list[float] = []
    for i in range(count):
        for run, samples in (
            ((ours, mine), (floor, floors))
            if i % 2
            else (
                (floor, floors),
                (ours, mine),
            )
        ):
            start = time.perf_counter()
            await run(i)
            samples.append(time.perf_counter() - start)
    return mine, floors


def _row(metric: str, ours: list[float], floors: list[float], floor_name: str, note: str) -> Row:
    """Medians of both, the median of the per-pair ratios, and p90s in the note."""
    ratios = [o / f for o, f in zip(ours, floors, strict=True)]
    return {
        "benchmark": "grains",
        "metric": metric,
        "value": statistics.median(ours) * 1e6,
        "unit": "us",
        "floor": statistics.median(floors) * 1e6,
        "ratio": statistics.median(ratios),
        "note": f"floor: {floor_name}, {len(ours):,} interleaved pairs; p90 "
        f"{_percentile(ours, 0.9) * 1e6:,.0f} vs {_percentile(floors, 0.9) * 1e6:,.0f} us; " + note,
    }


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def _remote(quick: bool) -> list[Row]:
    count = 400 if quick else 2000
    async with (
        served_port("benchmarks.bench_grains", "serve", "far") as port,
        served_port("benchmarks.bench_grains", "serve", "third", f"127.0.0.1:{port}"),
        swimactors.open_system(
            "near", bind="127.0.0.1:0", seeds=[f"127.0.0.1:{port}"], config=CONFIG
        ) as system,
    ):
        plain = await system.wait_for("echo", timeout=10.0)
        relay = await system.wait_for("relay", timeout=10.0)
        assert system.cluster is not None
        while system.grains.hosts("echo") != ["far"] or len(system.cluster.node.members()) < 3:
            await trio.sleep(0.05)
        warm = system.grain("echo", "warm")
        for i in range(100):  # connections, caches and the relay's peer
            await plain.ask(i)
            await relay.ask(i)
            await warm.ask(i)
            await system.grain("echo", f"warm-{i}").ask(i)

        async def ask_plain(i: int) -> None:
            await plain.ask(i)

        async def ask_relay(i: int) -> None:
            await relay.ask(i)

        async def ask_first(i: int) -> None:
            await system.grain("echo", f"first-{i}").ask(i)

        async def ask_first_probing(i: int) -> None:
            await system.grain("probing", f"again-{i}").ask(i)

        async def ask_warm(i: int) -> None:
            await warm.ask(i)

        probes = system.grains.clock  # it ticks at each probe this node answers
        first, floor = await _pairs(count, ask_first, ask_plain)
        probed = system.grains.clock - probes
        again, relayed = await _pairs(count, ask_first_probing, ask_relay)
        steady, steady_floor = await _pairs(count, ask_warm, ask_plain)
    return [
        _row(
            "first-message activation p50",
            first,
            floor,
            "plain remote ask",
            f"target <= 2x; {probed} of {count} probed (the rest on leases)",
        ),
        _row(
            "first-message activation with probes p50 vs relay",
            again,
            relayed,
            "an ask its actor answers after one remote ask to the third member",
            "a kind placed LOCAL (no leases: probes both members); the floor of that path",
        ),
        _row(
            "steady grain ask p50",
            steady,
            steady_floor,
            "plain remote ask",
            "target <= 1.1x",
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
    elif sys.argv[1:2] == ["remote"]:  # the remote rows alone
        for result in trio.run(_remote, "--quick" in sys.argv):
            print(result)
    else:
        for result in run(quick="--quick" in sys.argv):
            print(result)
