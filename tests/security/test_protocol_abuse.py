"""Protocol abuse on the actor port by a stranger with no key (a plaintext cluster): system
requests with values past what the protocol can carry are refused, so no forged request
breaks a node for good; made-up names bring no fresh spawn quota, a stranger's remote
watches end with its connection, and node names follow membership's rule."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

import swimactors
from swimactors import System, wire
from swimactors.actors import protocol
from swimactors.actors.transport import SYSTEM_PATH, TransportConfig
from swimactors.cluster.grains import MAX_CLOCK, Grain, GrainProbe
from swimactors.cluster.groups import TopicDelivery
from swimactors.cluster.system import SpawnRequest
from swimactors.placement import Placement
from tests.cluster.cluster_helpers import cluster_of, open_systems, until
from tests.security.test_actor_port import (
    actor_port,
    closed_by_peer,
    counter,
    hello,
    raw_connection,
)

pytestmark = pytest.mark.network


class Counter(Grain):
    async def on_activate(self) -> None:
        self.state = self.state or 0

    async def receive(self, msg: Any, ctx: Any) -> Any:
        self.state += 1
        return self.state


async def ask_system(system: System, request: object) -> bytes:
    """A stranger's one ASK to ``system`` itself; the raw reply frame."""
    stream = await raw_connection(actor_port(system))
    where = protocol.address(SYSTEM_PATH, 0, None)
    await stream.send_all(
        hello("stranger") + protocol.ask_frame(1, where, protocol.value_bytes(request))
    )
    reply = b""
    with trio.move_on_after(5):
        while len(reply) < 4 or len(reply) < 4 + int.from_bytes(reply[:4], "big"):
            reply += await stream.receive_some(65536)
    await stream.aclose()
    return reply


async def test_a_grain_probe_past_the_clock_limit_is_refused() -> None:
    """A probe with clock 2**64-1 pushed the grains' Lamport clock past what the wire
    carries: every later probe or claim from that node went out as a bignum its peers
    refuse, closing the connection, so activations went ahead without an answer (two
    activations of one grain), for good."""
    with trio.fail_after(60):
        async with open_systems(2) as (a, b):
            for system in (a, b):
                system.register_grain("counter", Counter, placement=Placement.LOCAL)
            for clock in (2**64 - 1, MAX_CLOCK + 1):
                await ask_system(b, GrainProbe("counter", "x", clock, "stranger", 1))
            assert b.grains.clock <= MAX_CLOCK
            await ask_system(b, GrainProbe("counter", "x", MAX_CLOCK, "stranger", 1))
            assert b.grains.clock == MAX_CLOCK  # at the limit it stays there
            # b activates first, then a asks: a's probe finds b's activation
            answers = [await s.grain("counter", "shared").ask("add") for s in (b, a)]
            held = [s.name for s in (a, b) for (_, i) in s.grains.local if i == "shared"]
            assert held == ["n1"] and answers == [1, 2]
            assert cluster_of(a).transport.counters["rejected_malformed"] == 0


class Echo(swimactors.Actor):
    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return msg


async def test_strangers_share_one_spawn_quota_per_address() -> None:
    """Remote spawns count against the peer's name, and for a name membership does not
    know against its source address (before: each made-up name brought a fresh quota, so
    a stranger spawned without limit by changing names)."""
    quota = TransportConfig(spawn_burst=3, spawn_rate=0.01)
    with trio.fail_after(30):
        async with open_systems(2, transport=quota) as (a, b):
            b.register_spawnable("echo", Echo)
            where = protocol.address(SYSTEM_PATH, 0, None)
            spawn = protocol.value_bytes(SpawnRequest("echo", []))
            for n in range(3):
                stream = await raw_connection(actor_port(b))
                asks = b"".join(protocol.ask_frame(c, where, spawn) for c in (1, 2))
                await stream.send_all(hello(f"stranger{n}") + asks)
            await until(lambda: counter(b, "refused_spawn")() == 3)
            assert (await a.spawn_on("n1", "echo")).node == "n1"  # a member's own quota


async def test_a_stranger_s_watches_end_with_its_connection() -> None:
    """Before: a WATCH from a name membership does not know stayed registered for good,
    one more per made-up name (memory grew with every connection)."""
    with trio.fail_after(30):
        async with open_systems(1) as (a,):
            echo = await a.spawn(Echo(), name="echo")
            transport = cluster_of(a).transport
            for n in range(20):
                stream = await raw_connection(actor_port(a))
                watch = protocol.encode(protocol.Watch(echo.path, echo.uid))
                await stream.send_all(hello(f"watcher{n}") + watch)
                await until(lambda n=n: f"watcher{n}" in transport._proxies)
                await stream.aclose()
            await until(lambda: not transport._proxies)


@pytest.mark.parametrize("name", ["evil\x1b[2J", "two\nlines", "", "n" * 129])
def test_a_hello_or_sender_naming_an_impossible_node_is_refused(name: str) -> None:
    """Node names on the actor port follow membership's rule (1..128 bytes, printable):
    before, a HELLO could carry terminal escapes and newlines into the node's logs."""
    with pytest.raises(wire.WireError):
        protocol.parse(wire.dumps([protocol.Kind.HELLO, name, 1, 64]))
    sender = [name, "/user/x", 1]
    tell = [protocol.Kind.TELL, "/user/y", 1, sender, protocol.encode_value("hi")]
    with pytest.raises(wire.WireError):
        protocol.parse(wire.dumps(tell))


async def test_an_unprintable_hello_is_dropped_and_counted() -> None:
    with trio.fail_after(30):
        async with open_systems(1) as (a,):
            stream = await raw_connection(actor_port(a))
            await stream.send_all(hello("evil\x1b[2J"))
            assert await closed_by_peer(stream)
            assert counter(a, "rejected_malformed")() == 1


@swimactors.message("test.abuse.Big")
class Big:
    n: int
    extra: list[Any] = []


@swimactors.message("test.abuse.Small")
class Small:
    n: int


@swimactors.message("test.abuse.Pair")
class Pair:
    both: tuple[int, int]


@swimactors.message("test.abuse.Two")
class Two:
    label: int
    n: int


async def read_frames(stream: trio.SocketStream, count: int) -> list[protocol.Frame]:
    """The next ``count`` frames the peer sends after its HELLO (and credit)."""
    decoder, frames = wire.FrameDecoder(), []
    with trio.fail_after(10):
        while len(frames) < count:
            for raw in decoder.feed(await stream.receive_some(65536)):
                frame = protocol.parse(raw)
                if not isinstance(frame, protocol.Hello | protocol.Credit):
                    frames.append(frame)
    return frames


async def test_integers_past_64_bits_are_refused_before_anything_is_sent() -> None:
    """A @message field (or a system request's argument) holding an integer past 64 bits
    went out as a CBOR bignum, which the peer refuses: it dropped the connection and
    every ask on it.  Now every send path raises Unsendable first."""
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            b.register_spawnable("echo", Echo)
            echo = await a.spawn_on("n1", "echo")
            for first in (Small(1), Two(1, 2)):  # their tells now go in RUN frames
                assert await echo.ask(first) == first
            values = (Small(2**64), Pair((1, 2**64)), Two(1, -(2**64) - 1), Big(2**64))
            for value in (*values, Big(1, [2**70]), {"k": -(2**64) - 1}):
                with pytest.raises(swimactors.Unsendable, match="64-bit"):
                    await echo.ask(value)
                with pytest.raises(swimactors.Unsendable, match="64-bit"):
                    echo.tell(value)
            with pytest.raises(swimactors.Unsendable, match="64-bit"):
                await cluster_of(a).transport.request("n1", SpawnRequest("echo", [2**64]), 5)
            assert await echo.ask(Big(2**64 - 1)) == Big(2**64 - 1)
            assert await echo.ask(Big(1, [(2, "tuples go as arrays")])) == Big(
                1, [[2, "tuples go as arrays"]]
            )
            # what the checks let through: tuples (as arrays), also inside a pub/sub delivery
            delivery = TopicDelivery("t", protocol.encode_value(Pair((1, 2))), ["echo#1"])
            back = protocol.decode_value(wire.loads(protocol.value_bytes(delivery)))
            assert protocol.decode_value(back.value) == Pair((1, 2))
            assert cluster_of(b).transport.counters["rejected_malformed"] == 0


async def test_a_bignum_value_fails_alone_and_the_connection_lives() -> None:
    """A peer's frame with a bignum (or any tag) inside a value was refused whole, and the
    connection with it; now that value alone is undecodable (an ask gets an error
    reply) and the frames after it are served."""
    with trio.fail_after(30):
        async with open_systems(1) as (a,):
            echo = await a.spawn(Echo(), name="echo")
            where = protocol.address(echo.path, echo.uid, None)
            stream = await raw_connection(actor_port(a))
            bignum = wire.dumps([0, 2**70])  # a plain value, as a careless encoder sends it
            regex = bytes.fromhex("8200d823627878")  # [0, tag 35 "xx"]: tags are not resolved
            run = protocol.TellRun(echo.path, echo.uid, None, "test.abuse.Small", 1, [2**70, 5])
            await stream.send_all(
                hello("stranger")
                + protocol.encode(run)  # a RUN of two: the first fails, the second arrives
                + protocol.ask_frame(1, where, bignum)
                + protocol.ask_frame(2, where, regex)
                + protocol.ask_frame(3, where, protocol.value_bytes("still here"))
            )
            error_1, error_2, reply = await read_frames(stream, 3)
            assert isinstance(error_1, protocol.ErrorReply) and error_1.corr == 1
            assert isinstance(error_2, protocol.ErrorReply) and error_2.corr == 2
            assert isinstance(reply, protocol.Reply) and reply.corr == 3
            assert protocol.decode_value(reply.value) == "still here"
            assert counter(a, "undecodable_messages")() == 3
            assert counter(a, "rejected_malformed")() == 0
            # a tag outside any value still breaks the protocol
            await stream.send_all(b"\x00\x00\x00\x03" + bytes.fromhex("81c200"))
            assert await closed_by_peer(stream)
            assert counter(a, "rejected_malformed")() == 1


class Idle(swimactors.Actor):
    async def receive(self, msg: Any, ctx: Any) -> Any:
        return msg


async def test_a_forged_name_winner_with_a_malformed_actor_id_stops_no_node() -> None:
    """A forged registry delta (a lower clock wins) giving n0's public name to member n1
    with the actor id ``/user/x#²``: ``"²".isdigit()`` holds but ``int("²")`` raises, so
    n0's name task raised ValueError when it lost the name, and n0's system ended.  Now a
    malformed actor id resolves to no ref: the name is lost (plaintext forgery, which the
    key stops), the node lives, and a lookup finds nothing to call."""
    from swimactors.registry import encode as encode_registry
    from swimactors.registry.crdt import Registration, State

    with trio.fail_after(60):
        async with open_systems(2) as (a, b):
            a.spawn_public(Idle, "svc")
            await until(lambda: cluster_of(b).names.registry.lookup("svc") is not None)
            member = cluster_of(a).node.member("n1")
            assert member is not None
            for actor_id in (
                "/user/x#\u00b2",
                "/user/x#" + "9" * 30,
                "/user/x#" + str(2**63),
                "#1",
            ):
                forged = State()
                registration = Registration("svc", "n1", member.incarnation, actor_id, b"", 1, 0)
                forged.add(attrs.evolve(registration, counter=10**6 + len(actor_id)))
                cluster_of(a).names.delegate.notify_message(encode_registry(forged), 1.0)
                await trio.sleep(0.2)
                assert cluster_of(a).names.ref_for(registration) is None
            assert a.lookup("svc") is None
            assert await (await a.spawn(Idle)).ask("still running") == "still running"
