"""Streams on one node: ``ctx.add_stream`` into a mailbox, and ``ref.stream`` replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import (
    Actor,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    Context,
    Mailbox,
    StreamFinished,
)


class Probe:
    """What a test generator did: items produced, whether it was closed."""

    def __init__(self) -> None:
        self.produced = 0
        self.closed = False


async def numbers(probe: Probe, n: int | None, *, fail_at: int | None = None) -> AsyncIterator[int]:
    """0, 1, ... (n items, or forever), raising ValueError at ``fail_at``."""
    try:
        i = 0
        while n is None or i < n:
            if i == fail_at:
                raise ValueError(f"bad item {i}")
            probe.produced += 1
            yield i
            i += 1
            await trio.sleep(0.01)  # endless streams must let the mock clock move
    finally:
        probe.closed = True


class Collector(Actor):
    """Adds a stream on start; keeps what it gets; slow when told to be."""

    def __init__(self, source: Any, delay: float = 0.0) -> None:
        self.source = source
        self.delay = delay
        self.got: list[Any] = []
        self.finished: list[StreamFinished] = []

    async def on_start(self) -> None:
        self.context.add_stream(self.source)

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if msg == "got":
            return list(self.got)
        if isinstance(msg, StreamFinished):
            self.finished.append(msg)
        else:
            self.got.append(msg)
        if self.delay:
            await trio.sleep(self.delay)
        return None


async def test_add_stream_delivers_items_in_order_then_finished(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()
    actor = Collector(numbers(probe, 50))
    async with swimactors.open_system() as system:
        await system.spawn(actor)
        await trio.sleep(1)
        assert actor.got == list(range(50))
        assert len(actor.finished) == 1 and actor.finished[0].error is None
        assert probe.closed


async def test_add_stream_reads_no_faster_than_the_mailbox_takes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A slow actor with a mailbox of 4 and a drop-newest policy: the stream waits for
    room instead of losing items, and has read at most handled + mailbox + 1 items."""
    probe = Probe()
    actor = Collector(numbers(probe, None), delay=1.0)
    async with swimactors.open_system() as system:
        await system.spawn(actor, mailbox_size=Mailbox(4, overflow="drop-newest"))
        await trio.sleep(10.5)
        handled = len(actor.got)
        assert 10 <= handled <= 11
        assert probe.produced <= handled + 4 + 1
        assert system.stats.mailbox_drops == 0
    assert actor.got == list(range(len(actor.got)))
    assert probe.closed  # cancelled with the actor: the generator's finally ran


async def test_a_raising_stream_ends_with_finished_carrying_the_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actor = Collector(numbers(Probe(), 10, fail_at=3))
    async with swimactors.open_system() as system:
        await system.spawn(actor)
        await trio.sleep(1)
    assert actor.got == [0, 1, 2]
    (finished,) = actor.finished
    assert isinstance(finished.error, ValueError)


class Restarting(Collector):
    """The first instance fails on item 2: supervision restarts it with a fresh one."""

    instances: list[Restarting] = []

    def __init__(self, source: Any) -> None:
        super().__init__(source)
        Restarting.instances.append(self)

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if msg == 2 and self is Restarting.instances[0]:
            raise RuntimeError("two")
        return await super().receive(msg, ctx)


async def test_a_stream_is_cancelled_when_its_actor_restarts_or_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probes = [Probe(), Probe()]
    sources = iter([numbers(probes[0], None), numbers(probes[1], None)])
    Restarting.instances = []
    async with swimactors.open_system() as system:
        ref = await system.spawn(
            lambda: Restarting(next(sources)), supervision=swimactors.restart(max_restarts=1)
        )
        await trio.sleep(1)
        assert probes[0].closed  # the restart cancelled the first stream
        first, second = Restarting.instances
        assert first.got == [0, 1] and first.finished == []
        assert second.got[:3] == [0, 1, 2]  # the fresh instance started its own stream
        await system.stop(ref)
        produced = probes[1].produced
        await trio.sleep(1)
        assert probes[1].closed and probes[1].produced == produced


async def test_a_feed_can_be_cancelled_by_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = Probe()

    class Canceller(Actor):
        def __init__(self) -> None:
            self.got: list[int] = []

        async def on_start(self) -> None:
            self.feed = self.context.add_stream(numbers(probe, None))

        def receive(self, msg: Any, ctx: Context) -> None:
            self.got.append(msg)
            if msg == 5:
                self.feed.cancel()

    actor = Canceller()
    async with swimactors.open_system() as system:
        await system.spawn(actor, mailbox_size=1)
        await trio.sleep(1)
        assert actor.got[:6] == [0, 1, 2, 3, 4, 5] and len(actor.got) <= 7
        assert probe.closed


def test_add_stream_refuses_what_is_not_an_async_iterable() -> None:
    class Bad(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:
            ctx.add_stream([1, 2])  # type: ignore[arg-type]

    async def main() -> None:
        async with swimactors.open_system() as system:
            ref = await system.spawn(Bad())
            with pytest.raises(ActorFailed, match="TypeError"):
                await ref.ask("x")

    trio.run(main)


# -- streamed replies --------------------------------------------------------------------


class Source(Actor):
    """Answers ("count", n) with a stream of n numbers, ("fail", k) with one that raises at
    k, ("forever",) with an endless one; remembers the probes."""

    def __init__(self) -> None:
        self.probes: list[Probe] = []

    def receive(self, msg: Any, ctx: Context) -> Any:
        probe = Probe()
        self.probes.append(probe)
        match msg:
            case ("count", n):
                return numbers(probe, n)
            case ("fail", k):
                return numbers(probe, None, fail_at=k)
            case ("forever",):
                return numbers(probe, None)
        return "not a stream"


async def test_a_streamed_reply_arrives_whole_and_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = Source()
    async with swimactors.open_system() as system:
        ref = await system.spawn(source)
        assert [i async for i in ref.stream(("count", 1000), window=16)] == list(range(1000))
        assert [i async for i in ref.stream(("count", 0))] == []
        assert source.probes[0].closed


async def test_the_producer_runs_at_most_a_window_ahead_of_a_slow_reader(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = Source()
    async with swimactors.open_system() as system:
        ref = await system.spawn(source)
        read = 0
        async for _ in ref.stream(("forever",), window=8):
            read += 1
            await trio.sleep(1)
            assert source.probes[0].produced <= read + 8
            if read == 20:
                break
        await trio.sleep(1)
        probe = source.probes[0]
        assert probe.closed  # leaving the loop cancelled the producer
        assert probe.produced <= 20 + 8


async def test_producer_errors_reach_the_reader_as_ask_errors(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Source())
        got = []
        with pytest.raises(ActorFailed, match="ValueError: bad item 3"):
            async for item in ref.stream(("fail", 3)):
                got.append(item)
        assert got == [0, 1, 2]
        with pytest.raises(ActorFailed, match=r"TypeError: .*str, not an async iterable"):
            await anext(ref.stream("nothing"))


async def test_stopping_the_producing_actor_ends_its_streams_with_actor_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = Source()
    async with swimactors.open_system() as system:
        ref = await system.spawn(source)
        stream = ref.stream(("forever",), window=4)
        assert await anext(stream) == 0
        await system.stop(ref)
        with pytest.raises(ActorStopped):
            async for _ in stream:
                pass
        assert source.probes[0].closed
        with pytest.raises(ActorStopped):
            await anext(ref.stream(("count", 1)))


async def test_an_actor_that_stops_as_it_answers_ends_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The actor answers with an endless stream and stops in the same message: the
    reader resumes after the actor is gone, and the stream must not outlive it."""
    probe = Probe()

    class Quitter(Actor):
        async def receive(self, msg: Any, ctx: Context) -> Any:  # through the mailbox
            ctx.stop()
            return numbers(probe, None)

    async with swimactors.open_system() as system:
        ref = await system.spawn(Quitter())
        with pytest.raises(ActorStopped):
            async for _ in ref.stream("x"):
                pass
        await trio.sleep(1)
        assert probe.produced == 0


async def test_a_reader_cancelled_while_it_waits_cancels_the_producer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    closed = []

    class Slow(Actor):
        def receive(self, msg: Any, ctx: Context) -> Any:
            async def slow() -> AsyncIterator[int]:
                try:
                    yield 1
                    await trio.sleep(10)
                    yield 2
                finally:
                    closed.append(True)

            return slow()

    async with swimactors.open_system() as system:
        slow = await system.spawn(Slow())
        stream = slow.stream("x")
        items = []
        with trio.move_on_after(5):
            async for item in stream:
                items.append(item)
        await trio.testing.wait_all_tasks_blocked()
        assert items == [1] and closed == [True]
        with pytest.raises(ActorStopped, match="cancelled"):
            await anext(stream)

        items = []
        with pytest.raises(AskTimeout):
            async for item in slow.stream("x", timeout=2):
                items.append(item)
        await trio.testing.wait_all_tasks_blocked()
        assert items == [1] and closed == [True, True]


async def test_aclose_and_async_with_cancel_the_producer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = Source()
    async with swimactors.open_system() as system:
        ref = await system.spawn(source)
        stream = ref.stream(("forever",))
        assert await anext(stream) == 0
        await stream.aclose()
        async with ref.stream(("forever",)) as second:
            assert await anext(second) == 0
        await trio.sleep(1)
        assert source.probes[0].closed and source.probes[1].closed
        with pytest.raises(StopAsyncIteration):
            await anext(stream)


def test_stream_window_is_checked() -> None:
    async def main() -> None:
        async with swimactors.open_system() as system:
            ref = await system.spawn(Source())
            for window in (0, 4097, 1.5):
                with pytest.raises(ValueError, match="window"):
                    ref.stream(("count", 1), window=window)  # type: ignore[arg-type]

    trio.run(main)
