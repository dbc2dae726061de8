"""Remote refs across real loopback systems: find, tell, ask, typed errors, refs in messages."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import swimactors
from swimactors import Actor, ActorRef, NodeDown, message

from .cluster_helpers import open_systems, until


@message("test.Add")
class Add:
    n: int


@message("test.Get")
class Get:
    pass


class Counter(Actor):
    def __init__(self) -> None:
        self.value = 0

    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        match msg:
            case Add(n=n):
                self.value += n
            case Get():
                return self.value
        return None


async def test_find_tell_ask_from_every_node() -> None:
    with trio.fail_after(30):
        async with open_systems(3) as systems:
            home = systems[1]
            await home.spawn(Counter, name="counter", public=True)
            for system in systems:
                ref = await system.wait_for("counter", timeout=10)
                assert isinstance(ref, ActorRef)
                assert ref.node == "n1"
                await ref.tell(Add(1))
                assert await ref.ask(Get(), timeout=5) >= 1  # FIFO: after this node's tell
            remote = await systems[0].find("counter")
            assert remote is not None
            while await remote.ask(Get(), timeout=5) != 3:  # other nodes' tells land later
                await trio.sleep(0.01)
            assert systems[2].has_actor("counter")
            assert systems[2].names() == ["counter"]


class Failing(Actor):
    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        if msg == "boom":
            raise KeyError("no such thing")
        if isinstance(msg, list) and msg[0] == "sleep":
            await trio.sleep(msg[1])
        return msg


async def test_typed_errors_cross_the_wire() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Failing, name="failing", public=True)
            ref = await a.wait_for("failing", timeout=10)
            assert await ref.ask({"plain": [1, 2.5, "x"]}) == {"plain": [1, 2.5, "x"]}
            with pytest.raises(swimactors.ActorFailed) as failed:
                await ref.ask("boom")
            assert failed.value.type_name == "KeyError"
            assert "no such thing" in failed.value.message
            assert failed.value.traceback == ""  # tracebacks only with TransportConfig.debug
            with pytest.raises(swimactors.AskTimeout):
                await ref.ask(["sleep", 0.4], timeout=0.2)
            ghost = a.resolve("n1", "nobody", 99)
            with pytest.raises(swimactors.ActorStopped):
                await ghost.ask("hello")
            before = b.dead_letters.count
            await ghost.tell("hello")
            await until(lambda: b.dead_letters.count == before + 1)
            with pytest.raises(TypeError):
                await ref.tell(object())


class Holding(Actor):
    """Answers an ask only after ``release``; ``started`` says the ask has arrived."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.release = trio.Event()

    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        self.started.set()
        await self.release.wait()
        return msg


async def test_closed_connection_fails_pending_asks_with_node_down() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            holding = Holding()
            await b.spawn(holding, name="holding", public=True)
            ref = await a.wait_for("holding", timeout=10)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_close_when_started, holding, b)
                with pytest.raises(NodeDown):
                    await ref.ask("pending", timeout=None)  # only the close can end it
            holding.release.set()


async def _close_when_started(holding: Holding, system: swimactors.System) -> None:
    await holding.started.wait()  # the ask is in b's hands: the close finds it pending
    assert system.cluster is not None
    system.cluster.transport.close_all()


@message("test.Subscribe")
class Subscribe:
    who: ActorRef


@message("test.Note")
class Note:
    text: str


class Room(Actor):
    def __init__(self) -> None:
        self.members: list[ActorRef] = []

    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        match msg:
            case Subscribe(who=who):
                self.members.append(who)
                return who
            case Note():
                for member in self.members:
                    await member.tell(msg)
        return None


class Inbox(Actor):
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def receive(self, msg: object, ctx: swimactors.Context) -> None:
        if isinstance(msg, Note):
            self.seen.append(f"{ctx.self_ref.node}:{msg.text}")


async def test_refs_inside_messages_come_back_working() -> None:
    seen: list[str] = []
    with trio.fail_after(30):
        async with open_systems(3) as systems:
            await systems[0].spawn(Room, name="room", public=True)
            for system in systems[1:]:
                inbox = await system.spawn(Inbox(seen))
                room = await system.wait_for("room", timeout=10)
                echoed = await room.ask(Subscribe(inbox))
                assert echoed == inbox
                assert system.local_cell(echoed) is not None  # back home: the local actor
            room = await systems[2].wait_for("room", timeout=10)
            await room.tell(Note("hi"))
            await until(lambda: sorted(seen) == ["n1:hi", "n2:hi"])


class Watcher(Actor):
    def __init__(self, target: ActorRef, log: list[tuple[ActorRef, str | None]]) -> None:
        self.target = target
        self.log = log

    async def on_start(self) -> None:
        self.context.watch(self.target)

    def receive(self, msg: object, ctx: swimactors.Context) -> None:
        if isinstance(msg, swimactors.Terminated):
            self.log.append((msg.ref, msg.reason))


async def test_remote_watch_on_stop_exactly_once() -> None:
    log: list[tuple[ActorRef, str | None]] = []
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            target = await b.spawn(Counter, name="watched", public=True)
            remote = await a.wait_for("watched", timeout=10)
            await a.spawn(Watcher(remote, log))
            await a.spawn(Watcher(remote, log))
            cell = b.local_cell(target)
            assert cell is not None
            await until(lambda: len(cell._watchers or ()) == 2)  # the name's and the proxy
            await b.stop(target)
            await until(lambda: len(log) == 2)
            await trio.sleep(0.3)
            assert log == [(remote, None), (remote, None)]
            await until(lambda: not a.has_actor("watched"))
            late: list[tuple[ActorRef, str | None]] = []
            await a.spawn(Watcher(remote, late))
            await until(lambda: len(late) == 1)


async def test_spawn_on_runs_only_registered_factories() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            b.register_spawnable("echo", lambda greeting: _Greeter(greeting))
            ref = await a.spawn_on("n1", "echo", ["hello"], name="greeter")
            assert ref.node == "n1"
            assert await ref.ask("you") == "hello you"
            assert (await a.wait_for("greeter", timeout=10)) == ref
            with pytest.raises(swimactors.ActorFailed, match="LookupError"):
                await a.spawn_on("n1", "os.system", ["true"])
            with pytest.raises(swimactors.ActorFailed, match="NameTaken"):
                await a.spawn_on("n1", "echo", ["again"], name="greeter")


class _Greeter(Actor):
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return f"{self.greeting} {msg}"


async def test_member_down_fails_pending_asks_and_fires_watches_at_once() -> None:
    """The membership path (a partition keeps the TCP connection open): what the cluster
    does on MemberDown for node n1, driven directly."""
    log: list[tuple[ActorRef, str | None]] = []
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Failing, name="failing", public=True)
            ref = await a.wait_for("failing", timeout=10)
            await a.spawn(Watcher(ref, log))
            assert await ref.ask("warm") == "warm"
            assert a.cluster is not None
            transport = a.cluster.transport

            async def declare_down() -> None:
                await trio.sleep(0.2)
                transport.node_down("n1", "down")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(declare_down)
                start = trio.current_time()
                with pytest.raises(NodeDown, match="n1 is down"):
                    await ref.ask(["sleep", 1.0], timeout=20)
                assert trio.current_time() - start < 0.8
            await until(lambda: log == [(ref, "node n1 down")])


async def test_api_boundaries_give_typed_errors() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            with pytest.raises(TimeoutError, match="nobody"):
                await a.wait_for("nobody", timeout=0.2)
            with pytest.raises(ValueError, match="needs a name"):
                await a.spawn(Counter, public=True)
            await b.spawn(Counter, name="taken", public=True)
            await a.wait_for("taken", timeout=10)
            with pytest.raises(swimactors.NameTaken, match="n1"):
                await a.spawn(Counter, name="taken", public=True)
            with pytest.raises(TypeError):
                a.register_spawnable("bad", "not callable")  # type: ignore[arg-type]
    async with swimactors.open_system() as local:
        with pytest.raises(ValueError, match="local-only"):
            await local.spawn_on("elsewhere", "anything")
        await local.spawn(Counter, name="here", public=True)
        assert local.names() == ["here"] and local.has_actor("here")


class AsyncEcho(Actor):
    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return msg


async def test_a_remote_ask_is_one_write_each_way() -> None:
    """The asked node's credit rides on its reply instead of a CREDIT write of its own."""
    asks = 200
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(AsyncEcho, name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            await ref.ask(0)  # the connection is up
            counters = [s.cluster.transport.counters for s in (a, b) if s.cluster is not None]
            before = [c["writes"] for c in counters]
            for n in range(asks):
                assert await ref.ask(n) == n
            writes = [c["writes"] - w for c, w in zip(counters, before, strict=True)]
    assert all(asks <= w <= asks * 1.05 for w in writes), writes


class _WriterSteps(trio.abc.Instrument):
    """Counts the steps of the connections' writer tasks."""

    def __init__(self) -> None:
        self.steps = 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("Connection._write"):
            self.steps += 1


class AwaitingEcho(Actor):
    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        await trio.lowlevel.checkpoint()
        return msg


async def test_replies_go_out_as_the_actor_step_ends_without_the_writer_task() -> None:
    """An async actor's reply is written by its own task as its step ends: no writer
    task wakes for it (one task step fewer per ask on the asked node)."""
    asks = 100
    writer = _WriterSteps()
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(AwaitingEcho, name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            await ref.ask(0)  # the connection is up
            trio.lowlevel.add_instrument(writer)
            for n in range(asks):
                assert await ref.ask(n) == n
            trio.lowlevel.remove_instrument(writer)
    assert writer.steps == 0


class _OwnTask(Actor):
    """Says whether it handles a message in its own task (set as it starts)."""

    def __init__(self) -> None:
        self.own: trio.lowlevel.Task | None = None

    async def on_start(self) -> None:
        self.own = trio.lowlevel.current_task()


class Instant(_OwnTask):
    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return trio.lowlevel.current_task() is self.own


class Awaiting(_OwnTask):
    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        if msg is None:
            await trio.lowlevel.checkpoint()
        return trio.lowlevel.current_task() is self.own


async def test_an_ask_that_cannot_wait_is_answered_by_the_task_that_read_it() -> None:
    """An ask from another node to an idle actor whose receive cannot wait (no await in
    it) is answered in the task that read it, as the frame is handled: no switch to the
    actor's task. One that can await runs in the actor's own task."""
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Instant, name="instant", public=True)
            await b.spawn(Awaiting, name="awaiting", public=True)
            instant = await a.wait_for("instant", timeout=10)
            awaiting = await a.wait_for("awaiting", timeout=10)
            await awaiting.ask("the connection is up")
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(3):
                assert await instant.ask("in your task?") is False
                assert await awaiting.ask("in your task?") is True


class Gated(Actor):
    """Answers "fast" at once; "hold" and "block" wait for their gate first."""

    def __init__(self, gates: dict[str, trio.Event], holding: trio.Event) -> None:
        self.gates = gates
        self.holding = holding

    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        if msg == "hold":
            self.holding.set()
        if msg != "fast":
            assert isinstance(msg, str)
            await self.gates[msg].wait()
        return msg


async def test_a_reply_goes_out_while_its_actor_awaits_the_next_message() -> None:
    """A reply set in the middle of an actor's batch is sent when the actor suspends on
    the next message, not when the batch ends (here the batch ends only after it)."""
    gates, holding = {"hold": trio.Event(), "block": trio.Event()}, trio.Event()
    answered: dict[str, object] = {}

    async def ask(ref: ActorRef, msg: str) -> None:
        answered[msg] = await ref.ask(msg, timeout=None)

    with trio.fail_after(30):
        async with open_systems(2) as (a, b), trio.open_nursery() as nursery:
            gated = await b.spawn(lambda: Gated(gates, holding), name="gated", public=True)
            cell = b.local_cell(gated)
            assert cell is not None
            ref = await a.wait_for("gated", timeout=10)
            nursery.start_soon(ask, ref, "hold")
            await holding.wait()  # the actor awaits the "hold" gate
            for queued, msg in enumerate(("fast", "block"), 1):
                nursery.start_soon(ask, ref, msg)
                await until(lambda n=queued: len(cell.queue) == n)  # type: ignore[misc]
            gates["hold"].set()  # one batch: "hold" ends, "fast" answers, "block" waits
            await until(lambda: "fast" in answered, timeout=5)
            assert answered == {"hold": "hold", "fast": "fast"}
            gates["block"].set()
