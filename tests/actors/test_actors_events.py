"""system.events(): actor lifecycle events and dead letters, with loss reporting."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import (
    Actor,
    ActorExited,
    ActorFailed,
    ActorRestarted,
    ActorStarted,
    Context,
)
from swimactors.actors import DeadLetter
from swimactors.membership import EventsDropped


class Fragile(Actor):
    def receive(self, msg: Any, ctx: Context) -> None:
        if msg == "boom":
            raise RuntimeError("boom")


async def test_events_follow_an_actor_through_its_life(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        with system.events() as events:
            ref = await system.spawn(Fragile, name="fragile")
            with pytest.raises(ActorFailed):
                await ref.ask("boom")
            await trio.testing.wait_all_tasks_blocked()
            await system.stop(ref)
            ref.tell_nowait("late")
            seen = [await events.__anext__() for _ in range(4)]
        assert seen == [
            ActorStarted(ref),
            ActorRestarted(ref, "RuntimeError: boom"),
            ActorExited(ref, None),
            DeadLetter(ref, "late", None),
        ]


async def test_a_slow_subscriber_loses_the_oldest_and_is_told(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        with system.events(buffer=2) as events:
            refs = [await system.spawn(Fragile) for _ in range(5)]
            await trio.testing.wait_all_tasks_blocked()
            got = [await events.__anext__() for _ in range(3)]
        assert got[0] == EventsDropped(3)  # trio starts the five in no fixed order
        assert {type(e) for e in got[1:]} == {ActorStarted}
        assert len({e.ref for e in got[1:]} & set(refs)) == 2  # type: ignore[union-attr]


async def test_the_subscription_ends_with_the_system(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[object] = []
    async with trio.open_nursery() as nursery, swimactors.open_system() as system:
        events = system.events()

        async def read() -> None:
            async for event in events:
                seen.append(event)

        nursery.start_soon(read)
        await system.spawn(Fragile, name="f")
        await trio.testing.wait_all_tasks_blocked()
    assert [type(e) for e in seen] == [ActorStarted, ActorExited]
