"""Refs, tell and ask, ordering, senders, failures surfaced to askers."""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import Actor, ActorFailed, ActorStopped, AskTimeout, Context, message
from swimactors.actors import cell as cell_module


@message
class Add:
    n: int


@message
class Get:
    pass


@message
class Boom:
    text: str = "boom"


class Log(Actor):
    """Remembers every message with its sender; answers Get with the log."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, Any]] = []

    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Get():
                return list(self.seen)
            case Boom(text):
                raise ValueError(text)
            case _:
                self.seen.append((msg, ctx.sender))
                return None


class SyncCounter(Actor):
    """A plain-def receive: asks are answered directly in the asker's task."""

    def __init__(self) -> None:
        self.total = 0

    def receive(self, msg: Any, ctx: Context) -> Any:
        return self.count(msg)

    def count(self, msg: Any) -> int:
        match msg:
            case Add(n):
                self.total += n
            case Boom(text):
                raise KeyError(text)
        return self.total


class EagerCounter(SyncCounter):
    """An async receive with no await in it: it cannot wait either, so asks to it are
    answered in the asker's task too."""

    async def receive(self, msg: Any, ctx: Context) -> Any:  # type: ignore[override]
        return self.count(msg)


async def test_tell_then_ask_sees_messages_in_order() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Log())
        for i in range(2000):  # more than one mailbox and one budget
            await ref.tell(Add(i))
        seen = await ref.ask(Get())
        assert [m for m, _ in seen] == [Add(i) for i in range(2000)]


async def test_order_is_kept_per_sender_among_concurrent_senders() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Log(), mailbox_size=8)

        async def send(base: int) -> None:
            for i in range(300):
                await ref.tell(Add(base + i))
                if i % 7 == 0:
                    await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            for base in (0, 1000, 2000):
                nursery.start_soon(send, base)
        seen = [m.n for m, _ in await ref.ask(Get())]
        assert sorted(seen) == sorted(b + i for b in (0, 1000, 2000) for i in range(300))
        for base in (0, 1000, 2000):
            mine = [n for n in seen if base <= n < base + 1000]
            assert mine == sorted(mine)


class Forwarder(Actor):
    def __init__(self, target: swimactors.ActorRef) -> None:
        self.target = target

    async def receive(self, msg: Any, ctx: Context) -> Any:
        await self.target.tell(msg)
        return await self.target.ask(Get())


async def test_sender_is_the_actor_that_sent() -> None:
    async with swimactors.open_system() as system:
        log = await system.spawn(Log())
        fwd = await system.spawn(Forwarder(log))
        await log.tell(Add(0))
        seen = await fwd.ask(Add(1))
        assert seen == [(Add(0), None), (Add(1), fwd)]


async def test_ask_failure_carries_type_message_and_traceback() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Log)
        with pytest.raises(ActorFailed) as info:
            await ref.ask(Boom("bad input"))
        assert info.value.type_name == "ValueError"
        assert info.value.message == "bad input"
        assert "raise ValueError(text)" in info.value.traceback
        assert str(info.value) == "ValueError: bad input"
        assert await ref.ask(Get()) == []  # restarted, still answering
        assert system.stats.failures == 1
        assert system.stats.restarts == 1


async def test_an_exception_in_one_actor_leaves_others_alone() -> None:
    async with swimactors.open_system() as system:
        a = await system.spawn(Log, supervision=swimactors.stop())
        b = await system.spawn(Log)
        await b.tell(Add(1))
        with pytest.raises(ActorFailed):
            await a.ask(Boom())
        assert await b.ask(Get()) == [(Add(1), None)]
        with pytest.raises(ActorStopped):
            await a.ask(Get())


async def test_refs_are_hashable_printable_and_equal_by_address() -> None:
    async with swimactors.open_system(name="node1") as system:
        ref = await system.spawn(Log(), name="logger")
        other = await system.spawn(Log())
        assert repr(ref) == f"actor://node1/logger#{ref.uid}"
        assert repr(other).startswith("actor://node1/$")
        assert {ref, other, ref} == {ref, other}
        assert ref != other
        assert await system.find("logger") == ref
        assert ref != "actor://node1/logger"


async def test_ref_stays_valid_across_restarts() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Log)
        await ref.tell(Add(1))
        with pytest.raises(ActorFailed):
            await ref.ask(Boom())
        await ref.tell(Add(2))
        assert await ref.ask(Get()) == [(Add(2), None)]  # fresh state, same ref
        assert await system.find(ref.path) is ref


@pytest.mark.parametrize("counter", [SyncCounter, EagerCounter])
async def test_sync_receive_answers_directly_and_fails_cleanly(counter: type[Actor]) -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(counter)
        assert await ref.ask(Add(2)) == 2
        await ref.tell(Add(3))
        assert await ref.ask(Get()) == 5
        with pytest.raises(ActorFailed) as info:
            await ref.ask(Boom("k"))
        assert info.value.type_name == "KeyError"
        assert await ref.ask(Get()) == 0  # restarted by its factory
        assert system.stats.restarts == 1


@pytest.mark.parametrize("counter", [SyncCounter, EagerCounter])
async def test_direct_asks_still_let_other_tasks_run(counter: type[Actor]) -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(counter)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.sleep(0)
            start = ticks
            for _ in range(5000):
                await ref.ask(Add(1))
            assert ticks > start
            nursery.cancel_scope.cancel()


async def test_an_idle_actor_whose_receive_cannot_wait_is_asked_in_the_askers_task() -> None:
    """A plain def, or an async def with no await: run by the asker's task inside the
    actor's contextvars (a tell from it names the actor as sender). An await anywhere in
    the body, even on a branch not taken, sends the ask through the actor's own task."""
    where: list[tuple[str, trio.lowlevel.Task, Any]] = []

    class Plain(Actor):
        def receive(self, msg: Any, ctx: Context) -> Any:
            where.append(("plain", trio.lowlevel.current_task(), ctx.sender))
            return swimactors.actors.ref.current_sender.get()

    class Eager(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:
            where.append(("eager", trio.lowlevel.current_task(), ctx.sender))
            return swimactors.actors.ref.current_sender.get()

    class MayWait(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:
            if msg is None:
                await trio.sleep(1)
            where.append(("may wait", trio.lowlevel.current_task(), ctx.sender))
            return swimactors.actors.ref.current_sender.get()

    async with swimactors.open_system() as system:
        refs = [await system.spawn(actor) for actor in (Plain, Eager, MayWait)]
        await trio.testing.wait_all_tasks_blocked()
        for ref in refs:
            assert await ref.ask(Get()) == ref  # the actor's own contextvars
    me = trio.lowlevel.current_task()
    assert [(kind, task is me, sender) for kind, task, sender in where] == [
        ("plain", True, None),
        ("eager", True, None),
        ("may wait", False, None),
    ]


async def _awaits(msg: Any, ctx: Context) -> Any:
    return await trio.sleep(0)


async def _loops(msg: Any, ctx: Context) -> Any:
    async for item in msg:
        return item


async def _enters(msg: Any, ctx: Context) -> Any:
    async with msg:
        return None


async def _comprehends(msg: Any, ctx: Context) -> Any:
    return [await item for item in msg]


async def _starts_a_task(msg: Any, ctx: Context) -> Any:
    async def later() -> None:
        await trio.sleep(1)  # in a coroutine of its own, not in this one's body

    ctx.system.nursery.start_soon(later)


async def _plain_async(msg: Any, ctx: Context) -> Any:
    return msg


@pytest.mark.parametrize(
    ("handler", "never_waits"),
    [
        (_awaits, False),
        (_loops, False),
        (_enters, False),
        (_comprehends, False),
        (_starts_a_task, True),
        (_plain_async, True),
        (EagerCounter().receive, True),
        (SyncCounter().receive, False),  # a plain def: the other way of not waiting
        (lambda msg, ctx: _plain_async(msg, ctx), False),  # returns a coroutine: unknown
    ],
)
def test_which_async_receives_cannot_wait(handler: Any, never_waits: bool) -> None:
    assert cell_module._never_waits(handler) is never_waits


async def test_ask_a_stopped_actor_raises_and_dead_letters() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Log())
        await system.stop(ref)
        with pytest.raises(ActorStopped):
            await ref.ask(Get())
        await ref.tell(Add(1))
        ref.tell_nowait(Add(2))
        assert system.dead_letters.count == 3
        assert [d.message for d in system.dead_letters.recent] == [Get(), Add(1), Add(2)]


async def test_ask_timeout(autojump_clock: trio.testing.MockClock) -> None:
    class Slow(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:
            await trio.sleep(10)
            return "late"

    async with swimactors.open_system() as system:
        ref = await system.spawn(Slow())
        start = trio.current_time()
        with pytest.raises(AskTimeout):
            await ref.ask(Get(), timeout=2.0)
        assert trio.current_time() - start == pytest.approx(2.0)


async def test_ask_without_timeout_waits_for_the_reply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Slow(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:
            await trio.sleep(100)
            return "done"

    async with swimactors.open_system() as system:
        ref = await system.spawn(Slow())
        assert await ref.ask(Get(), timeout=None) == "done"


async def test_spawn_rejects_things_that_are_not_actors() -> None:
    async with swimactors.open_system() as system:
        with pytest.raises(TypeError, match="Actor or a factory"):
            await system.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not an Actor"):
            await system.spawn(lambda: "nope")  # type: ignore[arg-type, return-value]
        with pytest.raises(ValueError, match="mailbox_size"):
            await system.spawn(Log(), mailbox_size=0)


async def test_a_system_needs_room_for_at_least_one_message() -> None:
    with pytest.raises(ValueError, match="mailbox_size"):
        async with swimactors.open_system(mailbox_size=0):
            pass


def test_actor_context_outside_a_system_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="has not been spawned"):
        _ = Log().context


_mood: contextvars.ContextVar[str] = contextvars.ContextVar("mood", default="asker's")


class Moody(Actor):
    """Sets a context variable in its own task; a direct ask must still see it."""

    async def on_start(self) -> None:
        _mood.set("actor's")

    def receive(self, msg: Any, ctx: Context) -> Any:
        return _mood.get(), swimactors.actors.ref.current_sender.get() == ctx.self_ref


async def test_direct_asks_run_in_the_actors_own_context() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Moody())
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.ask(Get()) == ("actor's", True)
        assert _mood.get() == "asker's"


class Narcissist(Actor):
    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Get():
                return await ctx.self_ref.ask(Add(1))
            case Boom():
                for i in range(3):  # the mailbox holds 2: the third would wait on itself
                    await ctx.self_ref.tell(Add(i))
        return None


async def test_an_actor_cannot_deadlock_on_itself() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Narcissist, mailbox_size=2)
        with pytest.raises(ActorFailed, match="asked itself"):
            await ref.ask(Get())
        with pytest.raises(ActorFailed) as info:
            await ref.ask(Boom())
        assert info.value.type_name == "MailboxFull"
        assert await ref.ask(Add(0)) is None  # restarted, and still serving
