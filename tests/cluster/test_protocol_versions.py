"""Actor protocol versions on real connections: code from before versions on either end,
and a peer with no version in common (docs/protocol.md, "Actor protocol versions")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import pytest
import trio

import swimactors
from swimactors import ActorRef, NodeDown, TransportConfig, wire
from swimactors.actors import protocol
from swimactors.actors.aio_peers import AsyncPeers
from swimactors.actors.protocol import Kind
from swimactors.membership.messages import PROTOCOL_VERSION
from swimactors.membership.node import open_node
from tests.network.test_node import FAST, wait_for

from .cluster_helpers import cluster_of, open_systems, until


@swimactors.message("test.versions.Num")
class Num:
    n: int


class Frames:
    """The frames arriving on a raw stream, parsed as they complete."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""

    async def next(self) -> list[Any] | None:
        """The next frame's items; None once the peer has closed the stream."""
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) >= 4 + size:
                    frame, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
                    items: list[Any] = wire.loads(frame)
                    return items
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            self.buffer += chunk


def old_hello(node: str) -> bytes:
    """The HELLO of code from before versions: four items."""
    return wire.encode_frame(wire.dumps([Kind.HELLO, node, 1, 64]))


async def test_a_dialler_without_versions_is_answered_in_kind_and_sent_no_run_frames() -> None:
    """Code from before versions (a RUN frame breaks most of it) dials a node: the node's
    tells to it go in TELL frames; before versions they went in RUN frames."""
    with trio.fail_after(30):
        async with open_systems(1) as (a,):
            port = a.actor_address("n0")
            assert port is not None
            stream = await trio.open_tcp_stream(*port)
            async with stream:
                await stream.send_all(old_hello("old"))
                frames = Frames(stream)
                incarnation = cluster_of(a).transport.incarnation
                assert await frames.next() == [Kind.HELLO, "n0", incarnation, 8192]
                ref = cluster_of(a).transport.resolve("old", "counter", 1)
                for n in range(20):
                    await ref.tell(Num(n))
                told: list[object] = []
                while len(told) < 20:
                    frame = await frames.next()
                    assert frame is not None and frame[0] == Kind.TELL, frame
                    told += [protocol.decode_value(v) for v in frame[4:]]
                assert told == [Num(n) for n in range(20)]


async def test_a_node_answered_without_versions_dials_again_at_once_with_what_it_sent() -> None:
    """A peer on code from before versions answers at once with its four-item HELLO and
    drops the connection on the versioned one, reading nothing after it: the node dials
    it again at once without versions and sends again what it had sent or queued on the
    first connection (its RUN frames as TELLs), so the first tells and ask arrive, once
    and in order.  Before, the first connection was lost: its ask failed with NodeDown
    and its tells vanished."""
    hellos: list[list[Any]] = []
    received: list[Any] = []

    async def old_node(stream: trio.abc.Stream) -> None:
        async with stream:
            await stream.send_all(old_hello("old"))
            frames = Frames(stream)
            hello = await frames.next()
            assert hello is not None
            hellos.append(hello)
            if len(hello) != 4:
                return  # as that code does: a malformed frame drops the connection
            while (frame := await frames.next()) is not None:
                assert frame[0] in (Kind.TELL, Kind.ASK), frame  # no RUN: it breaks that code
                if frame[0] == Kind.TELL:
                    received.extend(protocol.decode_value(v) for v in frame[4:])
                else:
                    received.append(protocol.decode_value(frame[5]))
                    await stream.send_all(protocol.reply_frame(frame[1], "answered"))

    with trio.fail_after(30):
        async with open_systems(1) as (a,), trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, old_node, 0, host="127.0.0.1"))
            old_port = listeners[0].socket.getsockname()[1]
            cluster = cluster_of(a)
            known = cluster.actor_address
            cluster.actor_address = lambda node: (  # type: ignore[method-assign]
                ("127.0.0.1", old_port) if node == "old" else known(node)
            )
            ref = cluster.transport.resolve("old", "echo", 1)
            for n in range(5):  # RUN frames on a versioned connection
                await ref.tell(Num(n))
            assert await ref.ask("first", timeout=5) == "answered"
            await ref.tell(Num(5))
            assert await ref.ask("second", timeout=5) == "answered"
            assert received == [*map(Num, range(5)), "first", Num(5), "second"]
            assert [len(h) for h in hellos] == [6, 4]
            counters = cluster.transport.counters
            assert counters["rejected_unversioned"] == 1 and counters["rejected_malformed"] == 0
            assert counters["undeliverable"] == 0
            nursery.cancel_scope.cancel()


async def test_a_peer_with_no_version_in_common_is_told_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A peer that speaks only later versions is refused with a reason, counted each time
    and logged once; it gets this node's HELLO first, so that it can say why too."""
    caplog.set_level(logging.WARNING, "swimactors.actors.transport")
    future = [Kind.HELLO, "future", 1, 64, protocol.VERSION + 3, protocol.VERSION + 1]
    with trio.fail_after(30):
        async with open_systems(1) as (a,):
            port = a.actor_address("n0")
            assert port is not None
            for _ in range(3):
                stream = await trio.open_tcp_stream(*port)
                async with stream:
                    await stream.send_all(wire.encode_frame(wire.dumps(future)))
                    frames = Frames(stream)
                    answer = await frames.next()
                    assert answer is not None and answer[4:] == [
                        protocol.VERSION,
                        protocol.OLDEST_VERSION,
                    ]
                    assert await frames.next() is None  # then closed
            counters = cluster_of(a).transport.counters
            await until(lambda: counters["rejected_version"] == 3)
            logged = [r.getMessage() for r in caplog.records if "version" in r.getMessage()]
            assert len(logged) == 1
            assert "'future' speaks actor protocol versions 3 to 5, this node 1 to 2" in logged[0]


async def test_membership_packets_of_another_version_are_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Membership packets carry their version; one of another version (a node on other
    code) is dropped as such, not as malformed, and the operator is told once per peer."""
    caplog.set_level(logging.WARNING, "swimactors.membership")
    with trio.fail_after(20):
        async with open_node(name="a", bind="127.0.0.1:0", config=FAST) as node:
            later = wire.dumps([PROTOCOL_VERSION + 1, FAST.label, "later", []])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for _ in range(3):
                    sock.sendto(later, node.address)
                await wait_for(lambda: node.counters["rejected_version"] == 3, 5)
            assert node.counters["rejected_malformed"] == 0
    logged = [r.getMessage() for r in caplog.records if "protocol version" in r.getMessage()]
    assert len(logged) == 1 and "this node speaks version 1" in logged[0]


@contextlib.asynccontextmanager
async def asyncio_peers(
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    config: TransportConfig,
) -> AsyncIterator[AsyncPeers]:
    """Node a's asyncio connections, every node located at one local server that runs
    ``serve`` on each connection."""
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def locate(node: str) -> tuple[str, int]:
        return ("127.0.0.1", port)

    peers = AsyncPeers(asyncio.get_running_loop(), "a", 1, config, locate, lambda *args: None)
    try:
        yield peers
    finally:
        peers.close()
        server.close()


def test_an_asyncio_client_answered_without_versions_dials_again_at_once() -> None:
    """The asyncio front's own connections follow the rule too: refused by a node on
    code from before versions, dialled again at once without them, with the ask it had
    sent (before: that ask failed with NodeDown, and earlier still every dial failed)."""

    async def main() -> list[int]:
        hellos: list[int] = []

        async def old_node(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(old_hello("old"))
            try:
                while True:
                    size = struct.unpack(">I", await reader.readexactly(4))[0]
                    frame = wire.loads(await reader.readexactly(size))
                    if frame[0] == Kind.HELLO:
                        hellos.append(len(frame))
                        if len(frame) != 4:
                            break  # malformed to that code: dropped
                    elif frame[0] == Kind.ASK:
                        writer.write(protocol.reply_frame(frame[1], "answered"))
            except asyncio.IncompleteReadError:
                pass
            writer.close()

        async with asyncio_peers(old_node, TransportConfig()) as peers:
            address = protocol.address("echo", 1, None)
            ref = ActorRef("old", "echo", 1, None)  # type: ignore[arg-type]  # (in errors only)
            link = await peers.link("old")
            assert link is not None
            assert await link.ask(address, "first", ref, 5.0) == "answered"
            assert await peers.link("old") is link
            assert await link.ask(address, "second", ref, 5.0) == "answered"
            assert peers.counters["rejected_unversioned"] == 1 and peers.counters["dials"] == 2
        return hellos

    assert asyncio.run(main()) == [6, 4]


def test_an_asyncio_connection_whose_peer_never_says_hello_closes() -> None:
    """What an asyncio connection sends is kept until the peer's HELLO (for a redial);
    a peer that reads and never answers does not keep it growing: past the handshake
    timeout the connection closes and its asks fail with NodeDown."""

    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(65536):
                pass
            writer.close()

        async with asyncio_peers(silent, TransportConfig(handshake_timeout=0.2)) as peers:
            ref = ActorRef("silent", "echo", 1, None)  # type: ignore[arg-type]  # (in errors only)
            link = await peers.link("silent")
            assert link is not None
            with pytest.raises(NodeDown, match="no HELLO"):
                await link.ask(protocol.address("echo", 1, None), "first", ref, 30.0)

    asyncio.run(main())
