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
from swimactors.placement import Placement, rendezvous
from swimactors.registry import registry as registry_module
from swimactors.sim.systems import replay, simulated_systems
from swimactors.sim.trio_engine import SimNet
from tests.cluster.test_ddata import _formed, bounded


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


def test_grains_past_the_registrys_capacity_serve_unrecorded_and_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry_module, "MAX_NAMES_PER_PROCESS", 12)
    identities = [f"user-{i}" for i in range(30)]

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 2) as systems:
            for s in systems:
                s.register_grain("account", Account, placement=Placement.LOCAL)
            await _formed(systems)
            n0 = systems[0]
            for identity in identities:
                assert await n0.grain("account", identity).ask(Add(1)) == 1
            await trio.sleep(1)  # past the record delay: the registry refused the rest
            for identity in identities:
                assert await n0.grain("account", identity).ask(Add(1)) == 2
            assert n0.cluster is not None
            counters = n0.cluster.names.delegate.counters
            return [f"unrecorded {counters['grains_unrecorded'] > 0}"]

    assert replay(bounded(app), 1)[1] == ["unrecorded True"]


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
                        # (long enough for an activation that waits for n2's lease: an
                        # ask that timed out there may still be served, and its retry too)
                        value = (
                            await systems[0].grain("account", identity).ask(Add(1), timeout=10.0)
                        )
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
    assert log[0] != "n2 held 0" and log[-1].startswith("all answer")


PROCESSING: dict[str, dict[str, System]] = {}
"""identity -> the nodes whose activation is inside ``receive`` for it right now."""
OVERLAPS: list[str] = []


class Slow(Grain):
    """Takes simulated time per message and records overlapping processing."""

    async def receive(self, msg: Any, ctx: Any) -> Any:
        system = ctx.system
        busy = PROCESSING.setdefault(self.identity, {})
        for node, other in busy.items():
            if other.quorum_state in ("ok", "pending") and system.quorum_state in ("ok", "pending"):
                views = []
                for x in (other, system):
                    assert x.cluster is not None
                    r = x.cluster.names.registration(f"$grain/slow/{self.identity}")
                    views.append(f"{x.name}:{r and (r.node, r.incarnation, r.clock)}")
                OVERLAPS.append(
                    f"{trio.current_time():.3f} {self.identity} {node}+{system.name} {views}"
                )
        busy[system.name] = system
        try:
            await trio.sleep(0.05)
            self.state = (self.state or 0) + 1
            return self.state
        finally:
            del busy[system.name]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_under_a_partition_only_the_serving_side_processes_and_one_activation_remains(
    seed: int,
) -> None:
    from swimactors import SplitBrainConfig
    from swimactors.quorum import keep_majority

    identities = [f"user-{i}" for i in range(15)]
    PROCESSING.clear()
    OVERLAPS.clear()

    async def app(net: SimNet) -> list[str]:
        log: list[str] = []
        rule = SplitBrainConfig(strategy=keep_majority(), stable_after=3.0)
        async with simulated_systems(net, 5, split_brain=rule) as systems:
            for s in systems:
                s.register_grain("slow", Slow, idle_timeout=None)
            await _formed(systems)
            while any(len(s.grains.hosts("slow")) != 5 for s in systems):
                await trio.sleep(0.1)
            answered = Counter[str]()

            async def load(asker: System, offset: int) -> None:
                i = offset
                while True:
                    i += 1
                    identity = identities[i % len(identities)]
                    try:
                        await asker.grain("slow", identity).ask(None, timeout=1.0)
                        answered[asker.name] += 1
                    except Exception:  # QuorumLost, NodeDown, AskTimeout, ...
                        answered[f"{asker.name} failed"] += 1
                        await trio.sleep(0.2)

            async with trio.open_nursery() as nursery:
                for k, asker in enumerate(systems):
                    nursery.start_soon(load, asker, 3 * k)
                await trio.sleep(5.0)
                names = [s.name for s in systems]
                net.partition(names[:3], names[3:])
                await trio.sleep(30.0)
                log.append(f"split {[s.quorum_state for s in systems]}")
                net.heal()
                while any(s.quorum_state != "ok" for s in systems):
                    await trio.sleep(0.5)
                await trio.sleep(20.0)
                nursery.cancel_scope.cancel()
            await trio.sleep(10.0)
            held = _activations(systems)
            log.append(f"after heal: {sorted(set(held.values()))} activation(s) per identity")
            log.append(f"answered {sorted(answered.items())}")
        return log

    log = replay(bounded(app), seed)[1]
    assert OVERLAPS == []
    assert log[0] == "split ['ok', 'ok', 'ok', 'lost', 'lost']"
    assert log[1] == "after heal: [1] activation(s) per identity"


class Busy(Grain):
    """Stays 2 s inside ``receive``, recording overlaps as :class:`Slow` does."""

    async def receive(self, msg: Any, ctx: Any) -> Any:
        system = ctx.system
        busy = PROCESSING.setdefault(self.identity, {})
        OVERLAPS.extend(
            f"{trio.current_time():.3f} {self.identity} {node}+{system.name}"
            for node, other in busy.items()
            if _serving(other) and _serving(system)
        )
        busy[system.name] = system
        try:
            await trio.sleep(2.0)
            return system.name
        finally:
            del busy[system.name]


def _serving(system: System) -> bool:
    return system.quorum_state in ("ok", "pending")


@pytest.mark.parametrize("seed", [1, 2])
def test_in_a_cut_an_activation_waits_for_the_far_side_until_the_rule_took_over(
    seed: int,
) -> None:
    """A 3|2 cut; the minority may serve for up to ``stable_after`` (10 s, its heartbeat
    lease), longer than SWIM takes to count it DOWN.  Grain ``x`` gets a first message
    on both sides (local placement: each activates it); ``held``, active on n3 and kept
    busy by n4, gets one on n0.  An activation waits for the members it cannot reach
    until they answer or the rule has taken over from them, so only n0 takes ``x`` and
    ``held``, within a second of the takeover, and the minority's ``x`` stops with its
    side.  Before, a probe that failed passed over its member (``sims.grains --seed
    27``): here both sides ran ``x`` and ``held`` at once.  Passing over a member once it
    is DOWN here is not enough either: n0 then took both ~6 s before the takeover, while
    the minority's heartbeat lease could still run (it stopped first here, on its own
    probes)."""
    from swimactors import SplitBrainConfig
    from swimactors.quorum import keep_majority

    PROCESSING.clear()
    OVERLAPS.clear()
    stable = 10.0

    async def app(net: SimNet) -> list[str]:
        rule = SplitBrainConfig(strategy=keep_majority(), stable_after=stable)
        async with simulated_systems(net, 5, split_brain=rule) as systems:
            n0, _, _, n3, n4 = systems
            for s in systems:
                s.register_grain("busy", Busy, idle_timeout=None, placement=Placement.LOCAL)
            await _formed(systems)
            while any(s.quorum_state != "ok" for s in systems):
                await trio.sleep(0.1)
            assert await n3.grain("busy", "held").ask(None) == "n3"
            names = [s.name for s in systems]
            net.partition(names[:3], names[3:])
            cut = trio.current_time()
            answers: dict[str, str] = {}

            async def keep_busy() -> None:  # n3's activation of held runs while it serves
                while n4.quorum_state != "lost":
                    with trio.move_on_after(3.0):
                        await n4.grain("busy", "held").ask(None, timeout=3.0)

            async def ask(s: System, identity: str, wait: float) -> None:
                await trio.sleep(wait)
                target = s.grain("busy", identity)
                if identity == "held":  # the registry routes it to n3: activate it on n0
                    target = s.grains.activate("busy", identity).ref
                try:
                    got = await target.ask(None, timeout=60.0)
                    answers[f"{s.name} {identity}"] = f"{got} {trio.current_time()}"
                except Exception as exc:  # the minority's: QuorumLost, ActorStopped
                    answers[f"{s.name} {identity}"] = type(exc).__name__

            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_busy)
                nursery.start_soon(ask, n0, "x", 0.5)
                nursery.start_soon(ask, n3, "x", 0.5)
                nursery.start_soon(ask, n0, "held", 1.0)
            assert n0.split_brain is not None
            while not any(d.down for d in n0.split_brain.history):
                await trio.sleep(0.1)
            took_over = next(d.time for d in n0.split_brain.history if d.down)
            log = [f"{k}: {v}" for k, v in sorted(answers.items())]
            log.append(f"took over {took_over - cut:.1f} s after the cut")
            log.append(f"{ {i: _holders(systems, i) for i in ('x', 'held')} }")
            net.heal()
        return [*log, f"{took_over}"]

    log = replay(bounded(app), seed)[1]
    assert OVERLAPS == []
    n0_held, n0_x, n3_x, _, held, took_over = log
    assert n3_x in ("n3 x: QuorumLost", "n3 x: ActorStopped"), log
    for line in (n0_held, n0_x):
        node, answered = line.split(": ")[1].split()
        started = float(answered) - 2.0  # receive takes 2 s
        assert node == "n0" and 0 <= started - float(took_over) < 1.0, log
    assert held == "{'x': ['n0'], 'held': ['n0']}", log


def _holders(systems: list[System], identity: str) -> list[str]:
    return [s.name for s in systems if ("busy", identity) in s.grains.local]


def test_without_a_rule_an_activation_waits_for_an_unreachable_member_until_it_is_down() -> None:
    """No split-brain rule: a member cut away is passed over only once it is DOWN here
    (before, a probe that failed passed over it at once, while it was UP or SUSPECT)."""
    from swimactors.membership import Status
    from swimactors.placement import Placement

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 3) as systems:
            for s in systems:
                s.register_grain("account", Account, placement=Placement.LOCAL)
            await _formed(systems)
            net.partition(["n0", "n1"], ["n2"])
            assert await systems[0].grain("account", "y").ask(Add(1), timeout=60.0) == 1
            assert systems[0].cluster is not None
            member = systems[0].cluster.node.member("n2")
            assert member is not None and member.status is Status.DOWN, member
            net.heal()
        return []

    replay(bounded(app), 1)


def test_an_activation_that_waits_past_its_patience_stops_without_the_grain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A member that may serve does not answer for longer than ``PROBE_PATIENCE`` (1 s
    here, 60 by default): the activation stops without taking the grain, its ask fails
    (after one retry along a fresh route, which waits as long), and nothing is held."""
    from swimactors import ActorStopped
    from swimactors.cluster import grains
    from swimactors.membership import Status
    from swimactors.placement import Placement

    monkeypatch.setattr(grains, "PROBE_PATIENCE", 1.0)

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 3) as systems:
            for s in systems:
                s.register_grain("account", Account, placement=Placement.LOCAL)
            await _formed(systems)
            await trio.sleep(3.0)  # past a fresh system's first 3 s
            net.partition(["n0", "n1"], ["n2"])
            cut = trio.current_time()
            with pytest.raises(ActorStopped):
                await systems[0].grain("account", "z").ask(Add(1), timeout=60.0)
            assert trio.current_time() - cut < 2 * (1.0 + 2.0)  # patience + a probe's timeout
            assert systems[0].cluster is not None
            member = systems[0].cluster.node.member("n2")
            assert member is not None and member.status is not Status.DOWN
            assert not systems[0].grains.local
            net.heal()
        return []

    replay(bounded(app), 1)


def test_a_joining_host_takes_over_about_its_share_and_the_rest_stay() -> None:
    identities = [f"user-{i}" for i in range(80)]

    async def app(net: SimNet) -> list[str]:
        log: list[str] = []
        async with simulated_systems(net, 4) as systems:
            first, late = systems[:3], systems[3]
            for s in first:
                s.register_grain("account", Account)
            await _formed(systems)
            while any(len(s.grains.hosts("account")) != 3 for s in systems):
                await trio.sleep(0.1)
            for identity in identities:
                assert await first[0].grain("account", identity).ask(Add(1)) == 1
            before = {i: s.name for s in first for (_, i) in s.grains.local}
            late.register_grain("account", Account)
            while any(len(s.grains.hosts("account")) != 4 for s in systems):
                await trio.sleep(0.1)
            await trio.sleep(2.0)
            stayed = {i: s.name for s in first for (_, i) in s.grains.local}
            for identity in identities:  # state kept in each node's memory store: the
                await late.grain("account", identity).ask(Add(1))  # movers restart at 0
            after = {i: s.name for s in systems for (_, i) in s.grains.local}
            hosts = [s.name for s in systems]
            assert after == {i: rendezvous(i, hosts) for i in identities}
            assert {i: before[i] for i in stayed} == stayed
            log.append(f"moved {len(identities) - len(stayed)} of {len(identities)}")
            assert set(identities) - set(stayed) == {i for i in identities if after[i] == "n3"}
        return log

    log = replay(bounded(app), 1)[1]
    moved = int(log[0].split()[1])
    assert 10 <= moved <= 30  # about a quarter of 80


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_concurrent_first_messages_from_every_node_leave_one_activation(seed: int) -> None:
    """With local placement each asking node activates the grain itself, all at once: the
    probes let exactly one activation take it, the others forward to it (seed 2 once
    deadlocked: a yielded activation's forward made a new one wait for its release)."""
    from swimactors.placement import Placement

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 4) as systems:
            for s in systems:
                s.register_grain("account", Account, placement=Placement.LOCAL)
            await _formed(systems)
            while any(len(s.grains.hosts("account")) != 4 for s in systems):
                await trio.sleep(0.1)
            answers: list[int] = []
            for round_ in range(3):
                identity = f"shared-{round_}"

                async def ask(s: System, identity: str = identity) -> None:
                    answers.append(await s.grain("account", identity).ask(Add(1)))

                async with trio.open_nursery() as nursery:
                    for s in systems:
                        nursery.start_soon(ask, s)
                held = [s.name for s in systems for (_, i) in s.grains.local if i == identity]
                assert len(held) == 1, held
            assert sorted(answers) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
        return []

    replay(bounded(app), seed)


INSIDE: dict[str, list[str]] = {}
"""identity -> the nodes whose activation is inside ``receive`` for it right now."""


class Long(Grain):
    """Stays ``msg`` seconds inside ``receive``; answers who was inside when it entered."""

    async def receive(self, msg: float, ctx: Any) -> Any:
        inside = INSIDE.setdefault(self.identity, [])
        inside.append(ctx.system.name)
        entered = list(inside)
        try:
            await trio.sleep(msg)
            return entered
        finally:
            inside.remove(ctx.system.name)


@pytest.mark.parametrize("sender", [0, 2])
def test_a_grain_handed_off_mid_message_starts_on_its_new_owner_only_after_that_message(
    sender: int,
) -> None:
    """A hand-off stops an activation after its message in hand.  The next message, sent
    from that node (which the new owner does not probe: it sent the message) or from a
    third one (the new owner's probe finds the old activation still stopping), reaches the
    new owner only once the old one is done (before, it ran there at the same time)."""
    identity = next(f"u{i}" for i in range(100) if rendezvous(f"u{i}", ["n0", "n1"]) == "n1")
    INSIDE.clear()

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 3) as systems:
            old, new = systems[:2]
            old.register_grain("long", Long, idle_timeout=None)
            await _formed(systems)
            while any(s.grains.hosts("long") != ["n0"] for s in systems):
                await trio.sleep(0.1)
            answers: list[list[str]] = []

            async def first() -> None:
                answers.append(await old.grain("long", identity).ask(8.0, timeout=30.0))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(first)
                while INSIDE.get(identity) != ["n0"]:  # it is inside receive on n0
                    await trio.sleep(0.05)
                new.register_grain("long", Long, idle_timeout=None)
                while any(s.grains.hosts("long") != ["n0", "n1"] for s in systems) or any(
                    i == identity for (_, i) in old.grains.local
                ):  # handed off
                    await trio.sleep(0.05)
                assert not answers  # still inside
                asker = systems[sender].cluster
                assert asker is not None  # a stale record would route it to n0 again:
                while asker.names.registration(f"$grain/long/{identity}") is not None:
                    await trio.sleep(0.05)  # the withdrawal reaches it within gossip rounds
                grain = systems[sender].grain("long", identity)
                answers.append(await grain.ask(0.1, timeout=30.0))
            assert [i for (_, i) in new.grains.local] == [identity]
            assert answers == [["n0"], ["n1"]], answers
        return []

    replay(bounded(app), 1)
