"""The actor port against hostile peers on loopback: the key handshake (plaintext and
wrong-key peers refused, names proven), HELLO impersonation refused by address, caps on
connections, deadlines for the HELLO and for a frame, a peer that does not read dropped,
untrusted mode and spawn quotas, and error replies without tracebacks."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

import pytest
import trio

import swimactors
from swimactors.actors import protocol
from swimactors.actors.secure import secure
from swimactors.actors.transport import TransportConfig
from swimactors.security import Keyring
from tests.cluster.cluster_helpers import FAST, cluster_of, open_systems, until

pytestmark = pytest.mark.network

KEYED = FAST.replace(keyring=Keyring(b"K" * 32))
STRICT = TransportConfig(
    handshake_timeout=0.5,
    frame_timeout=0.5,
    max_connections_per_address=4,
    max_queued_bytes=256 * 1024,
)


class Echo(swimactors.Actor):
    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return msg


def actor_port(system: swimactors.System) -> tuple[str, int]:
    address = cluster_of(system).actor_address(system.name)
    assert address is not None
    return address


def counter(system: swimactors.System, name: str) -> Callable[[], int]:
    return lambda: cluster_of(system).transport.counters[name]


async def raw_connection(address: tuple[str, int], source: str = "127.0.0.1") -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.bind((source, 0))
    await sock.connect(address)
    return trio.SocketStream(sock)


async def closed_by_peer(stream: trio.SocketStream, timeout: float = 5.0) -> bool:
    with trio.move_on_after(timeout):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


def hello(node: str) -> bytes:
    return protocol.encode(protocol.Hello(node, 1, 64))


async def test_keyed_systems_talk_and_strangers_are_refused() -> None:
    with trio.fail_after(30):
        async with open_systems(2, config=KEYED) as (a, b):
            await b.spawn(Echo(), name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            assert await ref.ask("hi") == "hi"
            big = bytes(range(256)) * 800  # 200 KiB: a write of several records each way
            assert await ref.ask(big) == big
            answers: list[object] = []

            async def ask(n: int) -> None:
                answers.append(await ref.ask(["x" * (n % 7) * 1000, n]))

            async with trio.open_nursery() as nursery:  # many frames, sealed both ways
                for n in range(500):
                    nursery.start_soon(ask, n)
            assert sorted(a[1] for a in answers) == list(range(500))  # type: ignore[index]
            # a plaintext peer, and a peer with another key, never get a frame in
            stream = await raw_connection(actor_port(b))
            await stream.send_all(hello("n0"))
            assert await closed_by_peer(stream)
            await until(lambda: counter(b, "rejected_handshake")() >= 1)
            async with open_systems(
                1, config=FAST.replace(keyring=Keyring(b"X" * 32)), transport=STRICT
            ):
                pass
            assert await ref.ask("still") == "still"
            assert counter(b, "rejected_impostor")() == 0


async def test_an_altered_record_breaks_the_connection_and_is_counted() -> None:
    """A key holder's connection whose record was altered in flight (or replayed) is closed
    before any frame in it is read, and counted; the cluster's own traffic goes on."""
    with trio.fail_after(30):
        async with open_systems(2, config=KEYED) as (a, b):
            await b.spawn(Echo(), name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            for alter in (True, False):
                stream = await raw_connection(actor_port(b))
                sealed, peer = await secure(
                    stream, KEYED.keyring, KEYED.label, "n9", initiator=True
                )
                assert peer == b.name
                sealed.seal(hello("n9"))
                record = bytearray(sealed.unsent)
                if alter:
                    record[-1] ^= 1  # a bit of the tag
                    await stream.send_all(record)
                else:  # the HELLO, then the same record again
                    await stream.send_all(record + record)
                assert await closed_by_peer(stream)
            await until(lambda: counter(b, "rejected_records")() == 2)
            assert await ref.ask("still") == "still"


async def test_a_hello_in_another_members_name_from_elsewhere_is_refused() -> None:
    """Without a key, an inbound HELLO must come from the address membership knows for
    that name: 127.0.0.2 cannot speak as n0 (at 127.0.0.1)."""
    with trio.fail_after(30):
        async with open_systems(2, transport=STRICT) as (a, b):
            stream = await raw_connection(actor_port(b), source="127.0.0.2")
            await stream.send_all(hello("n0"))
            assert await closed_by_peer(stream)
            assert counter(b, "rejected_impostor")() == 1
            await b.spawn(Echo(), name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            assert await ref.ask("real n0") == "real n0"


async def test_connections_are_capped_per_address_and_must_say_hello_in_time() -> None:
    with trio.fail_after(30):
        async with open_systems(1, transport=STRICT) as (a,):
            idle = [await raw_connection(actor_port(a)) for _ in range(6)]
            await until(lambda: counter(a, "connections_refused")() == 2)
            results = [await closed_by_peer(s, 3.0) for s in idle]
            assert all(results)  # the refused at once, the silent after the HELLO deadline
            assert counter(a, "frame_timeouts")() == 4
            stream = await raw_connection(actor_port(a))
            await stream.send_all(hello("visitor") + b"\x00\x00\x10\x00" + b"x" * 10)
            assert await closed_by_peer(stream, 3.0)  # a frame that never completes
            assert counter(a, "frame_timeouts")() == 5


async def test_a_peer_that_does_not_read_is_dropped() -> None:
    with trio.fail_after(30):
        async with open_systems(1, transport=STRICT) as (a,):
            echo = await a.spawn(Echo(), name="echo")
            stream = await raw_connection(actor_port(a))
            payload = protocol.value_bytes("x" * 16000)
            where = protocol.address(echo.path, echo.uid, None)
            asks = b"".join(protocol.ask_frame(corr, where, payload) for corr in range(1, 60))
            with contextlib.suppress(trio.BrokenResourceError):  # reset once dropped
                await stream.send_all(hello("reader") + asks)
                for _ in range(40):  # never read the replies
                    with trio.move_on_after(0.05):
                        await stream.send_all(asks)
            await until(lambda: counter(a, "slow_peers_dropped")() == 1)
            assert await closed_by_peer(stream)


async def test_untrusted_mode_refuses_remote_spawn_and_watch() -> None:
    untrusted = TransportConfig(untrusted=True)
    with trio.fail_after(30):
        async with open_systems(2, transport=untrusted) as (a, b):
            b.register_spawnable("echo", Echo)
            with pytest.raises(swimactors.ActorFailed, match="untrusted"):
                await a.spawn_on("n1", "echo")
            await b.spawn(Echo(), name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            assert await ref.ask("tells and asks still work") == "tells and asks still work"
            assert counter(b, "refused_spawn")() == 1
            stream = await raw_connection(actor_port(b))
            await stream.send_all(
                hello("visitor") + protocol.encode(protocol.Watch(ref.path, ref.uid))
            )
            await until(lambda: counter(b, "refused_watch")() == 1)
    with trio.fail_after(30):
        trusted = TransportConfig(untrusted=True, trusted=frozenset({"spawn"}))
        async with open_systems(2, transport=trusted) as (a, b):
            b.register_spawnable("echo", Echo)
            assert (await a.spawn_on("n1", "echo")).node == "n1"


async def test_remote_spawns_have_a_quota_per_peer() -> None:
    quota = TransportConfig(spawn_burst=3, spawn_rate=0.01)
    with trio.fail_after(30):
        async with open_systems(2, transport=quota) as (a, b):
            b.register_spawnable("echo", Echo)
            for _ in range(3):
                await a.spawn_on("n1", "echo")
            with pytest.raises(swimactors.ActorFailed, match="quota"):
                await a.spawn_on("n1", "echo")
            assert counter(b, "refused_spawn")() == 1


async def test_error_replies_carry_tracebacks_only_in_debug_mode() -> None:
    class Failing(swimactors.Actor):
        def receive(self, msg: object, ctx: swimactors.Context) -> object:
            raise KeyError("secret detail stays in the message")

    with trio.fail_after(30):
        async with open_systems(2, transport=TransportConfig(debug=True)) as (a, b):
            await b.spawn(Failing(), name="failing", public=True)
            ref = await a.wait_for("failing", timeout=10)
            with pytest.raises(swimactors.ActorFailed) as failed:
                await ref.ask("boom")
            assert "raise KeyError" in failed.value.traceback


class Collect(swimactors.Actor):
    def __init__(self, got: list[object]) -> None:
        self.got = got

    def receive(self, msg: object, ctx: swimactors.Context) -> None:
        self.got.append(msg)


async def test_tells_made_during_the_key_handshake_wait_for_it() -> None:
    """What tasks queue while a connection's key handshake runs is sealed and sent after
    it, never written on the socket in the clear in the middle of it."""
    got: list[object] = []
    with trio.fail_after(30):
        async with open_systems(2, config=KEYED) as (a, b):
            await b.spawn(Collect(got), name="collect", public=True)
            ref = await a.wait_for("collect", timeout=10)
            for n in range(200):  # the first dials; the rest span the handshake's steps
                await ref.tell(n)
                await trio.lowlevel.checkpoint()
            await until(lambda: len(got) == 200)
            assert got == list(range(200))
            assert counter(b, "rejected_handshake")() == 0


CROWDED = TransportConfig(
    handshake_timeout=30.0,  # the deadline alone would hold every stalled place for 30 s
    max_connections=48,
    max_handshakes=16,
    max_handshakes_per_address=4,
)


@pytest.mark.parametrize("keyed", [True, False], ids=["key handshake", "HELLO"])
async def test_strangers_stalling_before_they_are_proven_cannot_lock_peers_out(
    keyed: bool,
) -> None:
    """64 connections from 8 addresses that start a key handshake (or, without a key,
    never say HELLO) and stall: at most 16 stay (4 per address), the oldest making room
    for each newcomer, and a member's first ask goes through at once.  Without the bound
    the 48 places fill and the member's connection is refused."""
    config = KEYED if keyed else FAST
    with trio.fail_after(30):
        async with open_systems(2, config=config, transport=CROWDED) as (a, b):
            await b.spawn(Echo(), name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            stalled = []
            for n in range(64):
                stream = await raw_connection(actor_port(b), source=f"127.0.0.{2 + n % 8}")
                await stream.send_all(b"\x1d\x01" if keyed else b"")  # a hello's first bytes
                stalled.append(stream)
            await until(
                lambda: counter(b, "accepted")() + counter(b, "connections_refused")() == 64
            )
            assert counter(b, "handshakes_displaced")() == 64 - 16
            assert len(cluster_of(b).transport._newcomers) == 16
            assert counter(b, "connections_refused")() == 0
            with trio.fail_after(2):
                assert await ref.ask("through") == "through"
            # the displaced are the oldest, closed at once; the newest still wait
            assert all([await closed_by_peer(s, 2.0) for s in stalled[: 64 - 16]])
            assert not await closed_by_peer(stalled[-1], 0.1)
            for stream in stalled:
                await stream.aclose()
