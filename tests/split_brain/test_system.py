"""The System's split-brain layer on three loopback nodes, one cut off from the others."""

from __future__ import annotations

from typing import Any

import outcome
import pytest
import trio

import swimactors
from swimactors import Actor, QuorumChanged, QuorumLost, SplitBrainConfig
from swimactors.quorum import down_all, keep_majority

from .helpers import Partition, open_quorum_systems, until

RULE = SplitBrainConfig(strategy=keep_majority(), stable_after=3.0, takeover_margin=1.0)
"""Heartbeats go every second, so the lease (= stable_after) must span a few of them."""


class Counter(Actor):
    def __init__(self) -> None:
        self.value = 0

    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        if msg == "add":
            self.value += 1
        return self.value


def holders(systems: list[swimactors.System], name: str) -> set[str]:
    """The nodes running a local actor called ``name``."""
    return {s.name for s in systems if name in s.children}


def registered_on(system: swimactors.System, name: str) -> str | None:
    assert system.cluster is not None
    registration = system.cluster.names.registration(name)
    return None if registration is None else registration.node


async def test_minority_stops_majority_takes_over_and_heal_leaves_one_holder() -> None:
    with trio.fail_after(50):
        partition = Partition()
        async with open_quorum_systems(3, partition, split_brain=RULE) as systems:
            n0, n1, n2 = systems
            for system in systems:
                system.register_spawnable("counter", Counter)
            await n2.spawn("counter", name="the-counter", singleton=True)
            await n2.spawn(Counter, name="plain", public=True)
            await until(lambda: all(registered_on(s, "the-counter") == "n2" for s in systems))
            await until(lambda: all(registered_on(s, "plain") == "n2" for s in systems))

            cut = trio.current_time()
            partition.cut([n0, n1], [n2])

            await until(lambda: n2.quorum_state == "lost", timeout=15)
            lost_after = trio.current_time() - cut
            assert holders(systems, "the-counter") == set() or holders(systems, "the-counter") == {
                "n2"
            }  # stopping is asynchronous
            assert n2.split_brain is not None and n2.split_brain.health()["quorum"] == "lost"
            with pytest.raises(QuorumLost):
                await n2.find("plain")
            with pytest.raises(QuorumLost):
                await n2.spawn(Counter, name="other", public=True)
            await until(lambda: "the-counter" not in n2.children, timeout=5)
            assert n2.live_actors == 1  # "plain" keeps running, unnamed

            await until(lambda: holders(systems, "the-counter") == {"n0"}, timeout=20)
            failover_after = trio.current_time() - cut
            await until(lambda: n0.quorum_state == n1.quorum_state == "ok", timeout=10)
            counter = await n1.wait_for("the-counter", timeout=5)
            assert await counter.ask("add") == 1
            assert registered_on(n1, "plain") is None  # pruned with n2

            partition.heal()
            await until(lambda: all(s.quorum_state == "ok" for s in systems), timeout=25)
            await until(
                lambda: (
                    all(registered_on(s, "the-counter") == "n0" for s in systems)
                    and all(registered_on(s, "plain") == "n2" for s in systems)
                ),
                timeout=10,
            )
            assert holders(systems, "the-counter") == {"n0"}
            assert await (await n2.find("the-counter")).ask("add") == 2  # type: ignore[union-attr]
            print(
                f"\nminority lost after {lost_after:.2f} s, "
                f"singleton failed over after {failover_after:.2f} s"
            )


async def test_a_remote_ask_from_the_losing_side_fails_fast() -> None:
    with trio.fail_after(30):
        partition = Partition()
        async with open_quorum_systems(3, partition, split_brain=RULE) as systems:
            n0, _, n2 = systems
            ref = await n0.spawn(Counter, name="c", public=True)
            remote = await n2.wait_for("c", timeout=5)
            assert await remote.ask("add") == 1
            with n2.events() as events:
                partition.cut(systems[:2], [n2])
                await until(lambda: n2.quorum_state == "lost", timeout=15)
                async for event in events:  # system events say so too
                    if isinstance(event, QuorumChanged):
                        assert not event.serving
                        break
            with trio.fail_after(0.5), pytest.raises(QuorumLost):
                await remote.ask("add")
            outcomes: list[outcome.Outcome[Any]] = []  # an ask from asyncio or blocking code
            remote.start_ask("add", 1.0, outcomes.append)
            assert len(outcomes) == 1 and isinstance(outcomes[0], outcome.Error)
            assert isinstance(outcomes[0].error, QuorumLost)
            assert await ref.ask("add") == 2  # the majority still serves


async def test_split_brain_is_refused_without_a_cluster_or_a_rule() -> None:
    with pytest.raises(ValueError, match="split_brain needs a cluster"):
        async with swimactors.open_system("solo", split_brain=keep_majority()):
            pass
    with pytest.raises(TypeError, match="quorum rule"):
        async with swimactors.open_system("n", bind="127.0.0.1:0", split_brain="keep-majority"):  # type: ignore[arg-type]
            pass


async def test_a_singleton_needs_a_registered_factory_and_a_rule() -> None:
    async with open_quorum_systems(1, split_brain=RULE) as (system,):
        with pytest.raises(ValueError, match="register_spawnable"):
            await system.spawn(Counter, name="x", singleton=True)
        system.register_spawnable("counter", Counter)
        ref = await system.spawn(Counter, name="x", singleton=True)
        assert await ref.ask("add") == 1
    async with open_quorum_systems(1) as (plain,):
        plain.register_spawnable("counter", Counter)
        with pytest.raises(ValueError, match="split_brain"):
            await plain.spawn("counter", name="x", singleton=True)


async def test_down_all_stops_every_side_and_the_host_restarts_the_singleton_after_heal() -> None:
    rule = SplitBrainConfig(strategy=down_all(), stable_after=3.0, takeover_margin=1.0)
    with trio.fail_after(50):
        partition = Partition()
        async with open_quorum_systems(3, partition, split_brain=rule) as systems:
            for system in systems:
                system.register_spawnable("counter", Counter)
            first = await systems[0].spawn("counter", name="the-counter", singleton=True)
            assert await first.ask("add") == 1
            await until(lambda: all(registered_on(s, "the-counter") == "n0" for s in systems))

            partition.cut(systems[:2], systems[2:])
            await until(lambda: all(s.quorum_state == "lost" for s in systems), timeout=15)
            await until(lambda: holders(systems, "the-counter") == set(), timeout=5)

            partition.heal()
            await until(lambda: all(s.quorum_state == "ok" for s in systems), timeout=25)
            await until(
                lambda: (
                    len(holders(systems, "the-counter")) == 1
                    and len({registered_on(s, "the-counter") for s in systems}) == 1
                    and registered_on(systems[0], "the-counter") is not None
                ),
                timeout=10,
            )
            (holder,) = holders(systems, "the-counter")
            host = systems[0].split_brain
            assert host is not None and holder == host.tracker.singleton_host()
            counter = await systems[2].find("the-counter")
            assert counter is not None and await counter.ask("add") == 1  # a new instance
