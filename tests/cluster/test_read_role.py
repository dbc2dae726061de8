"""The read role a connection lends to the task its reply woke: sequential asks read the
socket in the asking task; timeouts, closes, cancellation, big frames and the peer's own
traffic behave as when the reader task reads."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import Actor, ActorRef, AskTimeout, NodeDown, UndecodableReply, wire
from swimactors.actors import protocol
from swimactors.security import Keyring

from .cluster_helpers import FAST, open_systems


class Echo(Actor):
    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return msg


class Slow(Actor):
    """Answers ``seconds`` after it is asked, and says when it has started."""

    def __init__(self) -> None:
        self.started = trio.Event()

    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        assert isinstance(msg, float)
        self.started.set()
        await trio.sleep(msg)
        return msg


class _ReaderSteps(trio.abc.Instrument):
    """Counts the steps of the connections' tasks (each one's reader), or of the one
    whose context is ``context``."""

    def __init__(self, context: object = None) -> None:
        self.steps = 0
        self.context = context

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("Connection.run") and self.context in (None, task.context):
            self.steps += 1


async def _two(a: swimactors.System, b: swimactors.System) -> tuple[ActorRef, ActorRef, Slow]:
    """b's echo and slow actor, asked from a until a's task reads the connection itself."""
    slow = Slow()
    await b.spawn(Echo, name="echo", public=True)
    await b.spawn(lambda: slow, name="slow", public=True)
    echo = await a.wait_for("echo", timeout=10)
    slow_ref = await a.wait_for("slow", timeout=10)
    for n in range(3):
        assert await echo.ask(n) == n
    return echo, slow_ref, slow


@pytest.mark.parametrize("keyed", [False, True])
async def test_sequential_asks_are_read_by_the_asking_task(keyed: bool) -> None:
    """Only the asked node's reader wakes per ask: the asking node's reader lends its
    role to the asking task, which reads its replies itself (a task switch fewer)."""
    asks = 200
    steps = _ReaderSteps()
    config = FAST.replace(keyring=Keyring(b"K" * 32)) if keyed else FAST
    with trio.fail_after(30):
        async with open_systems(2, config=config) as (a, b):
            echo, _slow_ref, _slow = await _two(a, b)
            trio.lowlevel.add_instrument(steps)
            for n in range(asks):
                assert await echo.ask(n) == n
            trio.lowlevel.remove_instrument(steps)
    assert asks <= steps.steps <= asks * 1.1  # the asked node's reader, once per ask


async def test_an_ask_read_by_its_task_times_out_and_its_late_reply_is_read() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            echo, slow, _ = await _two(a, b)
            started = trio.current_time()
            with pytest.raises(AskTimeout):
                await slow.ask(0.5, timeout=0.1)
            assert trio.current_time() - started < 0.4
            transport = a.cluster.transport if a.cluster is not None else None
            assert transport is not None
            await trio.sleep(0.6)  # the late answer comes in: read by the reader task
            assert transport.counters["replies_stray"] == 1
            assert await echo.ask("after") == "after"


@pytest.mark.parametrize("closing", ["asking node", "asked node"])
async def test_a_close_fails_the_ask_read_by_its_task_with_node_down(closing: str) -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            _echo, slow_ref, slow = await _two(a, b)
            closer = a if closing == "asking node" else b

            async def close_when_started() -> None:
                await slow.started.wait()  # the ask is in b's hands
                assert closer.cluster is not None
                closer.cluster.transport.close_all()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(close_when_started)
                with pytest.raises(NodeDown):
                    await slow_ref.ask(5.0, timeout=None)  # only the close can end it


async def test_a_cancelled_ask_read_by_its_task_leaves_the_connection_working() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            echo, slow, _ = await _two(a, b)
            with trio.move_on_after(0.1) as scope:
                await slow.ask(0.3)
            assert scope.cancelled_caught
            assert await echo.ask("after") == "after"
            await trio.sleep(0.4)  # the abandoned answer comes in
            assert a.cluster is not None
            assert a.cluster.transport.counters["replies_stray"] == 1
            assert await echo.ask("again") == "again"


async def test_a_reply_bigger_than_one_read_arrives_whole() -> None:
    """A frame left under way sends the role back to the reader (its frame deadline)."""
    big = "x" * 300_000
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            echo, _slow, _ = await _two(a, b)
            for _ in range(3):
                assert await echo.ask(big) == big
                assert await echo.ask(1) == 1


async def test_the_peer_is_served_while_a_task_reads_and_after_it_stops() -> None:
    """While a's task reads the connection for its own reply, b's asks to a's actor on
    that connection are answered by it; once the task does something else, by a's
    reader again."""
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            echo, slow, _ = await _two(a, b)
            await a.spawn(Echo, name="back", public=True)
            back = await b.wait_for("back", timeout=10)
            answers: list[object] = []

            assert a.cluster is not None
            a_reader = _ReaderSteps(a.cluster.transport.connections["n1"]._context)

            async def ask_back() -> None:
                for n in range(200):
                    answers.append(await back.ask(n))
                    await trio.sleep(0.005)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask_back)
                for n in range(20):  # past the sitting out of the wakes above
                    assert await echo.ask(n) == n
                trio.lowlevel.add_instrument(a_reader)
                assert await slow.ask(0.3) == 0.3  # a's task reads while b asks
                trio.lowlevel.remove_instrument(a_reader)
                assert 0 < len(answers) < 200
                assert a_reader.steps == 0
            assert answers == list(range(200))  # the rest read by a's reader


async def test_a_task_that_leaves_the_role_unused_is_not_lent_it_on_every_reply() -> None:
    """A task that asks and then awaits something else hands the role straight back (a
    wasted step of the reader each time); after one such time it sits out its next
    wakes, so such a loop costs the reader about one step per ask, not two."""
    asks = 160
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            echo, _slow, _ = await _two(a, b)
            assert a.cluster is not None
            a_reader = _ReaderSteps(a.cluster.transport.connections["n1"]._context)
            trio.lowlevel.add_instrument(a_reader)
            for n in range(asks):
                assert await echo.ask(n) == n
                await trio.sleep(0)
            trio.lowlevel.remove_instrument(a_reader)
    assert asks <= a_reader.steps <= asks * 1.15


class Awaiting(Actor):
    """An async receive that can await (only for ``"sleep"``), so asks go through its task."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        if msg == "sleep":
            await trio.sleep(0.05)
        self.seen.append(msg)
        return msg


async def _asked_reader(b: swimactors.System) -> _ReaderSteps:
    """Steps of b's reader of its connection from n0."""
    assert b.cluster is not None
    return _ReaderSteps(b.cluster.transport.connections["n0"]._context)


async def test_the_asked_actor_reads_the_next_ask_itself() -> None:
    """The asked node's reader lends its role to the actor task an ask woke: parked with
    it, the actor reads the next ask from the socket itself (no reader step per ask)."""
    asks = 200
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Awaiting, name="awaiting", public=True)
            ref = await a.wait_for("awaiting", timeout=10)
            for n in range(3):
                assert await ref.ask(n) == n
            reader = await _asked_reader(b)
            trio.lowlevel.add_instrument(reader)
            for n in range(asks):
                assert await ref.ask(n) == n
            trio.lowlevel.remove_instrument(reader)
    assert reader.steps <= asks * 0.1


@pytest.mark.parametrize("keyed", [False, True])
@pytest.mark.parametrize("actor", [Echo, Awaiting])
async def test_asks_in_a_row_are_taken_straight_each_way(
    actor: type[Actor], keyed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once an ask has gone to an actor, the next ones from the same sender and their
    replies are each one read taken straight (``PeerSession.lone_ask``/``lone_reply``):
    no frame is parsed on either node, whoever reads (the reader, the asking task, the
    asked actor)."""
    parsed = 0
    parse = protocol.parse

    def counted(frame: bytes, loads: Any = wire.loads) -> protocol.Frame:
        nonlocal parsed
        parsed += 1
        return parse(frame, loads)

    config = FAST.replace(keyring=Keyring(b"K" * 32)) if keyed else FAST
    with trio.fail_after(30):
        async with open_systems(2, config=config) as (a, b):
            await b.spawn(actor, name="asked", public=True)
            ref = await a.wait_for("asked", timeout=10)
            for n in range(3):
                assert await ref.ask(n) == n
            monkeypatch.setattr(protocol, "parse", counted)
            for n in range(200):
                assert await ref.ask(n) == n
            monkeypatch.undo()
    assert parsed <= 4  # (a CREDIT frame per half window)


class Spoiler(Actor):
    """Echoes, but answers "spoil" with "spoilt" (which the test makes undecodable)."""

    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return "spoilt" if msg == "spoil" else msg


async def test_an_answer_taken_straight_that_does_not_decode_fails_its_ask_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The asking task's reply, read by it and taken straight, is decoded there: one that
    does not decode is that ask's UndecodableReply, and the asks after it are answered."""
    parsed = 0
    parse, decode = protocol.parse, protocol.decode_value

    def counted(frame: bytes, loads: Any = wire.loads) -> protocol.Frame:
        nonlocal parsed
        parsed += 1
        return parse(frame, loads)

    def refusing(data: Any) -> Any:
        value = decode(data)
        if value == "spoilt":
            raise wire.WireError("refused by the test")
        return value

    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Spoiler, name="asked", public=True)
            ref = await a.wait_for("asked", timeout=10)
            for n in range(3):
                assert await ref.ask(n) == n
            monkeypatch.setattr(protocol, "parse", counted)
            monkeypatch.setattr(protocol, "decode_value", refusing)
            with pytest.raises(UndecodableReply, match="refused by the test"):
                await ref.ask("spoil")
            for n in range(3):
                assert await ref.ask(n) == n
            monkeypatch.undo()
    assert parsed == 0  # (all taken straight)


async def _holding_the_socket(
    a: swimactors.System, b: swimactors.System
) -> tuple[Awaiting, ActorRef, ActorRef]:
    """An Awaiting actor on ``b``, its local ref, and ``a``'s ref to it, asked five times
    from ``a`` so that it now waits on b's socket between asks."""
    actor = Awaiting()
    local = await b.spawn(lambda: actor, name="awaiting", public=True)
    ref = await a.wait_for("awaiting", timeout=10)
    for n in range(5):
        assert await ref.ask(n) == n
    return actor, local, ref


async def test_an_actor_reading_the_socket_is_woken_by_local_tells_signals_and_stops() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            actor, local, ref = await _holding_the_socket(a, b)
            await local.tell("local")  # kicks it off the socket
            await ref.tell("remote")
            assert await ref.ask("sleep") == "sleep"  # really awaits: the role goes back
            assert await local.ask("local ask") == "local ask"
            assert actor.seen[5:] == ["local", "remote", "sleep", "local ask"]
            for n in range(5):
                assert await ref.ask(n) == n
            await b.stop(local)  # a stop wakes it off the socket too
            with pytest.raises(swimactors.ActorStopped):
                await local.ask("stopped")
            await b.spawn(Echo, name="echo", public=True)
            echo = await a.wait_for("echo", timeout=10)
            assert await echo.ask("still read") == "still read"


async def test_an_actor_reading_one_nodes_socket_answers_another_node() -> None:
    with trio.fail_after(30):
        async with open_systems(3) as (a, b, c):
            await b.spawn(Awaiting, name="awaiting", public=True)
            from_a = await a.wait_for("awaiting", timeout=10)
            from_c = await c.wait_for("awaiting", timeout=10)
            for n in range(30):
                assert await from_a.ask(n) == n
                assert await from_c.ask(-n) == -n


async def test_an_actor_reading_a_socket_that_closes_goes_on_serving() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            local = await b.spawn(Awaiting, name="awaiting", public=True)
            ref = await a.wait_for("awaiting", timeout=10)
            for n in range(5):
                assert await ref.ask(n) == n
            assert b.cluster is not None
            b.cluster.transport.close_all()
            await trio.testing.wait_all_tasks_blocked()
            assert await local.ask("local") == "local"
            assert await ref.ask("redialled") == "redialled"


async def test_an_actor_woken_off_the_socket_gives_the_role_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Waking an actor off the socket costs trio a new registration: one woken so by a
    local tell hands the role back and sits out its next wakes, so an actor told locally
    while idle is kicked once, not on every tell."""
    kicks = 0
    notify_closing = trio.lowlevel.notify_closing

    def counted(fd: int) -> None:
        nonlocal kicks
        kicks += 1
        notify_closing(fd)

    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            actor, local, ref = await _holding_the_socket(a, b)
            monkeypatch.setattr(trio.lowlevel, "notify_closing", counted)
            for n in range(10):
                await local.tell(n)
                await trio.testing.wait_all_tasks_blocked()  # idle again
            assert await ref.ask("after") == "after"
            monkeypatch.undo()
    assert kicks == 1
    assert actor.seen[5:] == [*range(10), "after"]


class Switching(Actor):
    """Can await (so an ask wakes its task, which then holds the read role) until asked
    "plain"; from then on a plain ``def`` behaviour, which an idle actor answers at once."""

    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        if msg is None:
            await trio.lowlevel.checkpoint()
        if msg == "plain":
            ctx.become(self.plain)
        return msg

    def plain(self, msg: object, ctx: swimactors.Context) -> object:
        return ["plain", msg]


async def test_an_actor_that_turns_plain_while_reading_the_socket_still_answers() -> None:
    """The actor's own task, reading the socket, meets an ask to itself: it cannot be
    answered at once in that task (the actor's context is the one running), so it goes
    through the mailbox; the connection lives on."""
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Switching, name="switching", public=True)
            ref = await a.wait_for("switching", timeout=10)
            for n in range(5):
                assert await ref.ask(n) == n
            assert await ref.ask("plain") == "plain"
            for n in range(5):
                assert await ref.ask(n) == ["plain", n]
            assert b.cluster is not None
            assert b.cluster.transport.counters["connection_errors"] == 0
