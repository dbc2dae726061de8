"""The trio driver wakes only for work: over a simulated minute of steady state on real
loopback sockets (MockClock), every step of a node's timer task ticks a due timer and every
step of its datagram task hands the core a packet."""

from __future__ import annotations

import collections
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio
import trio.testing

from swimactors.membership import Config, Status
from swimactors.membership.node import Node, open_node

pytestmark = pytest.mark.network

CONFIG = Config.lan().replace(probe_interval=0.2, probe_timeout=0.1)
"""The benchmarks' fast profile: an ack normally beats the probe timeout by far."""
NODES = 4
STEADY = 60.0
DRIVER_TASKS = ("Node._run_timers", "Transport._receive_datagrams")


class WakeUps(trio.abc.Instrument):
    """Counts the steps of the nodes' driver tasks, and those that did no work (no call
    of a core's ``tick`` or ``receive``), while :attr:`counting` is set."""

    def __init__(self) -> None:
        self.counting = False
        self.work = 0
        self.steps: collections.Counter[str] = collections.Counter()
        self.empty: collections.Counter[str] = collections.Counter()
        self._before = 0

    def watch(self, node: Node) -> None:
        core = node._core
        core.tick = self._counted(core.tick)  # type: ignore[method-assign]
        core.receive = self._counted(core.receive)  # type: ignore[method-assign]

    def _counted(self, method: Callable[..., None]) -> Callable[..., None]:
        def counted(*args: Any) -> None:
            self.work += 1
            method(*args)

        return counted

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._before = self.work

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        kind = next((k for k in DRIVER_TASKS if task.name.endswith(k)), None)
        if not self.counting or kind is None:
            return
        self.steps[kind] += 1
        if self.work == self._before:
            self.empty[kind] += 1


def test_every_wake_up_of_a_steady_node_handles_a_packet_or_a_due_timer() -> None:
    wake_ups = WakeUps()

    async def main() -> None:
        async with AsyncExitStack() as stack:
            nodes: list[Node] = []
            for i in range(NODES):
                seeds = [nodes[0].address] if nodes else []
                node = await stack.enter_async_context(
                    open_node(name=f"n{i}", bind="127.0.0.1:0", seeds=seeds, config=CONFIG)
                )
                wake_ups.watch(node)
                nodes.append(node)
            with trio.fail_after(30):
                while not all(
                    sum(m.status is Status.UP for m in n.members()) == NODES for n in nodes
                ):
                    await trio.sleep(0.5)
            await trio.sleep(5.0)  # the join's gossip drains
            probes = sum(n.counters["probes"] for n in nodes)
            wake_ups.counting = True
            await trio.sleep(STEADY)
            wake_ups.counting = False
            probes = sum(n.counters["probes"] for n in nodes) - probes
            assert all(n.counters["probe_failures"] == 0 for n in nodes)
        assert wake_ups.empty == {}, f"{wake_ups.empty} of {wake_ups.steps} did nothing"
        expected = NODES * STEADY / CONFIG.probe_interval
        assert expected * 0.95 <= probes <= expected * 1.05
        # one probe a period: a timer wake-up to send the ping, a datagram wake-up for
        # its ack at the prober and one for the ping at the target, little else
        assert wake_ups.steps["Node._run_timers"] <= probes * 1.1
        assert wake_ups.steps["Transport._receive_datagrams"] <= probes * 2.2

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[wake_ups])
