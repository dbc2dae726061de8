"""Group routers on the simulator's trio engine: routees follow a group's members across
nodes (joins, stops, a crashed node), each routing, a public router used from another
node (asks forwarded to a third), and public pools."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import swimactors
from swimactors import Actor, ActorStopped, Context, message
from swimactors.sim.systems import replay, simulated_systems
from swimactors.sim.trio_engine import SimNet
from tests.cluster.test_ddata import _formed, bounded


@message("test.group_routers.Job")
class Job:
    key: str


class Worker(Actor):
    """Answers with its node and name; records broadcasts."""

    def __init__(self, label: str, seen: list[str]) -> None:
        self.label = label
        self.seen = seen

    def receive(self, msg: Any, ctx: Context) -> str:
        self.seen.append(f"{self.label}:{msg}")
        return self.label


async def _members(system: swimactors.System, count: int) -> None:
    while len(system.group_members("workers")) != count:
        await trio.sleep(0.1)


def test_routees_follow_the_group_across_nodes_with_each_routing() -> None:
    seen: list[str] = []

    async def app(net: SimNet) -> list[str]:
        log: list[str] = []
        async with simulated_systems(net, 3) as (n0, n1, n2):
            await _formed([n0, n1, n2])
            for system, labels in ((n1, ["n1a", "n1b"]), (n2, ["n2a"])):
                for label in labels:
                    await system.join_group("workers", await system.spawn(Worker(label, seen)))
            rr = await n0.spawn_group_router("workers", "rr", public=True)
            hashed = await n0.spawn_group_router(
                "workers", routing="consistent-hash", key=lambda job: job.key
            )
            everyone = await n0.spawn_group_router("workers", routing="broadcast")
            await _members(n0, 3)
            log.append(f"round robin: {[await rr.ask(i) for i in range(6)]}")
            keys = [await hashed.ask(Job(k)) for k in ("a", "b", "c", "a", "b", "c")]
            log.append(f"equal keys, one member: {keys[:3] == keys[3:]}")
            seen.clear()
            await everyone.tell("all")
            await trio.sleep(1.0)
            log.append(f"broadcast: {sorted(seen)}")
            with pytest.raises(TypeError):
                await everyone.ask("x")
            # from another node: n1 asks n0's public router, which forwards to n2 too
            remote = await n1.wait_for("rr", timeout=10)
            log.append(f"via n1: {sorted(Counter([await remote.ask(i) for i in range(6)]))}")
            # a member that stops leaves the routing; a crashed node's members too
            await n1.stop(n1.group_members("workers")[0])
            await _members(n0, 2)
            net.crash("n2")
            await _members(n0, 1)
            log.append(f"after a stop and a crash: {[await rr.ask(i) for i in range(3)]}")
            await n1.stop(n1.group_members("workers")[0])
            await _members(n0, 0)
            with pytest.raises(ActorStopped, match="no members"):
                await rr.ask("anyone?")
            letters = n0.dead_letters.count
            await rr.tell("lost")
            log.append(f"empty: a dead letter ({n0.dead_letters.count - letters})")
        return log

    assert replay(bounded(app), 1)[1] == [
        "round robin: ['n1a', 'n1b', 'n2a', 'n1a', 'n1b', 'n2a']",
        "equal keys, one member: True",
        "broadcast: ['n1a:all', 'n1b:all', 'n2a:all']",
        "via n1: ['n1a', 'n1b', 'n2a']",
        "after a stop and a crash: ['n1b', 'n1b', 'n1b']",
        "empty: a dead letter (1)",
    ]


def test_a_public_pool_is_found_and_used_from_another_node() -> None:
    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 2) as (n0, n1):
            await _formed([n0, n1])
            pool = await n0.spawn_pool(lambda: Worker("w", []), size=2, name="pool", public=True)
            found = await n1.wait_for("pool", timeout=10)
            assert found == pool
            with pytest.raises(swimactors.NameTaken):
                await n1.spawn_pool(lambda: Worker("x", []), size=2, name="pool", public=True)
            return [f"{found.node}: {[await found.ask(i) for i in range(2)]}"]

    assert replay(bounded(app), 1)[1] == ["n0: ['w', 'w']"]


async def test_a_local_only_system_routes_to_its_own_members(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        router = await system.spawn_group_router("workers", routing="random")
        for label in ("a", "b"):
            await system.join_group("workers", await system.spawn(Worker(label, [])))
        assert set(Counter([await router.ask(i) for i in range(40)])) == {"a", "b"}
        await system.stop(router)
        with pytest.raises(ActorStopped, match="is stopped"):
            await router.ask("x")
        letters = system.dead_letters.count
        await router.tell("x")
        assert system.dead_letters.count == letters + 1
        with pytest.raises(ValueError, match="smallest-mailbox"):
            await system.spawn_group_router("workers", routing="smallest-mailbox")
        with pytest.raises(ValueError, match="group name"):
            await system.spawn_group_router("a/b")


async def test_a_round_robin_tell_to_a_pool_member_goes_to_the_pools_routees(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A pool in a group is routed to as a pool (its own routing), not queued in the
    pool cell's own mailbox."""
    async with swimactors.open_system() as system:
        seen: list[str] = []
        made = iter([Worker("r0", seen), Worker("r1", seen)])
        pool = await system.spawn_pool(lambda: next(made), size=2)
        await system.join_group("workers", pool)
        router = await system.spawn_group_router("workers")
        for n in range(4):
            await router.tell(n)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(seen) == ["r0:0", "r0:2", "r1:1", "r1:3"]


Step = tuple[str, int]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(1, 3)),
        st.tuples(st.just("leave"), st.integers(0, 5)),
        st.tuples(st.just("tell"), st.integers(1, 12)),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(script=steps)
def test_round_robin_reaches_only_current_members_and_evenly(script: list[Step]) -> None:
    """Whatever joins and leaves happen between bursts of tells, every tell reaches a
    member of the group at that moment, and within a burst the members' shares differ
    by at most one (a model of the group beside the real router)."""

    async def main() -> None:
        async with swimactors.open_system() as system:
            router = await system.spawn_group_router("g", name="r")
            members: list[Any] = []
            made = 0
            for action, n in script:
                if action == "join":
                    for _ in range(n):
                        ref = await system.spawn(Worker(f"w{made}", []), name=f"w{made}")
                        made += 1
                        await system.join_group("g", ref)
                        members.append(ref)
                elif action == "leave" and members:
                    await system.leave_group("g", members.pop(n % len(members)))
                elif action == "tell":
                    if not members:
                        continue
                    answers = Counter([await router.ask(i) for i in range(n)])
                    assert set(answers) <= {m.path for m in members}
                    shares = [answers.get(m.path, 0) for m in members]
                    assert max(shares) - min(shares) <= 1

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
