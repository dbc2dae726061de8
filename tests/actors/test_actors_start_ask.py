"""Asks started without a task (``ActorRef.start_ask``, the asyncio front's path): the same
outcomes as ``ask``, delivered to a callback on the actors' loop."""

from __future__ import annotations

from typing import Any

import outcome
import trio
import trio.testing

import swimactors
from swimactors import Actor, ActorStopped, AskTimeout, Context


class Echo(Actor):
    async def receive(self, msg: Any, ctx: Context) -> Any:
        if msg == "wait":
            await trio.sleep(1.0)
        return msg


class PlainEcho(Actor):
    def receive(self, msg: Any, ctx: Context) -> Any:  # type: ignore[override]
        return msg


class Outcomes(list[outcome.Outcome[Any]]):
    """A callback that keeps what it is called with."""

    def __call__(self, result: outcome.Outcome[Any]) -> None:
        self.append(result)


async def test_a_started_ask_calls_back_with_the_answer_or_the_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        echo = await system.spawn(Echo())
        plain = await system.spawn(PlainEcho())
        got = Outcomes()
        await trio.testing.wait_all_tasks_blocked()
        assert plain.start_ask("now", None, got) is not None
        assert got == [outcome.Value("now")]  # an idle plain-def actor answers at once
        assert echo.start_ask("later", None, got) is not None
        assert len(got) == 1
        await trio.testing.wait_all_tasks_blocked()
        assert got[1] == outcome.Value("later")
        echo.start_ask("wait", 0.5, got)
        await trio.sleep(0.6)
        assert isinstance(got[2], outcome.Error) and isinstance(got[2].error, AskTimeout)
        await system.stop(echo)
        echo.start_ask("stopped", None, got)
        assert isinstance(got[3], outcome.Error) and isinstance(got[3].error, ActorStopped)


async def test_a_cancelled_started_ask_calls_back_once_and_its_answer_is_late(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        echo = await system.spawn(Echo())
        got = Outcomes()
        reply = echo.start_ask("wait", None, got)
        assert reply is not None
        reply.cancel()
        assert len(got) == 1 and isinstance(got[0], outcome.Error)
        assert await echo.ask("after") == "after"
        assert len(got) == 1 and system.stats.late_replies == 1


async def test_an_ask_that_must_wait_for_room_is_not_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        echo = await system.spawn(Echo(), mailbox_size=1)
        got = Outcomes()
        echo.start_ask("wait", None, got)  # in hand
        await trio.testing.wait_all_tasks_blocked()
        echo.start_ask("queued", None, got)  # fills the mailbox
        assert echo.start_ask("no room", None, got) is None  # ask it from a task instead
        await trio.sleep(1.1)
        assert got == [outcome.Value("wait"), outcome.Value("queued")]


class Named(Actor):
    """Answers with its own name, from an ``async def receive`` (never answered inline)."""

    async def receive(self, msg: Any, ctx: Context) -> str:
        return ctx.self_ref.path.rsplit("/", 1)[1]


async def test_a_started_ask_of_a_round_robin_pool_takes_each_routee_in_turn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        pool = await system.spawn_pool(Named, size=3, name="pool")
        got = Outcomes()
        for n in range(6):
            pool.start_ask(n, None, got)
            await trio.testing.wait_all_tasks_blocked()
        assert [result.unwrap() for result in got] == ["0", "1", "2", "0", "1", "2"]
