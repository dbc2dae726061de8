"""ctx.pipe_to: slow work beside an actor, its result a message (Akka's/GoAkt's pipeTo)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import Actor, ActorRef, Context, Mailbox, PipeFailed, message


@message
class Start:
    pass


@message
class Seen:
    pass


class Collector(Actor):
    """Keeps every message it gets; answers Seen with them."""

    def __init__(self) -> None:
        self.got: list[Any] = []

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if isinstance(msg, Seen):
            return list(self.got)
        self.got.append(msg)
        return None


class Worker(Collector):
    """On Start, pipes ``work()`` to ``to``; keeps everything else it gets."""

    def __init__(self, work: Any, to: ActorRef | None = None) -> None:
        super().__init__()
        self.work = work
        self.to = to

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if isinstance(msg, Start):
            ctx.pipe_to(self.work(), self.to)
            return "started"
        return await super().receive(msg, ctx)


async def test_the_value_reaches_the_actor_which_keeps_handling_messages_meanwhile() -> None:
    release = trio.Event()

    async def slow() -> str:
        await release.wait()
        return "done"

    async with swimactors.open_system() as system:
        worker = await system.spawn(lambda: Worker(slow))
        assert await worker.ask(Start()) == "started"
        await worker.tell("other")  # handled while the work waits
        assert await worker.ask(Seen()) == ["other"]
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert await worker.ask(Seen()) == ["other", "done"]


async def test_the_value_can_go_to_another_actor() -> None:
    async def quick() -> int:
        await trio.lowlevel.checkpoint()
        return 42

    async with swimactors.open_system() as system:
        collector = await system.spawn(Collector)
        worker = await system.spawn(lambda: Worker(quick, collector))
        await worker.ask(Start())
        await trio.testing.wait_all_tasks_blocked()
        assert await collector.ask(Seen()) == [42]
        assert await worker.ask(Seen()) == []


async def test_an_error_comes_back_to_the_actor_as_pipe_failed() -> None:
    async def broken() -> None:
        await trio.lowlevel.checkpoint()
        raise LookupError("no such row")

    async with swimactors.open_system() as system:
        collector = await system.spawn(Collector)
        worker = await system.spawn(lambda: Worker(broken, collector))
        await worker.ask(Start())
        await trio.testing.wait_all_tasks_blocked()
        [failed] = await worker.ask(Seen())
        assert isinstance(failed, PipeFailed)
        assert isinstance(failed.error, LookupError) and failed.to == collector
        assert await collector.ask(Seen()) == []


async def test_a_value_the_target_refuses_comes_back_as_pipe_failed() -> None:
    async def quick() -> str:
        return "one too many"

    gate = trio.Event()

    class Blocker(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:
            await gate.wait()

    async with swimactors.open_system() as system:
        # the target is busy with one message and its one slot holds another
        blocker = await system.spawn(Blocker, mailbox_size=Mailbox(1, overflow="fail"))
        await blocker.tell("hold")
        await trio.testing.wait_all_tasks_blocked()
        await blocker.tell("fill")
        worker = await system.spawn(lambda: Worker(quick, blocker))
        await worker.ask(Start())
        await trio.testing.wait_all_tasks_blocked()
        [failed] = await worker.ask(Seen())
        assert isinstance(failed, PipeFailed)
        assert isinstance(failed.error, swimactors.MailboxFull) and failed.to == blocker
        gate.set()


async def test_a_stop_cancels_the_work_and_delivers_nothing() -> None:
    cancelled = trio.Event()

    async def forever() -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with swimactors.open_system() as system:
        collector = await system.spawn(Collector)
        worker = await system.spawn(lambda: Worker(forever, collector))
        await worker.ask(Start())
        await system.stop(worker)
        with trio.fail_after(5):
            await cancelled.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert await collector.ask(Seen()) == []
        assert system.dead_letters.count == 0


async def test_pipe_to_refuses_what_cannot_be_awaited() -> None:
    class Bad(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:
            with pytest.raises(TypeError, match="awaitable"):
                ctx.pipe_to(lambda: 1)  # type: ignore[arg-type]
            return "checked"

    async with swimactors.open_system() as system:
        assert await (await system.spawn(Bad)).ask("go") == "checked"
