"""Remote actor speed over loopback against raw trio TCP floors measured in the same run.

The far side always runs in a second process (``python -m benchmarks.bench_remote serve
...``), so both sides have their own interpreter as on two machines.  Floors: a raw trio
TCP echo of the very frame an ask sends (4-byte length prefix + CBOR), and the same echo
streaming the frame a lone tell sends, 64 frames per ``send_all`` (what batching a burst
can reach) and one per ``send_all`` (swimactors sends a burst of tells to one actor as
one frame, so it puts fewer bytes on the wire per message than these floors).  The same
figures are taken with the cluster key (sealed connections, :mod:`swimactors.actors.secure`)
against the same floors and against the plaintext run.  Floor and swimactors runs
alternate, ``PAIRS`` times; rows give medians and the median of the per-pair ratios.  A
streamed reply's items per second are compared with the remote tell rate of the same pair
(target: half of it).  The "list field" rows tell a message with a list field
(``Listed(1, [1, 2, 3, 4])``) against the raw stream of its own lone tell's frame and
against the ``Hit`` tell of the same pair.  The ask rows ask an actor whose ``async def
receive`` can await (through the actor's task); the "without await" rows one whose
receive has no await, which an ask finding it idle has answered in the task that read it.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

import swimactors
from benchmarks.serving import served_port
from swimactors import Actor, Context, wire
from swimactors.membership import Config
from swimactors.security import Keyring

Row = dict[str, Any]

CONFIG = Config.local()
KEYED = CONFIG.replace(keyring=Keyring(b"k" * 32))
PAIRS = 3
FLOORS = {
    "floor p50": "raw trio echo of the same frame",
    "floor p99": "raw trio echo of the same frame",
    "batched": "raw trio stream of a lone tell's frame, 64 frames a send_all",
    "one frame": "raw trio stream of a lone tell's frame, one send_all a frame",
    "ask p50": "the plaintext ask, same pair",
    "tell": "the plaintext remote tell of the same message, one sender, same pair",
    "listed batched": "raw trio stream of a lone tell's frame of Listed, 64 frames a send_all",
    "hit tell": "the plaintext remote tell of Hit(1), one sender, same pair",
}


@swimactors.message("bench.Hit")
class Hit:
    n: int = 0


@swimactors.message("bench.Listed")
class Listed:
    """A message with a list field (users' messages often nest one): ``Listed(1, [1, 2,
    3, 4])`` is what the "list field" rows tell."""

    n: int
    items: list[int]


LISTED = Listed(1, [1, 2, 3, 4])


class Echo(Actor):
    """An ``async def receive`` that can await (on a branch the benchmark never takes), so
    each ask goes through the actor's own task."""

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if msg is None:
            await trio.lowlevel.checkpoint()
        return msg


class InstantEcho(Actor):
    """An ``async def receive`` with no await: it cannot wait, so an ask that finds it
    idle is answered in the task that read it."""

    async def receive(self, msg: Any, ctx: Context) -> Any:
        return msg


class Items(Actor):
    """Answers ``["items", n]`` with a stream of n ``Hit(1)``: the items a tell run sends."""

    def receive(self, msg: Any, ctx: Context) -> Any:
        return self._items(msg[1])

    async def _items(self, count: int) -> AsyncIterator[Hit]:
        item = Hit(1)
        for _ in range(count):
            yield item


class Count(Actor):
    def __init__(self) -> None:
        self.count = 0

    def receive(self, msg: Any, ctx: Context) -> Any:
        if isinstance(msg, Hit | Listed):
            self.count += 1
            return None
        return self.count


# -- the far side (a child process) ------------------------------------------------------


async def _serve_raw() -> None:
    """Echo every frame back (all frames that arrived in one read, in one write)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(f"port {listeners[0].socket.getsockname()[1]}", flush=True)

    async def handle(stream: trio.SocketStream) -> None:
        decoder = wire.FrameDecoder()
        while chunk := await stream.receive_some(65536):
            out = bytearray()
            for frame in decoder.feed(chunk):
                out += wire.encode_frame(frame)
            await stream.send_all(out)

    await trio.serve_listeners(handle, listeners)


async def _serve_system(config: Config) -> None:
    async with swimactors.open_system("far", bind="127.0.0.1:0", config=config) as system:
        await system.spawn(Echo, name="echo", public=True)
        await system.spawn(InstantEcho, name="instant", public=True)
        await system.spawn(Items, name="items", public=True)
        # room for every tell of a run: this measures the transport, and requests for a
        # full mailbox are held back only up to half the window, then dropped (docs/guide.md)
        await system.spawn(Count, name="count", public=True, mailbox_size=1 << 18)
        assert system.cluster is not None
        _host, port = system.cluster.node.address
        print(f"port {port}", flush=True)
        await trio.sleep_forever()


# -- measurements ------------------------------------------------------------------------


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def _raw_round_trips(port: int, frame: bytes, count: int) -> list[float]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        decoder = wire.FrameDecoder()
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            await stream.send_all(frame)
            while not decoder.feed(await stream.receive_some(65536)):
                pass
            samples.append(time.perf_counter() - start)
        return samples


async def _raw_stream_rate(port: int, frame: bytes, count: int, per_write: int) -> float:
    """Frames per second through the raw echo, ``per_write`` frames per ``send_all``."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        decoder = wire.FrameDecoder()
        batch = frame * per_write
        count -= count % per_write
        start = time.perf_counter()

        async def read_back() -> None:
            received = 0
            while received < count:
                received += len(decoder.feed(await stream.receive_some(65536)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_back)
            for _ in range(count // per_write):
                await stream.send_all(batch)
        return count / (time.perf_counter() - start)


@asynccontextmanager
async def _client(port: int, config: Config = CONFIG) -> AsyncIterator[swimactors.System]:
    async with swimactors.open_system(
        "near", bind="127.0.0.1:0", seeds=[f"127.0.0.1:{port}"], config=config
    ) as system:
        await system.wait_for("echo", timeout=20)
        await system.wait_for("instant", timeout=20)
        await system.wait_for("count", timeout=20)
        await system.wait_for("items", timeout=20)
        yield system


async def _ask_round_trips(
    system: swimactors.System, count: int, name: str = "echo"
) -> list[float]:
    ref = await system.wait_for(name)
    msg = Hit(1)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await ref.ask(msg)
        samples.append(time.perf_counter() - start)
    return samples


async def _tell_rate(system: swimactors.System, count: int, msg: Any = None) -> float:
    """Tells per second of ``msg`` (``Hit(1)`` by default) from one sender."""
    ref = await system.wait_for("count")
    before = await ref.ask("count?")
    msg = Hit(1) if msg is None else msg
    start = time.perf_counter()
    for _ in range(count):
        await ref.tell(msg)
    total = await ref.ask("count?", timeout=60)
    elapsed = time.perf_counter() - start
    assert total - before == count, (total, before)
    return count / elapsed


async def _stream_rate(system: swimactors.System, count: int) -> float:
    """Items per second of one streamed reply of ``count`` items, read by one task."""
    ref = await system.wait_for("items")
    received = 0
    start = time.perf_counter()
    async for _item in ref.stream(["items", count]):
        received += 1
    elapsed = time.perf_counter() - start
    assert received == count
    return count / elapsed


async def _concurrent_asks(system: swimactors.System, count: int) -> tuple[float, list[float]]:
    ref = await system.wait_for("echo")
    samples: list[float] = []

    async def one(n: int) -> None:
        begin = time.perf_counter()
        assert await ref.ask(Hit(n), timeout=30) == Hit(n)
        samples.append(time.perf_counter() - begin)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for n in range(count):
            nursery.start_soon(one, n)
    elapsed = time.perf_counter() - start
    assert len(samples) == count
    return count / elapsed, samples


def _frames() -> tuple[bytes, bytes, bytes]:
    """The exact bytes an ask and a tell of ``Hit(1)`` to "echo"/"count" put on the wire,
    and a tell of :data:`LISTED` to "count"."""
    from swimactors.actors.protocol import Kind, encode_value

    ask = wire.encode_frame(wire.dumps([Kind.ASK, 1, "echo", 1, None, encode_value(Hit(1))]))
    tell = wire.encode_frame(wire.dumps([Kind.TELL, "count", 2, None, encode_value(Hit(1))]))
    listed = wire.encode_frame(wire.dumps([Kind.TELL, "count", 2, None, encode_value(LISTED)]))
    return ask, tell, listed


async def _pair(
    raw_port: int,
    systems: tuple[swimactors.System, swimactors.System],
    frames: tuple[bytes, bytes, bytes],
    sizes: tuple[int, int],
) -> dict[str, Any]:
    """One floor run, one plaintext and one keyed swimactors run, back to back."""
    (ask_frame, tell_frame, listed_frame), (trips, tells) = frames, sizes
    floor = await _raw_round_trips(raw_port, ask_frame, trips)
    one_frame = await _raw_stream_rate(raw_port, tell_frame, tells // 4, 1)
    batched = await _raw_stream_rate(raw_port, tell_frame, tells, 64)
    figures = {
        "floor p50": statistics.median(floor) * 1e6,
        "floor p99": _percentile(floor, 0.99) * 1e6,
        "one frame": one_frame,
        "batched": batched,
        "listed batched": await _raw_stream_rate(raw_port, listed_frame, tells, 64),
    }
    for key, system in zip(("", "keyed "), systems, strict=True):
        asks = await _ask_round_trips(system, trips)
        figures[f"{key}ask p50"] = statistics.median(asks) * 1e6
        figures[f"{key}ask p99"] = _percentile(asks, 0.99) * 1e6
        figures[f"{key}tell"] = await _tell_rate(system, tells)
    instant = await _ask_round_trips(systems[0], trips, "instant")
    figures["instant p50"] = statistics.median(instant) * 1e6
    figures["instant p99"] = _percentile(instant, 0.99) * 1e6
    figures["stream"] = await _stream_rate(systems[0], tells)
    figures["listed tell"] = await _tell_rate(systems[0], tells, LISTED)
    figures["hit tell"] = figures["tell"]
    return figures


async def _measure(quick: bool) -> list[Row]:
    trips = 500 if quick else 3000
    tells = 20_000 if quick else 200_000
    concurrent = 1000
    frames = _frames()
    async with (
        served_port("benchmarks.bench_remote", "serve", "raw") as raw_port,
        served_port("benchmarks.bench_remote", "serve", "system") as port,
        served_port("benchmarks.bench_remote", "serve", "keyed") as keyed_port,
        _client(port) as system,
        _client(keyed_port, KEYED) as keyed,
    ):
        await _raw_round_trips(raw_port, frames[0], 200)  # warm up
        for warm in (system, keyed):
            await _ask_round_trips(warm, 200)  # warm up: connection, caches
        pairs = [
            await _pair(raw_port, (system, keyed), frames, (trips, tells)) for _ in range(PAIRS)
        ]
        burst_rate, burst = await _concurrent_asks(system, concurrent)
    ask, tell = "remote ask round trip, async receive", "remote tell, one sender"
    rows = [
        _paired(pairs, ask, "p50", "ask p50", "floor p50"),
        _paired(pairs, ask, "p99", "ask p99", "floor p99"),
        _paired(pairs, tell, "vs batched raw floor", "tell", "batched"),
        _paired(pairs, tell, "vs one frame a write", "tell", "one frame"),
        _paired(pairs, f"{ask}, keyed", "p50", "keyed ask p50", "floor p50"),
        _paired(pairs, f"{ask}, keyed", "p99", "keyed ask p99", "floor p99"),
        _paired(pairs, f"{ask}, keyed", "p50 vs plaintext", "keyed ask p50", "ask p50"),
        _paired(pairs, f"{tell}, keyed", "vs batched raw floor", "keyed tell", "batched"),
        _paired(pairs, f"{tell}, keyed", "vs plaintext", "keyed tell", "tell"),
        _paired(pairs, "remote stream, one reader", "items vs remote tell", "stream", "tell"),
        _paired(
            pairs, f"{tell}, a list field", "vs batched raw floor", "listed tell", "listed batched"
        ),
        _paired(pairs, f"{tell}, a list field", "vs the Hit tell", "listed tell", "hit tell"),
        _paired(pairs, f"{ask} without await", "p50", "instant p50", "floor p50"),
        _paired(pairs, f"{ask} without await", "p99", "instant p99", "floor p99"),
    ]
    rows[6]["note"] += "; keyed - plaintext p50: " + ", ".join(
        f"{p['keyed ask p50'] - p['ask p50']:+.1f} µs" for p in pairs
    )
    rows.append(_row(f"{concurrent} concurrent asks", "throughput", burst_rate, "asks/s", None))
    rows.append(
        _row(f"{concurrent} concurrent asks", "p99", _percentile(burst, 0.99) * 1e3, "ms", None)
    )
    return rows


def _paired(pairs: list[dict[str, Any]], benchmark: str, metric: str, ours: str, floor: str) -> Row:
    """Medians over the pairs and the median of the per-pair ratios."""
    ratios = [p[ours] / p[floor] for p in pairs]
    unit = "µs" if "p50" in ours or "p99" in ours else "items/s" if ours == "stream" else "msg/s"
    row = _row(
        benchmark,
        metric,
        statistics.median(p[ours] for p in pairs),
        unit,
        statistics.median(p[floor] for p in pairs),
    )
    row["ratio"] = statistics.median(ratios)
    row["note"] = f"{FLOORS[floor]}; {len(pairs)} pairs, ratios " + ", ".join(
        f"{r:.2f}" for r in ratios
    )
    return row


def _row(
    benchmark: str, metric: str, value: float, unit: str, floor: float | None, **extra: Any
) -> Row:
    row: Row = {"benchmark": benchmark, "metric": metric, "value": value, "unit": unit}
    if floor is not None:
        row["floor"] = floor
        row["ratio"] = value / floor
    row.update(extra)
    return row


def run(quick: bool) -> list[Row]:
    return trio.run(_measure, quick)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        if sys.argv[2] == "raw":
            trio.run(_serve_raw)
        else:
            trio.run(_serve_system, KEYED if sys.argv[2] == "keyed" else CONFIG)
    else:
        for result in run(quick="--quick" in sys.argv):
            print(result)
