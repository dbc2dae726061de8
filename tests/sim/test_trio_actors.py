"""Whole actor applications on the trio engine: three ``open_system`` nodes on the
simulated network (membership datagrams and actor connections alike) under MockClock
with trio's scheduler seeded, so the run replays from its seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from swimactors import Actor, NodeDown, SplitBrainConfig, message
from swimactors.quorum import keep_majority
from swimactors.sim.systems import replay, simulated_systems
from swimactors.sim.trio_engine import SimNet

ROOT = Path(__file__).resolve().parents[2]


@message("test.Bump")  # not module.Class: pytest and a plain import name this module apart
class Bump:
    n: int


class Counter(Actor):
    def __init__(self) -> None:
        self.value = 0

    async def receive(self, msg: Any, ctx: Any) -> Any:
        match msg:
            case Bump(n=n):
                self.value += n
                return self.value
        return None


async def counter_app(net: SimNet) -> list[str]:
    """n2 holds a public counter; n0 finds it by name and bumps it; n2 crashes."""
    log: list[str] = []
    async with simulated_systems(net, 3) as systems:
        await systems[2].spawn(Counter(), name="counter", public=True)
        ref = None
        while ref is None:
            await trio.sleep(0.25)
            ref = await systems[0].find("counter")
        log.append(f"found at {trio.current_time():.6f} on {ref.node}")
        for n in range(1, 6):
            log.append(f"{trio.current_time():.6f} -> {await ref.ask(Bump(n), timeout=2.0)}")
        net.crash("n2")
        try:
            await ref.ask(Bump(100), timeout=30.0)
            log.append("answered after the crash")
        except NodeDown:
            log.append(f"{trio.current_time():.6f} NodeDown")
        while await systems[0].find("counter") is not None:  # pruned once n2 is DOWN
            await trio.sleep(0.25)
        log.append(f"{trio.current_time():.6f} name gone")
        errors = [
            s.cluster.transport.counters["connection_errors"]
            for s in systems
            if s.cluster is not None
        ]
        log.append(f"connection errors {errors}")  # broken streams are no internal errors
    return log


def test_an_actor_application_runs_on_the_simulated_network() -> None:
    _, log = replay(counter_app, 1)
    assert log[0].endswith("on n2")
    assert [line.split(" -> ")[1] for line in log[1:6]] == ["1", "3", "6", "10", "15"]
    assert log[6].endswith("NodeDown") and log[7].endswith("name gone")
    assert log[8] == "connection errors [0, 0, 0]"


def test_an_actor_application_replays_from_its_seed() -> None:
    first, again, other = replay(counter_app, 2), replay(counter_app, 2), replay(counter_app, 3)
    assert first == again
    assert other[0] != first[0]


async def split_app(net: SimNet) -> list[str]:
    """Five systems with keep-majority cut 3|2: the minority stops serving, the majority
    keeps serving; after the heal every system serves again."""
    log: list[str] = []
    rule = SplitBrainConfig(strategy=keep_majority(), stable_after=3.0)
    async with simulated_systems(net, 5, split_brain=rule) as systems:

        def states() -> list[str]:
            return [s.split_brain.state if s.split_brain else "-" for s in systems]

        async def until(wanted: list[str], limit: float) -> None:
            with trio.move_on_after(limit):
                while states() != wanted:
                    await trio.sleep(0.1)
            log.append(f"{trio.current_time():.3f} {states()}")

        names = [s.name for s in systems]
        await until(["ok"] * 5, 60.0)
        net.partition(names[:3], names[3:])
        await until(["ok"] * 3 + ["lost"] * 2, 30.0)
        net.heal()
        await until(["ok"] * 5, 120.0)
    return log


def test_a_split_brain_rule_decides_on_the_simulated_network_and_replays() -> None:
    first = replay(split_app, 4)
    assert [line.split(" ", 1)[1] for line in first[1]] == [
        str(["ok"] * 5),
        str(["ok"] * 3 + ["lost"] * 2),
        str(["ok"] * 5),
    ]
    assert replay(split_app, 4) == first


def test_an_actor_application_replays_across_processes_and_hash_seeds() -> None:
    """Nothing in the run may depend on Python's per-process string hashing."""
    code = (
        "from tests.sim.test_trio_actors import counter_app, replay; "
        "print(replay(counter_app, 2)[0])"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            timeout=120,
            check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert hashes == {replay(counter_app, 2)[0]}
