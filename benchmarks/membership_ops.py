"""Bytecodes and Python calls per handled event of one membership node (not part of
``make bench``; deterministic, so a trim of the core can be counted exactly).

    python -m benchmarks.membership_ops [NODES] [SECONDS] [TOP]

One driven node (the core and :class:`~swimactors.membership.driven.DrivenNode`'s
deliver, tick and flush, plus ``next_deadline`` once a turn as the lean loop calls it)
among NODES cores (default 8) of a formed cluster at the fast profile, on a virtual clock
with 1 ms between nodes, for SECONDS simulated (default 60; the first 2 not counted).
``sys.settrace`` counts the opcodes and calls of that node's turns; a handled event is a
probe sent, a ping answered or an ack received.  The sockets and the loop are left out
(the same for every core), and so is what a wake-up costs cold: docs/performance.md
measured that bytecodes are not most of it.
"""

from __future__ import annotations

import collections
import heapq
import os
import random
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from swimactors.membership import Config
from swimactors.membership.core import FormedCluster, Swim
from swimactors.membership.driven import DrivenNode
from swimactors.membership.types import Member, MemberEvent, Packet, Status

LATENCY = 0.001
WARM_UP = 2.0


class _Counting:
    """Opcodes and calls per code object while :meth:`run` runs a function."""

    def __init__(self) -> None:
        self.ops: collections.Counter[CodeType] = collections.Counter()
        self.calls: collections.Counter[CodeType] = collections.Counter()
        self.on = False

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.ops[frame.f_code] += 1
        return self._local

    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        self.calls[frame.f_code] += 1
        frame.f_trace_opcodes = True
        return self._local

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self.on:
            return fn(*args)
        sys.settrace(self._call)
        try:
            return fn(*args)
        finally:
            sys.settrace(None)


class _Network:
    """Packets in flight and timers, by time (a heap)."""

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, tuple[Any, ...]]] = []
        self._order = 0
        self._index = {address: i for i, address in enumerate(addresses)}
        self.addresses = addresses

    def push(self, at: float, item: tuple[Any, ...]) -> None:
        self._order += 1
        heapq.heappush(self._heap, (at, self._order, item))

    def send(self, source: int, packet: Packet) -> None:
        destination = self._index[packet.destination]
        self.push(self.now + LATENCY, ("packet", destination, self.addresses[source], packet.data))

    def pop(self) -> tuple[float, tuple[Any, ...]] | None:
        if not self._heap:
            return None
        at, _, item = heapq.heappop(self._heap)
        self.now = at
        return at, item


class _Transport:
    def __init__(self, network: _Network) -> None:
        self._network = network
        self.address = network.addresses[0]
        self.counters: collections.Counter[str] = collections.Counter()

    def send(self, packet: Packet) -> None:
        self._network.send(0, packet)


class _Node(DrivenNode):
    def __init__(self, core: Swim, network: _Network) -> None:
        super().__init__(core, _Transport(network), 2.0)
        self._network = network

    def _now(self) -> float:
        return self._network.now

    def _publish(self, event: MemberEvent) -> None:
        pass

    async def leave(self, timeout: float | None = None) -> bool:
        return True


def count(nodes: int, seconds: float) -> tuple[dict[str, int], _Counting]:
    """Run the cluster; the measured node's counters over the counted time, and the counts."""
    config = Config.lan().replace(probe_interval=0.2, probe_timeout=0.1)
    addresses = [(f"10.0.0.{i + 1}", 7946) for i in range(nodes)]
    formed = FormedCluster(
        [Member(f"n{i}", addresses[i], 1000, Status.UP) for i in range(nodes)], 0.0
    )
    cores = [
        Swim(f"n{i}", addresses[i], config, random.Random(i), incarnation=1000, wall_ms=10**12)
        for i in range(nodes)
    ]
    for core in cores:
        core.assume_formed(formed, 0.0)
    network = _Network(addresses)
    node = _Node(cores[0], network)
    counting = _Counting()

    def flush_peer(i: int) -> None:
        for packet in cores[i].take_outgoing():
            network.send(i, packet)
        cores[i].take_events()
        deadline = cores[i].next_deadline()
        if deadline is not None:
            network.push(deadline, ("tick", i))

    for i in range(1, nodes):
        flush_peer(i)
    deadline = cores[0].next_deadline()
    if deadline is not None:
        network.push(deadline, ("tick", 0))
    before: dict[str, int] = {}
    while (popped := network.pop()) is not None and popped[0] <= seconds:
        now, item = popped
        if not counting.on and now > WARM_UP:
            counting.on = True
            before = dict(cores[0].counters)
        index = item[1]
        due = cores[index].next_deadline()
        if item[0] == "tick" and (due is None or now < due):
            continue  # a timer the core has moved since
        if index != 0:
            if item[0] == "packet":
                cores[index].receive(now, item[2], item[3])
            else:
                cores[index].tick(now)
            flush_peer(index)
            continue
        if item[0] == "packet":
            counting.run(node._deliver, item[2], item[3])
        else:
            counting.run(node._tick, now)
            counting.run(node._flush)
        next_deadline = counting.run(cores[0].next_deadline)
        if next_deadline is not None and next_deadline != deadline:
            deadline = next_deadline
            network.push(deadline, ("tick", 0))
    after = cores[0].counters
    return {k: after[k] - before.get(k, 0) for k in after}, counting


def main(argv: list[str]) -> None:
    nodes = int(argv[0]) if argv else 8
    seconds = float(argv[1]) if len(argv) > 1 else 60.0
    top = int(argv[2]) if len(argv) > 2 else 20
    counters, counting = count(nodes, seconds)
    events = counters["probes"] + counters["received_ping"] + counters["received_ack"]
    ops, calls = sum(counting.ops.values()), sum(counting.calls.values())
    kinds = f"{counters['probes']} probes, {counters['received_ping']} pings answered"
    print(f"{events} handled events ({kinds}, {counters['received_ack']} acks)")
    print(f"per event: {ops / events:.0f} bytecodes, {calls / events:.1f} Python calls")
    for code, n in counting.ops.most_common(top):
        where = f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"
        per_call = counting.calls[code] / events
        print(f"{n / events:7.1f} ops {per_call:5.2f} calls  {code.co_name} {where}")


if __name__ == "__main__":
    main(sys.argv[1:])
