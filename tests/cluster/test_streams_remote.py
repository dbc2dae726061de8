"""Streamed replies across nodes (loopback systems in one process): the same behaviour as
on one node, per-stream credit on a shared connection, cancellation, errors, node loss."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

import swimactors
from swimactors import (
    Actor,
    ActorFailed,
    ActorStopped,
    Context,
    NodeDown,
    UndecodableReply,
    Unsendable,
)
from swimactors.actors.protocol import PeerSession
from swimactors.actors.transport import ActorTransport
from swimactors.security import Keyring

from .cluster_helpers import FAST, cluster_of, open_systems, until


@swimactors.message("test.streams.Mark")
class Mark:
    n: int


class Source(Actor):
    """("count", n): n numbers; ("forever",): numbers without end (a checkpoint each);
    ("acked", n): n numbers, each after the one before was acked ("ack");
    ("fail", k): raises at k; ("bad",): an item with no wire form; ("marks", n): n
    ``Mark``s, the one at ``n - 1`` with a str for its int when asked for ("bad marks",
    n).  Keeps its streams' state: produced and closed, by request."""

    def __init__(self) -> None:
        self.produced: dict[str, int] = {}
        self.closed: set[str] = set()
        self.ack = trio.Event()

    def receive(self, msg: Any, ctx: Context) -> Any:
        if msg == "state":
            return [self.produced, sorted(self.closed)]
        if msg == "ack":
            self.ack.set()
            return None
        kind, arg = msg
        if kind.endswith("marks"):
            return self.marks(arg, bad=kind == "bad marks")
        return self.items(kind, arg)

    async def marks(self, count: int, bad: bool) -> AsyncIterator[Mark]:
        for n in range(count):
            yield Mark("x" if bad and n == count - 1 else n)  # type: ignore[arg-type]

    async def items(self, kind: str, arg: Any) -> AsyncIterator[Any]:
        self.produced[kind] = 0
        try:
            i = 0
            while kind not in ("count", "acked") or i < arg:
                if kind == "fail" and i == arg:
                    raise ValueError(f"bad item {i}")
                self.produced[kind] += 1
                yield object() if kind == "bad" else {"i": i, "pad": "x" * 16}
                i += 1
                if kind == "forever":
                    await trio.sleep(0)
                elif kind == "acked":  # the next item once the reader acked this one
                    await self.ack.wait()
                    self.ack = trio.Event()
        finally:
            self.closed.add(kind)


def transport_of(system: swimactors.System) -> ActorTransport:
    transport = cluster_of(system).transport
    assert transport is not None
    return transport


async def test_a_remote_stream_arrives_whole_in_order_and_errors_are_typed() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Source, name="source", public=True)
            ref = await a.wait_for("source", timeout=10)
            items = [item["i"] async for item in ref.stream(["count", 5000], window=64)]
            assert items == list(range(5000))
            got = []
            with pytest.raises(ActorFailed, match="ValueError: bad item 3") as failed:
                async for item in ref.stream(["fail", 3]):
                    got.append(item["i"])
            assert got == [0, 1, 2] and failed.value.traceback == ""
            with pytest.raises(ActorFailed, match="Unsendable"):
                await anext(ref.stream(["bad", None]))
            with pytest.raises(ActorFailed, match="TypeError"):
                await anext(ref.stream("state"))
            with pytest.raises(Unsendable):
                await anext(ref.stream(object()))
            with pytest.raises(ActorStopped):
                await anext(a.resolve("n1", "nobody", 9).stream(["count", 1]))
            counters = transport_of(b).counters
            assert counters["rejected_malformed"] == 0


async def test_a_producers_items_of_one_step_join_the_session_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The items a producer makes in one task step reach the session in one call, and
    go out when the step ends: a producer waiting on its reader has sent what it made."""
    batches: list[int] = []
    send_items = PeerSession.send_items

    def counted(session: PeerSession[Any], sid: int, values: list[bytes]) -> bool:
        batches.append(len(values))
        return send_items(session, sid, values)

    monkeypatch.setattr(PeerSession, "send_items", counted)
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Source, name="source", public=True)
            ref = await a.wait_for("source", timeout=10)
            items = [item["i"] async for item in ref.stream(["count", 64], window=64)]
            assert items == list(range(64)) and batches == [64]
            stream = ref.stream(["acked", 5], window=64)
            for n in range(5):
                assert (await anext(stream))["i"] == n  # never sent: this waits forever
                await ref.tell("ack")
            with pytest.raises(StopAsyncIteration):
                await anext(stream)
            assert batches == [64, 1, 1, 1, 1, 1]


async def test_a_reader_grants_credit_at_once_not_when_its_step_ends() -> None:
    """The reader's grant (at half its window) is written as it is made, so the producer
    makes the next items while the reader goes on with those it holds."""
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Source, name="source", public=True)
            ref = await a.wait_for("source", timeout=10)
            stream = ref.stream(["count", 100], window=8)
            assert (await anext(stream))["i"] == 0
            session = transport_of(a).connections["n1"].session
            await until(lambda: session.consuming[next(iter(session.consuming))] == 0)
            await until(lambda: not session.partial_frame and not session.outgoing)
            for n in range(1, 4):  # items at hand: no checkpoint, the step goes on
                assert (await anext(stream))["i"] == n
            assert session.consuming[next(iter(session.consuming))] == 4  # granted
            assert not session.outgoing  # and already written
            assert [item["i"] async for item in stream] == list(range(4, 100))


async def test_an_item_that_does_not_decode_ends_the_stream_after_the_items_before_it() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Source, name="source", public=True)
            ref = await a.wait_for("source", timeout=10)
            marks = [mark async for mark in ref.stream(["marks", 3000], window=512)]
            assert marks == [Mark(n) for n in range(3000)]
            got = []
            with pytest.raises(UndecodableReply):
                async for mark in ref.stream(["bad marks", 6]):
                    got.append(mark)
            assert got == [Mark(n) for n in range(5)]
            assert transport_of(a).counters["undecodable_messages"] == 1


async def test_a_slow_stream_reader_never_stalls_other_traffic_on_the_connection() -> None:
    """One stream is not read at all: its producer stops at the window, while another
    stream and asks on the same connection go on."""
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Source, name="source", public=True)
            ref = await a.wait_for("source", timeout=10)
            stalled = ref.stream(["forever", None], window=16)
            assert (await anext(stalled))["i"] == 0
            await trio.sleep(0.3)
            produced, _closed = await ref.ask("state")
            assert 16 <= produced["forever"] <= 17  # the window (+ the one being sent)
            items = [item["i"] async for item in ref.stream(["count", 2000], window=16)]
            assert items == list(range(2000))
            for _ in range(100):
                await ref.ask("state")
            assert len(transport_of(a).connections) == 1
            await stalled.aclose()


async def test_leaving_the_loop_cancels_the_remote_producer() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Source, name="source", public=True)
            ref = await a.wait_for("source", timeout=10)
            async for item in ref.stream(["forever", None], window=8):
                if item["i"] == 50:
                    break

            async def closed() -> bool:
                return "forever" in (await ref.ask("state"))[1]

            with trio.fail_after(5):
                while not await closed():
                    await trio.sleep(0.01)
            produced, _ = await ref.ask("state")
            assert produced["forever"] <= 51 + 8
            session = transport_of(b).connections["n0"].session
            assert not session.producing
            assert not transport_of(a).connections["n1"].session.consuming


async def test_streams_cross_a_keyed_connection() -> None:
    with trio.fail_after(30):
        keyed = FAST.replace(keyring=Keyring(b"K" * 32))
        async with open_systems(2, config=keyed) as (a, b):
            await b.spawn(Source, name="source", public=True)
            ref = await a.wait_for("source", timeout=10)
            items = [item["i"] async for item in ref.stream(["count", 300], window=8)]
            assert items == list(range(300))


async def test_a_stream_fails_with_node_down_when_the_producers_node_goes() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            source = Source()
            await b.spawn(source, name="source", public=True)
            ref = await a.wait_for("source", timeout=10)
            stream = ref.stream(["forever", None], window=8)
            assert (await anext(stream))["i"] == 0
            transport_of(a).node_down("n1", "DOWN")
            with pytest.raises(NodeDown):
                async for _ in stream:
                    pass
            await until(lambda: "forever" in source.closed)  # its connection closed too

            # the other way: the consumer's node is lost, the producer is cancelled
            source.closed.clear()
            stream = ref.stream(["forever", None], window=8)
            await anext(stream)
            transport_of(b).node_down("n0", "DOWN")
            await until(lambda: "forever" in source.closed)
            with pytest.raises(NodeDown):
                async for _ in stream:
                    pass
