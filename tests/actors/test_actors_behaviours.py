"""Behaviours: ctx.become / ctx.unbecome switch the handler from the next message on."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import Actor, ActorFailed, Context


class Door(Actor):
    """Closed: answers "closed" and opens on "open"; open: answers "open", "lock" stacks
    a locked behaviour, "close" unbecomes."""

    def receive(self, msg: Any, ctx: Context) -> str:
        if msg == "open":
            ctx.become(self.opened)
        if msg == "boom":
            raise RuntimeError("boom")
        return "closed"

    def opened(self, msg: Any, ctx: Context) -> str:
        if msg == "close":
            ctx.unbecome()
            return "closing"
        if msg == "lock":
            ctx.become(self.locked, stacked=True)
        if msg == "boom":
            raise RuntimeError("boom")
        return "open"

    async def locked(self, msg: Any, ctx: Context) -> str:
        await trio.lowlevel.checkpoint()
        if msg == "unlock":
            ctx.unbecome()
        return "locked"


async def test_become_and_unbecome_switch_and_stack_behaviours(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        door = await system.spawn(Door)
        answers = [await door.ask(m) for m in ("x", "open", "x", "lock", "x", "unlock", "x")]
        assert answers == ["closed", "closed", "open", "open", "locked", "locked", "open"]
        assert await door.ask("close") == "closing"
        assert await door.ask("x") == "closed"


async def test_become_takes_effect_inside_a_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        door = await system.spawn(Door)
        for msg in ("open", "x", "lock", "x"):
            door.tell_nowait(msg)  # queued together, handled in one batch
        assert await door.ask("x") == "locked"


async def test_a_restart_returns_to_receive(autojump_clock: trio.testing.MockClock) -> None:
    async with swimactors.open_system() as system:
        door = await system.spawn(Door)
        await door.ask("open")
        with pytest.raises(ActorFailed):
            await door.ask("boom")
        await trio.testing.wait_all_tasks_blocked()
        assert await door.ask("x") == "closed"
