"""A registry larger than one message between two real nodes on loopback.

Node b holds ``NAMES`` registrations, node a 5,000, both made directly in the registries
(no gossip), so only push/pull (every second here) carries them, a part at a time.  Each
registry's change stream is taken as a system's names task takes it (woken by
``on_change``), so untaken changes do not pile up.  Measured: the time until both hold
every name, the longest ``merge_remote_state`` (decode and merge of one part) and
``local_state`` (cut and encode of one), the longest trio task step of the one loop both
nodes run on, the longest garbage-collector pause, and, once both have converged, the
longest task step and collection over some seconds of push/pulls (a part each way,
nothing new in it), the objects the collector tracks per name held (what each full
collection walks) and how long a full collection takes.  Floor, in the same run:
decoding and merging a whole state of 40,000 names, about the largest one the decoders
took before parts.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from swimactors.membership import Config, open_node
from swimactors.registry import Registry, RegistryDelegate, decode, encode

Row = dict[str, Any]
NAMES = 60_000
OTHERS = 5_000
WHOLE = 40_000
STEADY = 5.0
"""Seconds of push/pulls measured once both nodes hold every name."""


class _Pauses(trio.abc.Instrument):
    """The longest task step (a loop stall) and the longest gc pause since ``reset``."""

    def __init__(self) -> None:
        self.step = 0.0
        self.gc = 0.0
        self._step_start = 0.0
        self._gc_start = 0.0

    def reset(self) -> None:
        self.step = self.gc = 0.0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._step_start = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        self.step = max(self.step, time.perf_counter() - self._step_start)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc = max(self.gc, time.perf_counter() - self._gc_start)


def _timed(delegate: RegistryDelegate, longest: list[float]) -> None:
    """Record the longest ``merge_remote_state`` of ``delegate`` in ``longest[0]`` and
    its longest ``local_state`` (cutting and encoding one part) in ``longest[1]``."""
    merge: Callable[[bytes, bool, float], None] = delegate.merge_remote_state
    local: Callable[[bool], bytes] = delegate.local_state

    def timed(data: bytes, join: bool, now: float) -> None:
        start = time.perf_counter()
        merge(data, join, now)
        longest[0] = max(longest[0], time.perf_counter() - start)

    def timed_local(join: bool) -> bytes:
        start = time.perf_counter()
        data = local(join)
        longest[1] = max(longest[1], time.perf_counter() - start)
        return data

    delegate.merge_remote_state = timed  # type: ignore[method-assign]
    delegate.local_state = timed_local  # type: ignore[method-assign]


async def _take_changes(registry: Registry) -> None:
    """Take ``registry``'s changes whenever it has some, as a system's names task does."""
    while True:
        woken = trio.Event()
        registry.on_change = woken.set
        await woken.wait()
        registry.take_changes()


def _tracked() -> int:
    """Objects the garbage collector tracks, after a full collection."""
    gc.collect()
    return len(gc.get_objects())


def _full_collection() -> float:
    """Seconds a full collection takes now (the median of five)."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _converge(names: int, pauses: _Pauses) -> dict[str, float]:
    config = attrs.evolve(Config.lan(), push_pull_interval=1.0)
    merges = [0.0, 0.0]
    async with (
        open_node(name="b", bind="127.0.0.1:0", config=config) as b,
        trio.open_nursery() as nursery,
    ):
        tracked = _tracked()
        held_b = Registry("b", b.incarnation)
        nursery.start_soon(_take_changes, held_b)
        _timed(RegistryDelegate(held_b, b), merges)
        held_b.register_all([(f"b-{i}", f"/user/w{i}#1", b"") for i in range(names)])
        async with open_node(name="a", bind="127.0.0.1:0", seeds=[b.address], config=config) as a:
            held_a = Registry("a", a.incarnation)
            nursery.start_soon(_take_changes, held_a)
            delegate_a = RegistryDelegate(held_a, a)
            _timed(delegate_a, merges)
            held_a.register_all([(f"a-{i}", f"/user/w{i}#1", b"") for i in range(OTHERS)])
            await trio.sleep(0)
            pauses.reset()
            start = trio.current_time()
            total = names + OTHERS
            with trio.move_on_after(300):
                while len(held_a) < total or len(held_b) < total:
                    await trio.sleep(0.05)
            result = {
                "seconds": trio.current_time() - start,
                "merge": merges[0],
                "local": merges[1],
                "step": pauses.step,
                "gc": pauses.gc,
                "parts": float(delegate_a.counters["states_received"]),
                "held": float(min(len(held_a), len(held_b)) == total),
            }
            pauses.reset()
            await trio.sleep(STEADY)
            result["steady step"] = pauses.step
            result["steady gc"] = pauses.gc
            held_a.take_changes()
            held_b.take_changes()
            result["tracked"] = (_tracked() - tracked) / (len(held_a) + len(held_b))
            result["full"] = _full_collection()
        nursery.cancel_scope.cancel()
    return result


def _whole_merge() -> float:
    """Seconds to decode and merge a whole state of :data:`WHOLE` names."""
    registry = Registry("b", 1)
    registry.register_all([(f"b-{i}", f"/user/w{i}#1", b"") for i in range(WHOLE)])
    data = encode(registry.state())
    receiver = Registry("a", 1)
    start = time.perf_counter()
    receiver.merge(decode(data))
    return time.perf_counter() - start


def run(quick: bool) -> list[Row]:
    names = 20_000 if quick else NAMES
    pauses = _Pauses()
    gc.callbacks.append(pauses.on_gc)
    try:
        result = trio.run(_converge, names, pauses, instruments=[pauses])
    finally:
        gc.callbacks.remove(pauses.on_gc)
    whole = _whole_merge()
    bench = "registry_parts"
    note = f"{names:,} + {OTHERS:,} names, 2 nodes, push/pull 1 s"
    return [
        {
            "benchmark": bench,
            "metric": "all names on both nodes",
            "value": result["seconds"],
            "unit": "s",
            "note": note if result["held"] else note + ", NOT converged",
        },
        {
            "benchmark": bench,
            "metric": "full-state messages a merged",
            "value": result["parts"],
            "unit": "parts",
        },
        {
            "benchmark": bench,
            "metric": "longest merge_remote_state (one part)",
            "value": result["merge"] * 1000,
            "unit": "ms",
            "floor": whole * 1000,
            "ratio": result["merge"] / whole,
            "note": f"floor: a whole state of {WHOLE:,} names",
        },
        {
            "benchmark": bench,
            "metric": "longest local_state (cut and encode one part)",
            "value": result["local"] * 1000,
            "unit": "ms",
        },
        {
            "benchmark": bench,
            "metric": "longest loop step",
            "value": result["step"] * 1000,
            "unit": "ms",
        },
        {
            "benchmark": bench,
            "metric": "longest gc pause",
            "value": result["gc"] * 1000,
            "unit": "ms",
        },
        {
            "benchmark": bench,
            "metric": "longest loop step once converged",
            "value": result["steady step"] * 1000,
            "unit": "ms",
            "note": f"{STEADY:.0f} s of push/pulls, a part each",
        },
        {
            "benchmark": bench,
            "metric": "longest gc pause once converged",
            "value": result["steady gc"] * 1000,
            "unit": "ms",
        },
        {
            "benchmark": bench,
            "metric": "gc-tracked objects per name held",
            "value": result["tracked"],
            "unit": "objects",
            "note": "both nodes, after converging and a full collection",
        },
        {
            "benchmark": bench,
            "metric": "full collection after converging",
            "value": result["full"] * 1000,
            "unit": "ms",
            "note": "median of 5, both registries held",
        },
    ]
