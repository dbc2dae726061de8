"""The actor transport's edges: backpressure across the wire, hostile frames, name conflicts."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import cast

import outcome
import pytest
import trio

import swimactors
from swimactors import Actor, ActorRef, MailboxFull, NameLost, NodeDown, TransportConfig, wire
from swimactors.actors import protocol
from swimactors.actors.cell import BUDGET, ActorCell
from swimactors.actors.observe import Stats
from swimactors.actors.protocol import TELL_VALUES, Kind
from swimactors.actors.reply import Reply
from swimactors.actors.transport import Connection, _RemoteReply

from .cluster_helpers import cluster_of, open_systems, until


class Gate(Actor):
    """Blocks on its first message until the test opens the gate; counts the rest."""

    def __init__(self, gate: trio.Event, got: list[object]) -> None:
        self.gate = gate
        self.got = got

    async def receive(self, msg: object, ctx: swimactors.Context) -> None:
        await self.gate.wait()
        self.got.append(msg)


async def test_a_full_remote_mailbox_holds_back_half_a_window_then_drops() -> None:
    gate = trio.Event()
    got: list[object] = []
    window, capacity = 8, 4
    with trio.fail_after(30):
        async with open_systems(2, transport=TransportConfig(window=window)) as (a, b):
            await b.spawn(Gate(gate, got), name="gate", public=True, mailbox_size=capacity)
            ref = await a.wait_for("gate", timeout=10)
            taken = 0
            for _ in range(3):  # take credit as it comes back
                taken += await _fill(ref, taken, 100)
                await trio.sleep(0.3)
            # one in hand, a full mailbox, half a window held back (the sender's credit)
            kept = 1 + capacity + window // 2
            assert taken > kept
            assert cluster_of(b).transport.counters["refused_full"] == taken - kept
            with pytest.raises(MailboxFull):
                await ref.ask("refused", timeout=5)
            gate.set()
            await until(lambda: len(got) == kept)
            await ref.tell("after")  # room again: delivered
            await until(lambda: len(got) == kept + 1)
            assert got == [*range(kept), "after"]  # per-sender FIFO across the wire


async def test_a_full_remote_mailbox_does_not_delay_other_actors_on_the_connection() -> None:
    gate = trio.Event()
    got: list[object] = []
    window, capacity = 8, 2
    with trio.fail_after(30):
        async with open_systems(2, transport=TransportConfig(window=window)) as (a, b):
            await b.spawn(Gate(gate, got), name="gate", public=True, mailbox_size=capacity)
            await b.spawn(Echo(), name="echo", public=True)
            slow = await a.wait_for("gate", timeout=10)
            echo = await a.wait_for("echo", timeout=10)
            for n in range(3 * window):
                with trio.move_on_after(0.2):
                    await slow.tell(n)
            for n in range(3 * window):  # every ask answered while the gate stays shut
                assert await echo.ask(n, timeout=2) == n
            assert not gate.is_set() and got == []
            gate.set()


@swimactors.message("test.transport.Num")
class Num:
    n: int


@swimactors.message("test.transport.Batch")
class Batch:
    n: int
    items: list[int]
    inner: Num | None = None


def _batch(n: int) -> Batch:
    return Batch(n, [n, -n], Num(n))


@pytest.mark.parametrize("make", [int, Num, _batch], ids=["TELL", "RUN", "RUN nested"])
async def test_a_burst_of_tells_is_one_frame_delivered_in_order_past_a_full_mailbox(
    make: Callable[[int], object],
) -> None:
    gate = trio.Event()
    got: list[object] = []
    burst, capacity = 40, 4
    with trio.fail_after(30):
        async with open_systems(2, transport=TransportConfig(window=128)) as (a, b):
            await b.spawn(Gate(gate, got), name="gate", public=True, mailbox_size=capacity)
            ref = await a.wait_for("gate", timeout=10)
            await ref.tell("first")  # the connection is up
            await until(lambda: cluster_of(b).transport.counters["frames_received"] >= 2)
            counters = cluster_of(b).transport.counters
            frames = counters["frames_received"]
            for n in range(burst):  # one task step: the burst goes out as it ends
                await ref.tell(make(n))
            await until(lambda: counters["frames_received"] > frames)
            assert counters["frames_received"] == frames + 1
            gate.set()  # the mailbox drains; what was held back follows in order
            await until(lambda: len(got) == 1 + burst)
            assert got == ["first", *map(make, range(burst))]
            assert counters["refused_full"] == 0


async def test_tells_alternating_runs_and_plain_values_arrive_in_order() -> None:
    got: list[object] = []
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Collect(got), name="collect", public=True)
            ref = await a.wait_for("collect", timeout=10)
            told: list[object] = [Num(0), 0, "zero"]  # each kind met once, then fast
            told += [x for n in range(1, 300) for x in (Num(n), n, Num(-n), str(n))]
            for msg in told:
                await ref.tell(msg)
            await until(lambda: len(got) == len(told))
            assert got == told


@pytest.mark.parametrize(
    "make",
    [Num, lambda n: Batch(0, [n]), lambda n: Batch(0, [], Num(n))],
    ids=["scalar", "in a list", "in a nested message"],
)
async def test_a_message_of_a_run_that_does_not_build_fails_alone(
    make: Callable[[object], object],
) -> None:
    got: list[object] = []
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Collect(got), name="collect", public=True)
            ref = await a.wait_for("collect", timeout=10)
            await ref.tell(make(0))  # the connection is up, the run's address cached
            await until(lambda: got == [make(0)])
            for n in (1, "two", 3):  # a str where an int goes: refused by the receiver
                await ref.tell(make(n))
            counters = cluster_of(b).transport.counters
            await until(lambda: len(got) == 3)
            assert got == [make(0), make(1), make(3)]
            assert counters["undecodable_messages"] == 1


async def test_a_run_message_the_wire_refuses_is_unsendable_at_the_sender() -> None:
    got: list[object] = []
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Collect(got), name="collect", public=True)
            ref = await a.wait_for("collect", timeout=10)
            for good, bad in ((Num(0), Num(2**64)), (_batch(1), Batch(1, [2**64]))):
                await ref.tell(good)
                await until(lambda: len(got) % 2 == 1)  # the peer's HELLO is read by now
                await ref.tell(good)  # its class and run address cached: the fast path
                with pytest.raises(swimactors.Unsendable, match="cannot go to another node"):
                    await ref.tell(bad)
                await until(lambda: len(got) % 2 == 0)
            await ref.tell(_batch(2))
            await until(lambda: len(got) == 5)
            assert got == [Num(0), Num(0), _batch(1), _batch(1), _batch(2)]


async def _fill(ref: ActorRef, start: int, limit: int) -> int:
    """tell_nowait numbers from ``start`` until MailboxFull; how many were taken."""
    for sent in range(limit):
        try:
            ref.tell_nowait(start + sent)
        except MailboxFull:
            return sent
    return limit


class Echo(Actor):
    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return msg


async def _send_raw(address: tuple[str, int], data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the peer closes it."""
    stream = await trio.open_tcp_stream(*address)
    async with stream:
        await stream.send_all(data)
        received = b""
        while chunk := await stream.receive_some(65536):
            received += chunk
        return received


async def test_garbage_and_oversized_frames_drop_only_their_connection() -> None:
    with trio.fail_after(30):
        config = TransportConfig(max_frame=1024)
        async with open_systems(2, transport=config) as (a, b):
            await b.spawn(Echo, name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            assert await ref.ask("before") == "before"
            port = a.actor_address("n1")
            assert port is not None and b.cluster is not None
            counters = b.cluster.transport.counters
            garbage = b"\xff\x00garbage"
            await _send_raw(port, struct.pack(">I", len(garbage)) + garbage)
            await _send_raw(port, struct.pack(">I", 10_000_000) + b"x" * 100)
            await _send_raw(port, struct.pack(">I", 3) + b"\x83\x01\x02\x03")  # not HELLO
            assert counters["rejected_malformed"] == 2
            assert counters["rejected_oversized"] == 1
            assert await ref.ask("after") == "after"  # the real peer was never disturbed


class Collect(Actor):
    def __init__(self, got: list[object]) -> None:
        self.got = got

    def receive(self, msg: object, ctx: swimactors.Context) -> None:
        self.got.append(msg)


async def test_a_value_that_does_not_decode_fails_alone_in_its_burst() -> None:
    got: list[object] = []
    with trio.fail_after(30):
        async with open_systems(1) as (a,):
            ref = await a.spawn(Collect(got), name="collect")
            port = a.actor_address("n0")
            assert port is not None
            value = protocol.encode_value
            burst = [Kind.TELL, ref.path, ref.uid, None, value(1), [1, ["no.such.Tag"]], value(2)]
            stream = await trio.open_tcp_stream(*port)
            async with stream:
                await stream.send_all(
                    protocol.encode(protocol.Hello("stranger", 1, 64))
                    + wire.encode_frame(wire.dumps(burst))
                )
                await until(lambda: len(got) == 2)
            assert got == [1, 2]
            assert cluster_of(a).transport.counters["undecodable_messages"] == 1


class Depth(Actor):
    """Records how many messages are still queued as it takes each one."""

    def __init__(self, depths: list[int]) -> None:
        self.depths = depths
        self.cell: ActorCell | None = None

    def receive(self, msg: object, ctx: swimactors.Context) -> None:
        assert self.cell is not None
        self.depths.append(len(self.cell.queue))


async def test_the_reader_lets_an_actor_it_feeds_run_before_decoding_more() -> None:
    """5,000 tells sent in one step cross in one read; the reader stops after each burst
    that leaves the actor a whole batch behind, so the backlog stays within about a batch
    and a frame (it grew to the whole read: all 5,000 decoded before the actor ran)."""
    depths: list[int] = []
    actor = Depth(depths)
    with trio.fail_after(60):
        async with open_systems(2) as (a, b):
            local = await b.spawn(actor, name="depth", public=True, mailbox_size=1 << 14)
            actor.cell = b.local_cell(local)
            ref = await a.wait_for("depth", timeout=10)
            for n in range(5000):
                await ref.tell(n)
            await until(lambda: len(depths) == 5000)
            assert max(depths) < 2 * BUDGET + TELL_VALUES


class Claimant(Actor):
    def __init__(self, notices: list[NameLost]) -> None:
        self.notices = notices

    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        if isinstance(msg, NameLost):
            self.notices.append(msg)
        return ctx.self_ref.node


async def test_concurrent_claims_converge_and_the_loser_is_told_and_stopped() -> None:
    lost_a: list[NameLost] = []
    lost_b: list[NameLost] = []
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            # no checkpoint between the two spawns: neither node can see the other's claim
            ref_a = await a.spawn(Claimant(lost_a), name="leader", public=True)
            ref_b = await b.spawn(Claimant(lost_b), name="leader", public=True)
            # equal Lamport clocks: the smaller node name, n0, wins everywhere
            await until(lambda: b.local_cell_at(ref_b.path, ref_b.uid) is None)
            assert lost_a == []
            assert [(n.name, n.winner) for n in lost_b] == [("leader", ref_a)]
            for system in (a, b):
                await until(lambda s=system: _holder(s, "leader") == "n0")  # type: ignore[misc]
                holder = await system.find("leader")
                assert holder == ref_a
                assert holder is not None and await holder.ask("who") == "n0"
            assert a.local_cell(ref_a) is not None


async def test_a_loser_can_be_kept_running_unnamed() -> None:
    with trio.fail_after(30):
        async with open_systems(2, keep_losers=True) as (a, b):
            await a.spawn(Claimant([]), name="leader", public=True)
            ref_b = await b.spawn(Claimant([]), name="leader", public=True)
            await until(lambda: b.cluster is not None and "leader" not in b.cluster.names.public)
            await trio.sleep(0.2)
            assert b.local_cell_at(ref_b.path, ref_b.uid) is not None
            assert (await b.find("leader")) != ref_b


def _holder(system: swimactors.System, name: str) -> str | None:
    assert system.cluster is not None
    registration = system.cluster.names.registration(name)
    return None if registration is None else registration.node


async def test_idle_connections_close_and_reopen_on_use() -> None:
    with trio.fail_after(30):
        config = TransportConfig(idle_timeout=0.3)
        async with open_systems(2, transport=config) as (a, b):
            await b.spawn(Echo, name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            assert a.cluster is not None
            transport = a.cluster.transport
            assert await ref.ask(1) == 1
            await until(lambda: "n1" not in transport.connections)  # closed when idle
            assert await ref.ask(2) == 2  # reopened on use
            assert transport.counters["dials"] == 2


async def test_an_unreachable_node_fails_fast_during_the_backoff() -> None:
    with trio.fail_after(30):
        closed = trio.socket.socket()
        await closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
        closed.close()  # nothing listens there any more
        async with open_systems(2, actor_advertise=f"127.0.0.1:{dead_port}") as (a, _):
            ref = a.resolve("n1", "anything", 1)
            assert a.cluster is not None
            transport = a.cluster.transport
            with pytest.raises(NodeDown, match="closed"):
                await ref.ask("hello")  # the dial fails
            with pytest.raises(NodeDown, match="unreachable"):
                await ref.ask("again")  # within the backoff: no new dial
            assert transport.counters["dials"] == 1
            await trio.sleep(0.3)  # past the first backoff (0.1 s): a new attempt
            with pytest.raises(NodeDown, match="closed"):
                await ref.ask("later")
            assert transport.counters["dials"] == 2


async def test_an_ask_started_without_a_task_crosses_the_wire() -> None:
    """``start_ask`` (the asyncio front's path) to another node: answered, timed out (and
    forgotten), refused without credit, and NodeDown for a node that is not a member."""
    gate = trio.Event()
    got: list[outcome.Outcome[object]] = []
    with trio.fail_after(30):
        async with open_systems(2, transport=TransportConfig(window=2)) as (a, b):
            await b.spawn(Echo(), name="echo", public=True)
            await b.spawn(Gate(gate, []), name="gate", public=True)
            echo = await a.wait_for("echo", timeout=10)
            held = await a.wait_for("gate", timeout=10)
            assert echo.start_ask("hello", 5, got.append) is not None
            await until(lambda: got == [outcome.Value("hello")])
            pending = cluster_of(a).transport.connections[b.name].session.pending
            assert held.start_ask("held", 0.3, got.append) is not None
            assert held.start_ask("held", 0.3, got.append) is not None
            assert held.start_ask("no credit", 0.3, got.append) is None  # window of 2 taken
            await until(lambda: len(got) == 3)
            assert all(isinstance(r, outcome.Error) for r in got[1:])
            assert isinstance(got[1].error, swimactors.AskTimeout)  # type: ignore[union-attr]
            assert not pending
            nobody = cluster_of(a).transport.resolve("nobody", "echo", 1)
            nobody.start_ask("lost", 5, got.append)
            assert isinstance(got[3].error, NodeDown)  # type: ignore[union-attr]
            gate.set()


def test_a_remote_reply_slot_starts_as_a_plain_one() -> None:
    """The reply slot of an ask from another node sets every slot of :class:`Reply`
    itself (no ``Reply.__init__`` call per ask): none is left unset, each starts as a
    plain slot's does."""
    stats = Stats()
    plain = Reply(stats, "actor")
    remote = _RemoteReply(stats, "actor", cast(Connection, None), 7)
    for name in Reply.__slots__:
        assert getattr(remote, name) == getattr(plain, name), name
    assert remote.pending
