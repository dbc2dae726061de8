"""Pools: routings, supervision of routees, the pool's ref as an ordinary ref."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import Actor, ActorFailed, ActorStopped, Context, restart, stop


class Worker(Actor):
    """Answers with its own name; "boom" fails it."""

    def receive(self, msg: Any, ctx: Context) -> str:
        if msg == "boom":
            raise RuntimeError("boom")
        return ctx.self_ref.path.rsplit("/", 1)[1]


class Held(Actor):
    """Holds every message until the test opens ``GATE``."""

    async def receive(self, msg: Any, ctx: Context) -> str:
        await GATE[0].wait()
        return ctx.self_ref.path.rsplit("/", 1)[1]


GATE = [trio.Event()]


async def test_round_robin_takes_each_routee_in_turn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        pool = await system.spawn_pool(Worker, size=3, name="pool")
        assert isinstance(pool, swimactors.ActorRef)
        assert [await pool.ask(n) for n in range(6)] == ["0", "1", "2", "0", "1", "2"]
        assert await system.find("pool") == pool


class Recorder(Actor):
    """Appends (its name, the message) to ``SEEN``."""

    async def receive(self, msg: Any, ctx: Context) -> None:
        SEEN.append((ctx.self_ref.path.rsplit("/", 1)[1], msg))


SEEN: list[tuple[str, Any]] = []


async def test_round_robin_tells_take_each_routee_in_turn_and_skip_a_stopped_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        SEEN.clear()
        pool = await system.spawn_pool(Recorder, size=3, name="rr")
        for n in range(6):
            await pool.tell(n)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(SEEN) == [("0", 0), ("0", 3), ("1", 1), ("1", 4), ("2", 2), ("2", 5)]
        gone = await system.find("rr/1")
        assert gone is not None
        await system.stop(gone)
        SEEN.clear()
        letters = system.dead_letters.count
        for n in range(4):
            await pool.tell(n)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(msg for _, msg in SEEN) == [0, 1, 2, 3]
        assert {name for name, _ in SEEN} == {"0", "2"}
        assert system.dead_letters.count == letters


async def test_random_and_smallest_mailbox_spread_the_load(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        pool = await system.spawn_pool(Worker, size=4, routing="random")
        spread = Counter([await pool.ask(n) for n in range(400)])
        assert set(spread) == {"0", "1", "2", "3"} and min(spread.values()) > 50
        GATE[0] = trio.Event()
        held = await system.spawn_pool(Held, size=3, name="held", routing="smallest-mailbox")
        for path in ("held/0", "held/0", "held/1"):  # loads 2, 1, 0
            (await system.find(path)).tell_nowait("direct")  # type: ignore[union-attr]
        answers: list[str] = []
        async with trio.open_nursery() as nursery:

            async def ask() -> None:
                answers.append(await held.ask("x"))

            for _ in range(3):
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()
            GATE[0].set()
        assert sorted(answers) == ["1", "2", "2"]  # round robin would give 0, 1, 2


async def test_consistent_hash_sends_equal_keys_to_one_routee(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        pool = await system.spawn_pool(
            Worker, size=5, routing="consistent-hash", key=lambda msg: msg[0]
        )
        by_key: dict[str, set[str]] = {}
        for n in range(200):
            key = f"user-{n % 20}"
            by_key.setdefault(key, set()).add(await pool.ask((key, n)))
        assert all(len(routees) == 1 for routees in by_key.values())
        assert len(set().union(*by_key.values())) > 2


async def test_broadcast_reaches_every_routee_and_refuses_asks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: list[tuple[str, Any]] = []

    class Recorder(Actor):
        def receive(self, msg: Any, ctx: Context) -> None:
            got.append((ctx.self_ref.path.rsplit("/", 1)[1], msg))

    async with swimactors.open_system() as system:
        pool = await system.spawn_pool(Recorder, size=3, routing="broadcast")
        await pool.tell("a")
        pool.tell_nowait("b")
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(got) == sorted((r, m) for r in "012" for m in "ab")
        with pytest.raises(TypeError):
            await pool.ask("c")


async def test_routees_are_supervised_and_a_pool_without_routees_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        pool = await system.spawn_pool(Worker, size=2, supervision=restart())
        with pytest.raises(ActorFailed):
            await pool.ask("boom")  # routee 0 restarts and keeps its place
        await trio.testing.wait_all_tasks_blocked()
        assert [await pool.ask(n) for n in range(4)] == ["1", "0", "1", "0"]

        mortal = await system.spawn_pool(Worker, size=2, supervision=stop())
        for _ in range(2):
            with pytest.raises(ActorFailed):
                await mortal.ask("boom")
            await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ActorStopped):
            await mortal.ask("x")
        await trio.testing.wait_all_tasks_blocked()
        assert mortal.target.state.value == "dead"  # type: ignore[attr-defined]


def test_bad_pools_are_typed_errors() -> None:
    async def main() -> None:
        async with swimactors.open_system() as system:
            with pytest.raises(TypeError):
                await system.spawn_pool(Worker(), size=2)
            with pytest.raises(ValueError):
                await system.spawn_pool(Worker, size=0)
            with pytest.raises(ValueError):
                await system.spawn_pool(Worker, size=2, routing="fastest")  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                await system.spawn_pool(Worker, size=2, routing="consistent-hash")

    trio.run(main)
