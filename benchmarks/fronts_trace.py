"""Where an ask from asyncio spends its time: per-ask timestamps at each crossing.

``python -m benchmarks.fronts_trace`` asks the local and the remote echo of
:func:`benchmarks.bench_fronts.two_nodes` from asyncio the way the asyncio front does
(one crossing in, ``ActorRef.start_ask`` on the runtime thread, one crossing out onto a
Future) and
prints the median of each leg: hop in (asyncio hands over -> the ask starts), on the
runtime thread (-> the reply calls back), hop out (-> the Future is settled), resume
(-> the awaiting task runs), and how long the runtime thread stays busy after the reply.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from typing import Any

import trio

from swimactors import ActorRef
from swimactors.aio import _Bridge
from swimactors.loop_thread import LoopThread

from .bench_fronts import Refs, two_nodes

LEGS = ("hop in", "runtime thread", "hop out", "resume")


class _Idle(trio.abc.Instrument):
    """A trio instrument noting when the loop is about to wait for I/O with nothing to do."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def before_io_wait(self, timeout: float) -> None:
        if timeout > 0:
            self.times.append(time.perf_counter())


def trace(asks: int) -> dict[str, list[float]]:
    """Median microseconds of each leg, and of reply -> runtime idle, per target."""

    async def main() -> dict[str, list[float]]:
        loop = asyncio.get_running_loop()
        runtime: LoopThread[Refs] = LoopThread("trace-runtime", two_nodes)
        await asyncio.to_thread(runtime.start, 60.0)
        bridge: _Bridge[Refs] = _Bridge(runtime, loop)
        idle = _Idle()
        await asyncio.to_thread(runtime.call, lambda _: trio.lowlevel.add_instrument(idle))
        try:
            local, remote = await asyncio.to_thread(runtime.call, lambda refs: refs)
            return {
                "local": await legs(runtime, bridge, local, asks, idle),
                "remote": await legs(runtime, bridge, remote, asks, idle),
            }
        finally:
            await asyncio.to_thread(runtime.stop)
            bridge.close()

    return asyncio.run(main())


async def legs(
    runtime: LoopThread[Refs],
    bridge: _Bridge[Refs],
    ref: ActorRef,
    asks: int,
    idle: _Idle,
) -> list[float]:
    clock = time.perf_counter
    stamps: list[list[float]] = []

    def settle(future: asyncio.Future[Any], stamp: list[float], result: Any) -> None:
        stamp.append(clock())
        future.set_result(result)

    def start(_: Refs, future: asyncio.Future[Any], stamp: list[float], msg: int) -> None:
        stamp.append(clock())

        def answered(result: Any) -> None:
            stamp.append(clock())
            bridge._back.send(settle, future, stamp, result)

        ref.start_ask(msg, None, answered)

    for i in range(asks + asks // 10):
        future: asyncio.Future[Any] = bridge.loop.create_future()
        stamp = [clock()]
        runtime.run_sync(functools.partial(start, future=future, stamp=stamp, msg=i), _ignore)
        await future
        stamp.append(clock())
        stamps.append(stamp)
    stamps = stamps[asks // 10 :]
    medians = [statistics.median((s[k + 1] - s[k]) * 1e6 for s in stamps) for k in range(4)]
    busy = []
    for s in stamps:
        after = [t for t in idle.times if t >= s[2]][:1]
        if after:
            busy.append((after[0] - s[2]) * 1e6)
    return [*medians, statistics.median(busy) if busy else float("nan")]


def _ignore(result: object) -> None:
    pass


if __name__ == "__main__":
    for target, values in trace(1000).items():
        parts = ", ".join(f"{leg} {v:.1f}" for leg, v in zip(LEGS, values, strict=False))
        print(f"{target}: {parts} us; runtime busy after the reply {values[-1]:.1f} us")
