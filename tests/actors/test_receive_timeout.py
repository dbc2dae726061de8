"""ctx.set_receive_timeout: ReceiveTimeout after a quiet spell (Akka's receive timeout),
the way to passivate an idle actor (GoAkt's passivation).  Virtual time (MockClock)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import Actor, Context, ReceiveTimeout, message


@message
class Quiet:
    seconds: float | None


class Sleepy(Actor):
    """Notes when each ReceiveTimeout came; passivates on the ``stop_after``-th one."""

    def __init__(self, timeout: float, stop_after: int = 0) -> None:
        self.timeout = timeout
        self.stop_after = stop_after
        self.timeouts: list[float] = []

    async def on_start(self) -> None:
        self.context.set_receive_timeout(self.timeout)

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if isinstance(msg, ReceiveTimeout):
            self.timeouts.append(trio.current_time())
            if len(self.timeouts) == self.stop_after:
                ctx.stop()
        elif isinstance(msg, Quiet):
            ctx.set_receive_timeout(msg.seconds)
        elif msg == "boom":
            raise RuntimeError("boom")
        return list(self.timeouts)


class SyncSleepy(Sleepy):
    """The same with a plain ``def receive``, which asks may run in the asker's task."""

    def receive(self, msg: Any, ctx: Context) -> Any:  # type: ignore[override]
        if isinstance(msg, ReceiveTimeout):
            self.timeouts.append(trio.current_time())
        return list(self.timeouts)


async def at(time: float) -> None:
    await trio.sleep_until(time)


async def test_it_comes_after_each_quiet_spell_and_a_message_puts_it_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        start = trio.current_time()
        ref = await system.spawn(lambda: Sleepy(5.0))
        await at(start + 3.0)
        await ref.tell("hello")  # idle since 3: the first comes at 8, not 5
        await at(start + 19.0)
        times = [round(t - start, 3) for t in await ref.ask("times")]
        assert times == [8.0, 13.0, 18.0]


async def test_stopping_on_it_passivates_an_idle_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        start = trio.current_time()
        ref = await system.spawn(lambda: Sleepy(30.0, stop_after=1), name="session")
        for second in range(1, 100, 20):  # busy for 100 s: not passivated
            await at(start + second)
            await ref.tell("work")
        assert await system.find("session") is not None
        await at(start + 81.0 + 29.0)
        assert await system.find("session") is not None
        await at(start + 81.0 + 31.0)
        assert await system.find("session") is None


async def test_asks_answered_in_the_askers_task_count_as_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        start = trio.current_time()
        ref = await system.spawn(lambda: SyncSleepy(5.0))
        for second in range(4, 40, 4):
            await at(start + second)
            assert await ref.ask("busy") == []
        await at(start + 41.5)
        assert [round(t - start, 3) for t in await ref.ask("times")] == [41.0]


async def test_none_turns_it_off_and_a_restart_clears_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        start = trio.current_time()
        ref = await system.spawn(lambda: Sleepy(5.0))
        await ref.tell(Quiet(None))
        await at(start + 60.0)
        assert await ref.ask("times") == []
        await ref.tell(Quiet(2.0))
        await at(start + 62.5)
        assert len(await ref.ask("times")) == 1
        await ref.tell("boom")  # restarted: a fresh instance whose on_start sets 5 s again
        await at(start + 63.0)
        await ref.tell(Quiet(None))
        await at(start + 200.0)
        assert await ref.ask("times") == []


async def test_a_timeout_must_be_positive_and_finite() -> None:
    class Checks(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:
            for bad in (0.0, -1.0, float("inf"), float("nan")):
                with pytest.raises(ValueError, match="timeout"):
                    ctx.set_receive_timeout(bad)
            return "checked"

    async with swimactors.open_system() as system:
        assert await (await system.spawn(Checks)).ask("go") == "checked"
