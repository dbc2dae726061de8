"""Groups and pub/sub across systems on the simulator's trio engine: membership from any
node, leaving on stop, pruning on DOWN, and each publish reaching every subscriber once,
in order, with one transfer per other node."""

from __future__ import annotations

from typing import Any

import trio

from swimactors import Actor, message
from swimactors.sim.systems import replay, simulated_systems
from swimactors.sim.trio_engine import SimNet
from tests.cluster.test_ddata import _formed, bounded


@message("test.groups.News")
class News:
    n: int


class Reader(Actor):
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    def receive(self, msg: Any, ctx: Any) -> None:
        if isinstance(msg, News):
            self.seen.append(msg.n)


def test_group_members_join_leave_and_go_with_their_node() -> None:
    async def app(net: SimNet) -> list[str]:
        log: list[str] = []
        async with simulated_systems(net, 3) as systems:
            await _formed(systems)
            refs = []
            for system in systems:
                for _ in range(2):
                    ref = await system.spawn(Reader([]))
                    await system.join_group("workers", ref)
                    refs.append(ref)
            while any(len(s.group_members("workers")) != 6 for s in systems):
                await trio.sleep(0.1)
            members = systems[1].group_members("workers")
            log.append(f"n1 sees {[r.node for r in members]}")
            await systems[0].stop(refs[0])
            await systems[2].leave_group("workers", refs[4])
            while any(len(s.group_members("workers")) != 4 for s in systems):
                await trio.sleep(0.1)
            log.append("stop and leave seen everywhere")
            net.crash("n1")
            while any(len(s.group_members("workers")) != 2 for s in (systems[0], systems[2])):
                await trio.sleep(0.5)
            log.append(f"after n1 down: {[r.node for r in systems[0].group_members('workers')]}")
        return log

    assert replay(bounded(app), 1)[1] == [
        "n1 sees ['n1', 'n1', 'n0', 'n0', 'n2', 'n2']",
        "stop and leave seen everywhere",
        "after n1 down: ['n0', 'n2']",
    ]


def test_every_subscriber_gets_each_publish_once_in_order_one_transfer_per_node() -> None:
    seen: dict[str, list[int]] = {}

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 3) as systems:
            await _formed(systems)
            for system, count in zip(systems, (1, 3, 2), strict=True):
                for k in range(count):
                    seen[f"{system.name}-{k}"] = []
                    ref = await system.spawn(Reader(seen[f"{system.name}-{k}"]))
                    await system.subscribe("news", ref)
            while any(len(s.group_members("$topic:news")) != 6 for s in systems):
                await trio.sleep(0.1)
            for n in range(50):
                assert await systems[0].publish("news", News(n)) == 6
            await trio.sleep(1.0)
            return [str(systems[0].groups.counters["transfers"])]

    log = replay(bounded(app), 1)[1]
    assert log == ["100"]  # 50 publishes x 2 other nodes, not x 5 remote subscribers
    assert seen == {name: list(range(50)) for name in seen}
