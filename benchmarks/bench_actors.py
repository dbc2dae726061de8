"""Actor runtime speed against raw floors measured in the same run, interleaved.

Floors do the same work per message as the actor: each calls the very ``receive`` the
actor runs (an ``async def``: ``Sink.receive`` for tells, ``Server.receive``, one that can
wait, for asks) once per message, so what separates them from swimactors is the runtime
alone.  For tell, a task draining a bounded
``collections.deque`` that the sender fills without a scheduler trip until it is full
(what a mailbox can at best be on trio), the same with nothing done per message (for
scale), and a bounded ``trio.open_memory_channel`` fed by awaited sends; for ask, a round
trip with trio's lowest-level park and wake (what an ask can at best be on trio), one
through an ``asyncio`` Future (the asker parks on a future that the server task
resolves), and a request/reply over two trio channels; for spawn + stop, a bare
``nursery.start_soon`` task waiting on a channel.  Pykka and Thespian are measured when
installed (the ``bench`` extra).  Every figure is the median of several pairs;
``BENCH_CLOCK=cpu`` times them by CPU instead of wall time.
"""

from __future__ import annotations

import asyncio
import collections
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import outcome
import trio

import swimactors
from swimactors import Actor, Context

Row = dict[str, Any]

clock = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter
"""Wall time, or with ``BENCH_CLOCK=cpu`` this process's CPU time: steadier on a shared
machine, where other processes' load stretches wall time but not the CPU a run uses."""


@swimactors.message("bench.Ping")
class Ping:
    n: int = 0


class Sink(Actor):
    """Counts messages; sets ``done`` when ``expected`` have arrived."""

    def __init__(self, expected: int = 0) -> None:
        self.count = 0
        self.expected = expected
        self.done = trio.Event()
        self.finished_at = 0.0

    async def receive(self, msg: Any, ctx: Context) -> Any:
        self.count += 1
        if self.count == self.expected:
            self.finished_at = clock()
            self.done.set()
        return msg


class Server(Sink):
    """The asked actor of the ask rows: a receive that can wait (an ``await`` on a branch
    these runs never take), so an ask goes through the actor's own task as the floors'
    round trips do. ``Sink``, whose receive has no ``await``, is answered in the asker's
    task (the row ``ask, async receive without await``)."""

    async def receive(self, msg: Any, ctx: Context) -> Any:
        self.count += 1
        if msg is None:
            await trio.lowlevel.checkpoint()
        return msg


class SyncEcho(Actor):
    """A plain-``def`` receive: an ask to it runs in the asker's task."""

    def receive(self, msg: Any, ctx: Context) -> Any:
        return msg


@swimactors.message("bench.Add")
class Add:
    n: int = 1


class AddingActor(Actor):
    """The plain-message twin of :class:`ProxiedCounter` (the ask floor of a proxy)."""

    def __init__(self) -> None:
        self.value = 0

    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Add(n=n):
                self.value += n
                return self.value
            case None:  # never sent: an await makes this receive one that can wait, as
                await trio.lowlevel.checkpoint()  # the proxy's is (an ask goes to its task)
        return None


@swimactors.as_actor("bench.ProxiedCounter")
class ProxiedCounter:
    def __init__(self) -> None:
        self.value = 0

    async def add(self, n: int = 1) -> int:
        self.value += n
        return self.value


class Idle(Actor):
    async def receive(self, msg: Any, ctx: Context) -> None:
        return None


def _timed(main: Callable[[], Awaitable[float]]) -> float:
    return trio.run(main)


# -- tell throughput ---------------------------------------------------------------------


def floor_tell(n: int) -> float:
    async def main() -> float:
        send, receive = trio.open_memory_channel[Any](1024)

        async def reader() -> None:
            async for _ in receive:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            start = clock()
            async with send:
                for i in range(n):
                    await send.send(i)
        return n / (clock() - start)

    return _timed(main)


def floor_deque_tell(
    n: int, room: int = 1024, *, handled: bool = True, envelope: bool = False
) -> float:
    """A sender appending to a bounded deque, a reader draining it whole each time it
    runs and awaiting ``Sink.receive`` for each message (``handled``; else nothing per
    message); each parks on trio's lowest-level primitive only when it must.  With
    ``envelope`` each message travels as an actor's does: a ``(msg, sender, reply)``
    tuple, the sender read from a ContextVar, unpacked by the reader."""

    async def main() -> float:
        queue: collections.deque[Any] = collections.deque()
        parked: list[trio.lowlevel.Task | None] = [None, None]  # reader, sender
        receive = Sink(n).receive

        def wake(index: int) -> None:
            task = parked[index]
            if task is not None:
                parked[index] = None
                trio.lowlevel.reschedule(task)

        async def park(index: int) -> None:
            parked[index] = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

        async def reader() -> None:
            seen = 0
            while seen < n:
                if envelope:
                    while queue:
                        msg, sender, _ = queue.popleft()
                        await receive(msg, sender)
                        seen += 1
                elif handled:
                    while queue:
                        await receive(queue.popleft(), None)  # type: ignore[arg-type]
                        seen += 1
                else:
                    while queue:
                        queue.popleft()
                        seen += 1
                wake(1)
                if seen < n:
                    await park(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            msg = Ping()
            start = clock()
            if envelope:
                for _ in range(n):
                    if len(queue) >= room:
                        wake(0)
                        await park(1)
                    queue.append((msg, sender_now(), None))
                    wake(0)
            else:
                for _ in range(n):
                    if len(queue) >= room:
                        wake(0)
                        await park(1)
                    queue.append(msg)
                    wake(0)
            wake(0)
        return n / (clock() - start)

    return _timed(main)


_sender: ContextVar[Any] = ContextVar("bench_sender", default=None)
sender_now = _sender.get
"""The envelope floor's sender read, bound once as the runtime's is."""


def actors_tell(n: int) -> float:
    async def main() -> float:
        async with swimactors.open_system() as system:
            sink = Sink(n)
            ref = await system.spawn(sink)
            msg = Ping()
            start = clock()
            for _ in range(n):
                await ref.tell(msg)
            await sink.done.wait()
            return n / (clock() - start)

    return _timed(main)


def pool_tell(n: int, size: int = 4) -> float:
    """Tells through a round-robin pool of ``size`` sinks (each gets n / size)."""

    async def main() -> float:
        async with swimactors.open_system() as system:
            sinks = [Sink(n // size) for _ in range(size)]
            made = iter(sinks)
            pool = await system.spawn_pool(lambda: next(made), size=size)
            msg = Ping()
            start = clock()
            for _ in range(n // size * size):
                await pool.tell(msg)
            for sink in sinks:
                await sink.done.wait()
            return n // size * size / (clock() - start)

    return _timed(main)


def group_router_tell(n: int, size: int = 4) -> float:
    """Tells through a round-robin group router over ``size`` local members."""

    async def main() -> float:
        async with swimactors.open_system() as system:
            sinks = [Sink(n // size) for _ in range(size)]
            for sink in sinks:
                await system.join_group("sinks", await system.spawn(sink))
            router = await system.spawn_group_router("sinks")
            msg = Ping()
            start = clock()
            for _ in range(n // size * size):
                await router.tell(msg)
            for sink in sinks:
                await sink.done.wait()
            return n // size * size / (clock() - start)

    return _timed(main)


# -- ask round trip ----------------------------------------------------------------------


def floor_ask(n: int) -> float:
    async def main() -> float:
        req_send, req_recv = trio.open_memory_channel[Any](1)
        rep_send, rep_recv = trio.open_memory_channel[Any](1)

        async def server() -> None:
            async for msg in req_recv:
                await rep_send.send(msg)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            start = clock()
            for i in range(n):
                await req_send.send(i)
                await rep_recv.receive()
            elapsed = clock() - start
            await req_send.aclose()
        return elapsed / n * 1e6

    return _timed(main)


def floor_lowlevel_ask(n: int, actor: Callable[[], Sink] = Server) -> float:
    """A round trip with trio's lowest-level park and wake: the asker queues its request
    and parks, the server task awaits the ``receive`` of ``actor`` and reschedules the
    asker with the answer (two task switches, nothing else)."""

    async def main() -> float:
        inbox: collections.deque[tuple[Ping, trio.lowlevel.Task] | None] = collections.deque()
        idle: list[trio.lowlevel.Task | None] = [None]
        receive = actor().receive

        def unpark(_: Any) -> trio.lowlevel.Abort:
            return trio.lowlevel.Abort.FAILED

        async def server() -> None:
            while True:
                while inbox:
                    item = inbox.popleft()
                    if item is None:
                        return
                    answer = await receive(item[0], None)  # type: ignore[arg-type]
                    trio.lowlevel.reschedule(item[1], outcome.Value(answer))
                idle[0] = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(unpark)

        def post(item: tuple[Ping, trio.lowlevel.Task] | None) -> None:
            inbox.append(item)
            waiting = idle[0]
            if waiting is not None:
                idle[0] = None
                trio.lowlevel.reschedule(waiting)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            await trio.lowlevel.checkpoint()
            msg = Ping()
            start = clock()
            for _ in range(n):
                post((msg, trio.lowlevel.current_task()))
                await trio.lowlevel.wait_task_rescheduled(unpark)
            elapsed = clock() - start
            post(None)
        return elapsed / n * 1e6

    return _timed(main)


def floor_future_ask(n: int, actor: Callable[[], Sink] = Server) -> float:
    """An asyncio round trip: the asker queues a Future, the server task awaits the
    ``receive`` of ``actor`` and resolves it."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        inbox: collections.deque[tuple[Ping, asyncio.Future[Any]] | None] = collections.deque()
        idle: list[asyncio.Future[None] | None] = [None]
        receive = actor().receive

        async def server() -> None:
            while True:
                while inbox:
                    item = inbox.popleft()
                    if item is None:
                        return
                    item[1].set_result(await receive(item[0], None))  # type: ignore[arg-type]
                waiter = loop.create_future()
                idle[0] = waiter
                await waiter

        def post(item: tuple[Ping, asyncio.Future[Any]] | None) -> None:
            inbox.append(item)
            waiting = idle[0]
            if waiting is not None and not waiting.done():
                waiting.set_result(None)

        task = loop.create_task(server())
        await asyncio.sleep(0)
        msg = Ping()
        start = clock()
        for _ in range(n):
            reply: asyncio.Future[Any] = loop.create_future()
            post((msg, reply))
            await reply
        elapsed = clock() - start
        post(None)
        await task
        return elapsed / n * 1e6

    return asyncio.run(main())


def actors_ask(n: int, actor: Callable[[], Actor] = Server) -> float:
    async def main() -> float:
        async with swimactors.open_system() as system:
            ref = await system.spawn(actor)
            msg = Ping()
            start = clock()
            for _ in range(n):
                await ref.ask(msg)
            return (clock() - start) / n * 1e6

    return _timed(main)


def plain_add_ask(n: int) -> float:
    """``await ref.ask(Add(1))`` to :class:`AddingActor`, us per round trip."""

    async def main() -> float:
        async with swimactors.open_system() as system:
            ref = await system.spawn(AddingActor)
            start = clock()
            for _ in range(n):
                await ref.ask(Add(1))
            return (clock() - start) / n * 1e6

    return _timed(main)


def proxy_call(n: int) -> float:
    """``await counter.add(1)`` through a proxy of :class:`ProxiedCounter`."""

    async def main() -> float:
        async with swimactors.open_system() as system:
            counter = system.proxy(await system.spawn(ProxiedCounter), ProxiedCounter)
            start = clock()
            for _ in range(n):
                await counter.add(1)
            return (clock() - start) / n * 1e6

    return _timed(main)


# -- spawn and stop ----------------------------------------------------------------------


def floor_spawn(n: int) -> float:
    async def main() -> float:
        async def task(receive: trio.MemoryReceiveChannel[Any]) -> None:
            async for _ in receive:
                pass

        start = clock()
        async with trio.open_nursery() as nursery:
            senders = []
            for _ in range(n):
                send, receive = trio.open_memory_channel[Any](1024)
                nursery.start_soon(task, receive)
                senders.append(send)
            await trio.lowlevel.checkpoint()
            for send in senders:
                send.close()
        return (clock() - start) / n * 1e6

    return _timed(main)


def actors_spawn(n: int) -> float:
    async def main() -> float:
        start = clock()
        async with swimactors.open_system() as system:
            for _ in range(n):
                await system.spawn(Idle())
            await trio.lowlevel.checkpoint()
        return (clock() - start) / n * 1e6

    return _timed(main)


# -- many actors -------------------------------------------------------------------------


def actors_fanout(actors: int, each: int) -> tuple[float, float]:
    """Throughput of ``actors`` senders each telling its own actor ``each`` messages, and
    fairness: when the first actor finished, as a fraction of when the last one did (1.0
    means all finished together; an actor that starved the others would give 1/actors)."""

    async def main() -> tuple[float, float]:
        async with swimactors.open_system() as system:
            sinks = [Sink(each) for _ in range(actors)]
            refs = [await system.spawn(s) for s in sinks]

            async def send(ref: swimactors.ActorRef) -> None:
                msg = Ping()
                for _ in range(each):
                    await ref.tell(msg)

            start = clock()
            async with trio.open_nursery() as nursery:
                for ref in refs:
                    nursery.start_soon(send, ref)
            for sink in sinks:
                await sink.done.wait()
            elapsed = clock() - start
            finished = [sink.finished_at - start for sink in sinks]
            return actors * each / elapsed, min(finished) / max(finished)

    return trio.run(main)


# -- Pykka and Thespian, when installed --------------------------------------------------


def pykka_rows(tell_n: int, ask_n: int, spawn_n: int) -> list[Row]:
    try:
        import pykka  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return []

    class PActor(pykka.ThreadingActor):  # type: ignore[misc,unused-ignore]
        def on_receive(self, message: Any) -> Any:
            return message

    def tell() -> float:
        ref = PActor.start()
        start = clock()
        for i in range(tell_n):
            ref.tell(i)
        ref.ask("sync")
        rate = tell_n / (clock() - start)
        ref.stop()
        return rate

    def ask() -> float:
        ref = PActor.start()
        start = clock()
        for i in range(ask_n):
            ref.ask(i)
        per = (clock() - start) / ask_n * 1e6
        ref.stop()
        return per

    def spawn() -> float:
        start = clock()
        for _ in range(spawn_n):
            PActor.start().stop()
        return (clock() - start) / spawn_n * 1e6

    return [
        {"benchmark": "tell", "metric": "pykka", "value": tell(), "unit": "msg/s"},
        {"benchmark": "ask", "metric": "pykka", "value": ask(), "unit": "us/op"},
        {"benchmark": "spawn+stop", "metric": "pykka", "value": spawn(), "unit": "us/actor"},
    ]


def thespian_rows(tell_n: int, ask_n: int, spawn_n: int) -> list[Row]:
    try:
        from thespian.actors import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            Actor as TActor,
        )
        from thespian.actors import (
            ActorExitRequest,
            ActorSystem,
        )
    except ImportError:
        return []

    class Echo(TActor):  # type: ignore[misc]
        def receiveMessage(self, message: Any, sender: Any) -> None:
            if message == "sync":
                self.send(sender, message)

    system = ActorSystem("simpleSystemBase")
    try:
        addr = system.createActor(Echo)
        start = clock()
        for i in range(tell_n):
            system.tell(addr, i)
        system.ask(addr, "sync", 10)
        tell_rate = tell_n / (clock() - start)
        start = clock()
        for _ in range(ask_n):
            system.ask(addr, "sync", 10)
        ask_us = (clock() - start) / ask_n * 1e6
        start = clock()
        for _ in range(spawn_n):
            system.tell(system.createActor(Echo), ActorExitRequest())
        spawn_us = (clock() - start) / spawn_n * 1e6
    finally:
        system.shutdown()
    return [
        {"benchmark": "tell", "metric": "thespian", "value": tell_rate, "unit": "msg/s"},
        {"benchmark": "ask", "metric": "thespian", "value": ask_us, "unit": "us/op"},
        {"benchmark": "spawn+stop", "metric": "thespian", "value": spawn_us, "unit": "us/actor"},
    ]


def run(quick: bool) -> list[Row]:
    tell_n, ask_n, spawn_n = (20_000, 5_000, 2_000) if quick else (200_000, 20_000, 10_000)
    fan = (20, 200) if quick else (100, 1_000)
    repeats = 3 if quick else 5
    rows: list[Row] = []

    def compare(
        bench: str,
        unit: str,
        ours: Callable[[], float],
        floor: Callable[[], float],
        note: str,
        metric: str = "swimactors",
    ) -> None:
        """Alternate the two measurements so both see the same machine load."""
        pairs = [(floor(), ours()) for _ in range(repeats)]
        floor_value = statistics.median(f for f, _ in pairs)
        value = statistics.median(o for _, o in pairs)
        lower_is_better = unit.startswith("us")
        ratio = floor_value / value if lower_is_better else value / floor_value
        rows.append({"benchmark": bench, "metric": "floor", "value": floor_value, "unit": unit})
        rows.append(
            {
                "benchmark": bench,
                "metric": metric,
                "value": value,
                "unit": unit,
                "floor": floor_value,
                "ratio": ratio,
                "note": note,
            }
        )

    compare(
        "tell vs deque-drain floor",
        "msg/s",
        lambda: actors_tell(tell_n),
        lambda: floor_deque_tell(tell_n),
        f"{tell_n:,} msgs, one actor; the floor awaits the same receive per message; "
        "ratio = ours / floor (target >= 0.9)",
    )
    compare(
        "tell vs deque floor with envelopes",
        "msg/s",
        lambda: actors_tell(tell_n),
        lambda: floor_deque_tell(tell_n, envelope=True),
        "the same floor carrying (msg, sender, reply) tuples as a mailbox must; ratio = "
        "ours / floor",
    )
    compare(
        "tell vs bare deque drain",
        "msg/s",
        lambda: actors_tell(tell_n),
        lambda: floor_deque_tell(tell_n, handled=False),
        "the deque floor doing nothing per message (for scale)",
    )
    compare(
        "tell vs awaited channel sends",
        "msg/s",
        lambda: actors_tell(tell_n),
        lambda: floor_tell(tell_n),
        "a bounded memory channel, one awaited send a message (for scale)",
    )
    compare(
        "pool tell vs direct tell",
        "msg/s",
        lambda: pool_tell(tell_n),
        lambda: actors_tell(tell_n),
        "round-robin pool of 4 actors vs one actor; ratio = pool / direct (target >= 0.83)",
    )
    compare(
        "group router tell vs direct tell",
        "msg/s",
        lambda: group_router_tell(tell_n),
        lambda: actors_tell(tell_n),
        "round-robin group router over 4 local members vs one actor; ratio = router / "
        "direct (target >= 0.83)",
    )
    compare(
        "ask vs trio park/wake",
        "us/op",
        lambda: actors_ask(ask_n),
        lambda: floor_lowlevel_ask(ask_n),
        f"{ask_n:,} sequential round trips, async receive; trio's lowest-level round "
        "trip (two task switches); ratio = floor / ours",
    )
    compare(
        "ask vs asyncio Future",
        "us/op",
        lambda: actors_ask(ask_n),
        lambda: floor_future_ask(ask_n),
        "the same round trip on asyncio; ratio = floor / ours (target >= 1)",
    )
    compare(
        "ask, async receive without await",
        "us/op",
        lambda: actors_ask(ask_n, Sink),
        lambda: floor_future_ask(ask_n, Sink),
        "receive is an async def with no await (it cannot wait): answered in the asker's "
        "task; floor: asyncio's round trip awaiting the same receive; ratio = floor / ours",
    )
    compare(
        "trio park/wake vs asyncio Future",
        "us/op",
        lambda: floor_lowlevel_ask(ask_n),
        lambda: floor_future_ask(ask_n),
        "the two floors against each other: no ask that runs receive in the actor's task "
        "can beat trio's (ratio = asyncio / trio)",
        metric="trio floor",
    )
    compare(
        "ask vs two trio channels",
        "us/op",
        lambda: actors_ask(ask_n),
        lambda: floor_ask(ask_n),
        "request/reply over two memory channels; ratio = floor / ours",
    )
    compare(
        "ask (def receive)",
        "us/op",
        lambda: actors_ask(ask_n, SyncEcho),
        lambda: floor_ask(ask_n),
        "receive is a plain def: answered in the asker's task",
    )
    compare(
        "proxy call vs plain ask",
        "us/op",
        lambda: proxy_call(ask_n),
        lambda: plain_add_ask(ask_n),
        "await counter.add(1) vs await ref.ask(Add(1)), async both; ratio = floor / ours "
        "(target >= 0.83, i.e. within 1.2x)",
    )
    compare(
        "spawn+stop",
        "us/actor",
        lambda: actors_spawn(spawn_n),
        lambda: floor_spawn(spawn_n),
        f"{spawn_n:,} actors; ratio = floor / ours (>= 0.83 is within 1.2x)",
    )
    results = [actors_fanout(*fan) for _ in range(repeats)]
    rate = statistics.median(r[0] for r in results)
    fairness = min(r[1] for r in results)
    rows.append(
        {
            "benchmark": "fan-out",
            "metric": "swimactors",
            "value": rate,
            "unit": "msg/s",
            "note": f"{fan[0]} actors x {fan[1]:,} msgs",
        }
    )
    rows.append(
        {
            "benchmark": "fan-out",
            "metric": "fairness",
            "value": fairness,
            "unit": "fraction",
            "note": "first actor's finish time / last actor's (worst run; 1 = even)",
        }
    )
    rows.extend(pykka_rows(tell_n // 4, ask_n // 4, spawn_n // 10))
    rows.extend(thespian_rows(tell_n // 4, ask_n, spawn_n))
    return rows
