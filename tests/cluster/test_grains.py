"""Grains: activation on first message where placement says, state through a store,
passivation when idle, reactivation elsewhere after a crash, one activation per identity
(local runs under MockClock; cluster runs on the simulator's trio engine)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio

from swimactors import AskTimeout, Consistency, NodeDown, System, message, open_system
from swimactors.cluster.grain_store import DataGrainStore, MemoryGrainStore, SQLiteGrainStore
from swimactors.cluster.grains import Grain, NoGrainHost
from swimactors.placement import rendezvous
from swimactors.sim.trio_engine import SimNet
from tests.cluster.test_ddata import _formed, bounded
from tests.sim.systems import replay, simulated_systems


@message("test.grains.Add")
class Add:
    n: int


EVENTS: list[str] = []


class Account(Grain):
    async def on_activate(self) -> None:
        self.state = self.state or 0
        EVENTS.append(f"activate {self.identity} at {self.state}")

    async def on_deactivate(self) -> None:
        EVENTS.append(f"deactivate {self.identity} at {self.state}")

    async def receive(self, msg: Any, ctx: Any) -> Any:
        if isinstance(msg, Add):
            self.state += msg.n
            await self.save_state()
            return self.state
        return None


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


async def test_a_grain_activates_on_its_first_message_and_passivates_when_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryGrainStore()
    async with open_system(name="solo") as system:
        system.register_grain("account", Account, idle_timeout=10.0, store=store)
        alice = system.grain("account", "alice")
        assert EVENTS == []
        assert await alice.ask(Add(5)) == 5
        assert await system.grain("account", "alice").ask(Add(2)) == 7
        await alice.tell(Add(1))
        assert system.grains.activations == 1
        await trio.sleep(20.0)
        assert EVENTS == ["activate alice at 0", "deactivate alice at 8"]
        assert system.grains.local == {} and len(store) == 1
        assert await alice.ask(Add(1)) == 9  # reactivated from the saved state
        assert EVENTS[-1] == "activate alice at 8" and system.grains.activations == 2
        with pytest.raises(NoGrainHost):
            await system.grain("nobody-hosts-this", "x").ask(Add(1))
        with pytest.raises(ValueError):
            system.grain("bad/kind", "x")
    assert EVENTS[-1] == "deactivate alice at 9"  # the system's stop deactivates too


async def test_grain_state_survives_in_sqlite(tmp_path: Any) -> None:
    path = str(tmp_path / "grains.db")
    for expected in (3, 6):
        store = SQLiteGrainStore(path)
        async with open_system(name="solo") as system:
            system.register_grain("account", Account, store=store)
            assert await system.grain("account", "bob").ask(Add(3)) == expected
        store.close()


def _activations(systems: list[System]) -> Counter[str]:
    return Counter(identity for s in systems for (_, identity) in s.grains.local)


def test_grains_activate_on_their_rendezvous_owner_once_from_any_node() -> None:
    identities = [f"user-{i}" for i in range(30)]

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 3) as systems:
            for s in systems:
                s.register_grain("account", Account)
            await _formed(systems)
            while any(len(s.grains.hosts("account")) != 3 for s in systems):
                await trio.sleep(0.1)
            for i, identity in enumerate(identities):
                asker = systems[i % 3]
                assert await asker.grain("account", identity).ask(Add(1)) == 1
            for i, identity in enumerate(identities):
                asker = systems[(i + 1) % 3]
                assert await asker.grain("account", identity).ask(Add(1)) == 2
            owners = {identity: s.name for s in systems for (_, identity) in s.grains.local}
            hosts = [s.name for s in systems]
            assert owners == {i: rendezvous(i, hosts) for i in identities}
            assert _activations(systems) == Counter(identities)
            return []

    replay(bounded(app), 1)


def test_a_crashed_nodes_grains_reactivate_elsewhere_with_their_replicated_state() -> None:
    identities = [f"user-{i}" for i in range(12)]

    async def app(net: SimNet) -> list[str]:
        log: list[str] = []
        async with simulated_systems(net, 3) as systems:
            for s in systems:
                s.register_grain(
                    "account", Account, store=DataGrainStore(s.data, Consistency.MAJORITY)
                )
            await _formed(systems)
            while any(len(s.grains.hosts("account")) != 3 for s in systems):
                await trio.sleep(0.1)
            for identity in identities:
                await systems[0].grain("account", identity).ask(Add(10))
            lost = sorted(i for (_, i) in systems[2].grains.local)
            log.append(f"n2 held {len(lost)}")
            net.crash("n2")
            for identity in identities:
                while True:
                    try:
                        value = await systems[0].grain("account", identity).ask(Add(1), timeout=2.0)
                        break
                    except (NodeDown, AskTimeout) as exc:  # n2 not yet DOWN everywhere
                        log.append(f"{identity}: {type(exc).__name__}")
                        await trio.sleep(1.0)
                assert value == 11, (identity, value)
            live = systems[:2]
            assert _activations(live) == Counter(identities)
            log.append(f"all answer, {sum(s.grains.activations for s in live)} activations")
        return log

    log = replay(bounded(app), 1)[1]
    print(log)
    assert log[0] != "n2 held 0" and log[-1].startswith("all answer")
