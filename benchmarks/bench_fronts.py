"""What the fronts cost: an ask from asyncio (through a runtime thread, and through trio's
guest mode on the asyncio loop) against the trio-native ask in the same run, to a local
and to a remote actor (on the asyncio loop's own connection, and through the runtime
thread), with the bare two thread hops as the floor of any runtime thread;
asks from many asyncio tasks at once against as many trio tasks (throughput); and the CPU
a membership node, and an actor system, use with and without the thread.

Ask latencies are the median of each run's per-ask median; runs of the modes are
interleaved.  CPU is measured per node process (``time.process_time`` over a steady
window, four nodes probing every 0.2 s), the four kinds of cluster interleaved.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, cast

import outcome
import trio

import swimactors
from swimactors import Actor, Context
from swimactors.actors.transport import RemoteTarget
from swimactors.aio import AsyncRef, _Bridge, direct_peers
from swimactors.loop_thread import LoopThread
from swimactors.membership import Config
from swimactors.membership.types import format_address

R = TypeVar("R")
Row = dict[str, Any]
Refs = tuple[swimactors.ActorRef, swimactors.ActorRef]
"""A ref to a local actor and one to an actor on another node."""

CONFIG = Config.local()


class Echo(Actor):
    async def receive(self, msg: Any, ctx: Context) -> Any:
        return msg


@asynccontextmanager
async def two_nodes() -> AsyncIterator[Refs]:
    """Two clustered systems on loopback, an echo actor on each; refs from the first."""
    async with swimactors.open_system("a", bind="127.0.0.1:0", config=CONFIG) as a:
        assert a.cluster is not None
        seed = format_address(a.cluster.node.address)
        async with swimactors.open_system("b", "127.0.0.1:0", [seed], config=CONFIG) as b:
            local = await a.spawn(Echo(), name="echo-a", public=True)
            await b.spawn(Echo(), name="echo-b", public=True)
            remote = await a.wait_for("echo-b", timeout=20)
            await remote.ask(0)  # the actor connection is up before timing starts
            yield local, remote


async def timed(ask: Callable[[int], Awaitable[Any]], n: int) -> float:
    """Median microseconds of ``n`` asks, after a warm-up of ``n // 10``."""
    samples = []
    for i in range(n + n // 10):
        start = time.perf_counter()
        await ask(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples[n // 10 :]) * 1e6


def native(n: int) -> tuple[float, float]:
    async def main() -> tuple[float, float]:
        async with two_nodes() as (local, remote):
            return await timed(local.ask, n), await timed(remote.ask, n)

    return trio.run(main)


TASKS = 32
"""Concurrent askers in the throughput runs (a web service's requests in flight)."""


def native_concurrent(n: int) -> float:
    """Microseconds per ask with :data:`TASKS` trio tasks asking the local echo at once."""

    async def main() -> float:
        async with two_nodes() as (local, _):
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(TASKS):
                    nursery.start_soon(_ask_times, local.ask, n // TASKS)
            return (time.perf_counter() - start) / (n // TASKS * TASKS) * 1e6

    return trio.run(main)


def thread_concurrent(n: int) -> float:
    """The same from :data:`TASKS` asyncio tasks through the runtime thread: replies that
    arrive together wake the asyncio loop once, asks handed over together wake trio once."""

    async def main() -> float:
        async with _runtime(two_nodes) as (bridge, (local, _)):
            ask = AsyncRef(local, bridge).ask
            start = time.perf_counter()
            await asyncio.gather(*(_ask_times(ask, n // TASKS) for _ in range(TASKS)))
            return (time.perf_counter() - start) / (n // TASKS * TASKS) * 1e6

    return asyncio.run(main())


async def _ask_times(ask: Callable[[int], Awaitable[Any]], n: int) -> None:
    for i in range(n):
        await ask(i)


def through_thread(n: int) -> tuple[float, float, float]:
    """The runtime-thread design (what ``aio.open_system`` runs): the systems on a trio loop
    in a thread of their own, asked through :class:`swimactors.aio.AsyncRef`: the local
    echo through the runtime thread, the remote one on the asyncio loop's own connection
    to its node (:mod:`swimactors.actors.aio_peers`), and the remote one through the
    runtime thread (the path with a cluster key, TLS, a split-brain rule or tracing)."""

    async def main() -> tuple[float, float, float]:
        async with _runtime(two_nodes) as (bridge, (local, remote)):
            peers = direct_peers(bridge, cast(RemoteTarget, remote.target).transport)
            try:
                return (
                    await timed(AsyncRef(local, bridge).ask, n),
                    await timed(AsyncRef(remote, bridge, peers).ask, n),
                    await timed(AsyncRef(remote, bridge).ask, n),
                )
            finally:
                peers.close()

    return asyncio.run(main())


@asynccontextmanager
async def _runtime(
    open_resource: Callable[[], AbstractAsyncContextManager[R]],
) -> AsyncIterator[tuple[_Bridge[R], R]]:
    """A :class:`LoopThread` holding ``open_resource()`` open, and the asyncio side of it."""
    runtime = LoopThread("bench-runtime", open_resource)
    await asyncio.to_thread(runtime.start, 60.0)
    bridge = _Bridge(runtime, asyncio.get_running_loop())
    try:
        yield bridge, await bridge.run_sync(lambda resource: resource)
    finally:
        await asyncio.to_thread(runtime.stop)
        bridge.close()


def through_guest_mode(n: int) -> tuple[float, float]:
    """The alternative: trio as a guest on the asyncio loop (same thread), each ask
    handed to a trio task with ``run_sync_soon`` and settled on the asyncio loop."""

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[tuple[trio.lowlevel.TrioToken, trio.Nursery, Refs]]
        ready = loop.create_future()
        finished: asyncio.Future[outcome.Outcome[None]] = loop.create_future()
        stop = trio.Event()

        async def guest() -> None:
            async with two_nodes() as refs, trio.open_nursery() as nursery:
                ready.set_result((trio.lowlevel.current_trio_token(), nursery, refs))
                await stop.wait()
                nursery.cancel_scope.cancel()

        trio.lowlevel.start_guest_run(
            guest,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=finished.set_result,
        )
        token, nursery, (local, remote) = await ready

        def asker(ref: swimactors.ActorRef) -> Callable[[int], Awaitable[Any]]:
            def ask(msg: int) -> Awaitable[Any]:
                future: asyncio.Future[Any] = loop.create_future()

                async def task() -> None:
                    try:
                        future.set_result(await ref.ask(msg))
                    except Exception as exc:
                        future.set_exception(exc)

                token.run_sync_soon(nursery.start_soon, task)
                return future

            return ask

        try:
            return await timed(asker(local), n), await timed(asker(remote), n)
        finally:
            token.run_sync_soon(stop.set)
            (await finished).unwrap()

    return asyncio.run(main())


def two_hops(n: int) -> tuple[float, float]:
    """The floor of any runtime thread: a no-op handed to a trio loop in another thread
    and straight back to the asyncio loop (the two wake-ups every ask pays), through the
    fronts' crossings (a pipe each way) and through the loops' own thread-safe calls
    (trio's ``run_sync_soon``, asyncio's ``call_soon_threadsafe``)."""

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        async with _runtime(_nothing) as (bridge, _):
            token = await bridge.run_sync(lambda _: trio.lowlevel.current_trio_token())

            def hop(_: int) -> Awaitable[None]:
                future: asyncio.Future[None] = loop.create_future()
                token.run_sync_soon(loop.call_soon_threadsafe, future.set_result, None)
                return future

            crossings = await timed(lambda _: bridge.run_sync(_no_op), n)
            return crossings, await timed(hop, n)

    return asyncio.run(main())


def _no_op(_: object) -> None:
    pass


def two_threads(n: int) -> float:
    """The operating system's floor for two hops: two plain threads passing a byte to
    each other over two pipes (no event loop on either side)."""
    there, back = os.pipe(), os.pipe()

    def echo() -> None:
        while os.read(there[0], 1) == b"x":
            os.write(back[1], b"x")

    thread = threading.Thread(target=echo)
    thread.start()
    samples = []
    try:
        for _ in range(n + n // 10):
            start = time.perf_counter()
            os.write(there[1], b"x")
            os.read(back[0], 1)
            samples.append(time.perf_counter() - start)
    finally:
        os.write(there[1], b"q")
        thread.join()
        for fd in (*there, *back):
            os.close(fd)
    return statistics.median(samples[n // 10 :]) * 1e6


@asynccontextmanager
async def _nothing() -> AsyncIterator[object]:
    yield object()


# -- membership CPU with and without the thread --------------------------------------------


def cluster_cpu(mode: str, nodes: int, window: float) -> list[float]:
    """CPU % of each node process of a ``nodes``-node cluster over ``window`` seconds."""
    command = [sys.executable, "-m", "benchmarks.fronts_node", mode]
    warmup, tail = 3.0, 1.0
    timing = [str(warmup), str(window), str(tail)]
    processes: list[subprocess.Popen[str]] = []
    try:
        first = subprocess.Popen([*command, "n0", "", *timing], stdout=subprocess.PIPE, text=True)
        processes.append(first)
        assert first.stdout is not None
        seed = first.stdout.readline().split()[1]
        for index in range(1, nodes):
            processes.append(
                subprocess.Popen(
                    [*command, f"n{index}", seed, *timing], stdout=subprocess.PIPE, text=True
                )
            )
        shares = []
        for process in processes:
            output, _ = process.communicate(timeout=warmup + window + tail + 30)
            shares.append(float(output.split()[-1]))
        return shares
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()


def run(quick: bool) -> list[Row]:
    asks = 300 if quick else 2000
    rounds = 1 if quick else 5
    results: dict[str, list[tuple[float, ...]]] = {"trio": [], "thread": [], "guest": []}
    hops: dict[str, list[float]] = {"crossings": [], "loops' calls": [], "threads": []}
    concurrent: dict[str, list[float]] = {"trio": [], "thread": []}
    for _ in range(rounds):
        results["trio"].append(native(asks))
        results["thread"].append(through_thread(asks))
        results["guest"].append(through_guest_mode(asks))
        crossings, loops_calls = two_hops(asks)
        hops["crossings"].append(crossings)
        hops["loops' calls"].append(loops_calls)
        hops["threads"].append(two_threads(asks))
        concurrent["trio"].append(native_concurrent(4 * asks))
        concurrent["thread"].append(thread_concurrent(4 * asks))

    def p50(mode: str, which: int) -> float:
        return statistics.median(r[which] for r in results[mode])

    def added(mode: str, which: int, floor: int) -> float:
        """The median over rounds of each round's difference to its trio-native ask."""
        pairs = zip(results[mode], results["trio"], strict=True)
        return statistics.median(r[which] - trio[floor] for r, trio in pairs)

    floor = statistics.median(hops["threads"])
    rows: list[Row] = [
        {
            "benchmark": "fronts",
            "metric": "two plain threads, a byte over a pipe each way (the OS floor)",
            "value": floor,
            "unit": "us",
            "note": "no event loop on either side",
        }
    ]
    for how, label in (("crossings", "the fronts' crossings"), ("loops' calls", "loops' calls")):
        value = statistics.median(hops[how])
        rows.append(
            {
                "benchmark": "fronts",
                "metric": f"asyncio -> trio thread -> asyncio, no work, {label}",
                "value": value,
                "unit": "us",
                "floor": floor,
                "ratio": value / floor,
                "note": "what any runtime thread adds at least"
                if how == "crossings"
                else "run_sync_soon there, call_soon_threadsafe back",
            }
        )
    cases = (
        ("local actor, runtime thread", "thread", 0, 0),
        ("local actor, trio guest mode", "guest", 0, 0),
        ("remote actor, the asyncio loop's own connection", "thread", 1, 1),
        ("remote actor, through the runtime thread", "thread", 2, 1),
        ("remote actor, trio guest mode", "guest", 1, 1),
    )
    for label, mode, which, trio_which in cases:
        floor, value = p50("trio", trio_which), p50(mode, which)
        rows.append(
            {
                "benchmark": "fronts",
                "metric": f"ask p50 from asyncio, {label}",
                "value": value,
                "unit": "us",
                "floor": floor,
                "ratio": value / floor,
                "note": f"adds {added(mode, which, trio_which):.0f} us to the trio-native ask"
                " (median of the rounds' differences)",
            }
        )
    per_ask, floor = statistics.median(concurrent["thread"]), statistics.median(concurrent["trio"])
    rows.append(
        {
            "benchmark": "fronts",
            "metric": f"ask throughput from {TASKS} asyncio tasks at once, local actor",
            "value": per_ask,
            "unit": "us per ask",
            "floor": floor,
            "ratio": per_ask / floor,
            "note": f"floor: {TASKS} trio tasks; wake-ups batched both ways",
        }
    )
    nodes, window = 4, (5.0 if quick else 10.0)
    pairs = {"membership node": ("thread", "trio"), "actor system": ("system-thread", "system")}
    cpu: dict[str, list[float]] = {mode: [] for pair in pairs.values() for mode in pair}
    for _ in range(1 if quick else 3):
        for mode in cpu:
            cpu[mode].extend(cluster_cpu(mode, nodes, window))
    for what, (on, off) in pairs.items():
        with_thread, without = statistics.median(cpu[on]), statistics.median(cpu[off])
        rows.append(
            {
                "benchmark": "fronts",
                "metric": f"CPU per {what}, {nodes} nodes, probes every 0.2 s, thread on",
                "value": with_thread,
                "unit": "% of a core",
                "floor": without,
                "ratio": with_thread / without if without else None,
                "note": "floor: the same, its node on the program's trio loop",
            }
        )
    return rows
