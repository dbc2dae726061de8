"""The cost of encryption: sealing primitives, membership and remote actors with and
without a key.

Rows: seal + open of one membership packet (300 and 1,400 bytes) and of one record on an
authenticated actor connection (100 bytes, a lone ask; 16 KiB, a batch of tells), the
connection handshake; a membership cluster on loopback run plaintext and keyed,
interleaved, ``ROUNDS`` times: CPU seconds per node per minute and bytes sent per node per
second; remote ask p50, the CPU both processes spend per ask, and one sender's tell
throughput to a system in another process, over plaintext, keyed and mutual TLS
connections interleaved (``bench_remote``'s measurements), then the ask p50 again with
both systems of each mode in this process (a round trip with no process waking: the
code's own cost).  Medians; plaintext is the floor (remote rows: medians of the per-round
differences and ratios).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import trio

import swimactors
from benchmarks.bench_remote import CONFIG as REMOTE_CONFIG
from benchmarks.bench_remote import Count, Echo, _ask_round_trips, _tell_rate
from benchmarks.serving import served_port
from swimactors.membership import Config
from swimactors.membership.node import Node, open_node
from swimactors.security import Keyring, PacketSealer, StreamHandshake, TlsConfig

Row = dict[str, Any]
KEY = b"k" * 32
ROUNDS = 3
REMOTE_ROUNDS = 7
"""Rounds of the remote rows: each runs the three modes back to back (order rotated), and
the rows give the medians of the per-round differences and ratios against plaintext."""
NODES = 5
FAST = Config.local().replace(probe_interval=0.2, probe_timeout=0.1, gossip_interval=0.05)


def _per_call(function: Any, number: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=5)) / number


def _primitives(quick: bool) -> list[Row]:
    number = 2000 if quick else 20000
    rows: list[Row] = []
    now = time.time()
    for size in (300, 1400):
        sender = PacketSealer(Keyring(KEY), "bench")
        receiver = PacketSealer(Keyring(KEY), "bench")
        data = b"x" * size

        def round_trip(
            data: bytes = data, sender: PacketSealer = sender, receiver: PacketSealer = receiver
        ) -> None:
            receiver.open(sender.seal(data, now), now)

        rows.append(
            {
                "benchmark": "security",
                "metric": f"packet seal+open {size} B",
                "value": _per_call(round_trip, number) * 1e6,
                "unit": "us",
            }
        )
    initiator = StreamHandshake(Keyring(KEY), "bench", "a", initiator=True)
    responder = StreamHandshake(Keyring(KEY), "bench", "b", initiator=False)
    proof_i, proof_r = initiator.on_hello(responder.hello()), responder.on_hello(initiator.hello())
    send, receive = initiator.on_proof(proof_r), responder.on_proof(proof_i)
    records, answers = bytearray(), bytearray()
    for size in (100, 16384):  # a lone ask; a batch of tells

        def record_round_trip(frame: bytes = b"x" * size) -> None:
            send.seal(frame, records)
            receive.open(records, answers)
            records.clear()

        rows.append(
            {
                "benchmark": "security",
                "metric": f"record seal+open {size:,} B",
                "value": _per_call(record_round_trip, number // (1 + size // 1000)) * 1e6,
                "unit": "us",
            }
        )

    def handshake() -> None:
        i = StreamHandshake(Keyring(KEY), "bench", "a", initiator=True)
        r = StreamHandshake(Keyring(KEY), "bench", "b", initiator=False)
        proof_i, proof_r = i.on_hello(r.hello()), r.on_hello(i.hello())
        i.on_proof(proof_r)
        r.on_proof(proof_i)

    rows.append(
        {
            "benchmark": "security",
            "metric": "connection handshake (both ends)",
            "value": _per_call(handshake, number // 10) * 1e6,
            "unit": "us",
        }
    )
    return rows


async def _cluster(config: Config, seconds: float) -> tuple[float, float]:
    """CPU s per node per minute and bytes sent per node per second, once formed."""
    async with trio.open_nursery() as nursery:
        nodes: list[Node] = []
        done = trio.Event()
        formed = trio.Event()

        async def run(name: str, task_status: trio.TaskStatus[None]) -> None:
            seeds = [nodes[0].address] if nodes else []
            async with open_node(name=name, bind="127.0.0.1:0", seeds=seeds, config=config) as n:
                nodes.append(n)
                task_status.started()
                await done.wait()

        for index in range(NODES):
            await nursery.start(run, f"n{index}")
        with trio.fail_after(30):
            while not all(len(n.members()) == NODES for n in nodes):
                await trio.sleep(0.05)
        formed.set()
        sent = sum(n.counters["udp_bytes_sent"] + n.counters["tcp_bytes_sent"] for n in nodes)
        cpu, wall = time.process_time(), time.monotonic()
        await trio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        sent = (
            sum(n.counters["udp_bytes_sent"] + n.counters["tcp_bytes_sent"] for n in nodes) - sent
        )
        done.set()
    return cpu / NODES / wall * 60, sent / NODES / wall


def _membership(quick: bool) -> list[Row]:
    seconds = 3.0 if quick else 10.0
    plain: list[tuple[float, float]] = []
    keyed: list[tuple[float, float]] = []
    for round_ in range(ROUNDS):
        order = [False, True] if round_ % 2 == 0 else [True, False]
        for with_key in order:
            config = FAST.replace(keyring=Keyring(KEY)) if with_key else FAST
            (keyed if with_key else plain).append(trio.run(_cluster, config, seconds))
    rows: list[Row] = []
    for index, (metric, unit) in enumerate(
        [("membership CPU per node", "cpu-s/min"), ("membership bytes sent per node", "B/s")]
    ):
        value = statistics.median(k[index] for k in keyed)
        floor = statistics.median(p[index] for p in plain)
        rows.append(
            {
                "benchmark": "security",
                "metric": f"{metric}, keyed ({NODES} nodes, probes every 0.2 s)",
                "value": value,
                "unit": unit,
                "floor": floor,
                "ratio": value / floor,
                "note": f"floor: plaintext; medians of {ROUNDS} interleaved runs",
            }
        )
    return rows


MODES = ("plain", "keyed", "tls")
"""How the remote systems' connections are protected: not at all (the floor), by the
cluster key's handshake and sealed records, or by mutual TLS."""


def _remote_config(mode: str, name: str, pki: str) -> Config:
    if mode == "keyed":
        return REMOTE_CONFIG.replace(keyring=Keyring(KEY))
    if mode == "tls":
        stem = f"{pki}/{name}"
        tls = TlsConfig(cert=f"{stem}.crt", key=f"{stem}.key", ca=f"{pki}/ca.pem")
        return REMOTE_CONFIG.replace(tls=tls)
    return REMOTE_CONFIG


def _issue_certificates(directory: str, names: list[str]) -> None:
    """A throwaway CA (``trustme``) and a certificate naming each node, as PEM files."""
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(f"{directory}/ca.pem")
    for name in names:
        issued = ca.issue_cert(name)
        issued.cert_chain_pems[0].write_to_path(f"{directory}/{name}.crt")
        issued.private_key_pem.write_to_path(f"{directory}/{name}.key")


class CpuClock(swimactors.Actor):
    """Answers with this process's CPU seconds so far (the far side's share of a run)."""

    def receive(self, msg: Any, ctx: swimactors.Context) -> float:
        return time.process_time()


async def _serve(mode: str, pki: str) -> None:
    config = _remote_config(mode, f"far-{mode}", pki)
    async with swimactors.open_system(f"far-{mode}", bind="127.0.0.1:0", config=config) as system:
        await system.spawn(Echo, name="echo", public=True)
        await system.spawn(CpuClock, name="cpu", public=True)
        # room for every tell of a run: this measures the transport, and requests for a
        # full mailbox are held back only up to half the window, then dropped (docs/guide.md)
        await system.spawn(Count, name="count", public=True, mailbox_size=1 << 18)
        assert system.cluster is not None
        print(f"port {system.cluster.node.address[1]}", flush=True)
        await trio.sleep_forever()


@asynccontextmanager
async def _near(mode: str, pki: str) -> AsyncIterator[swimactors.System]:
    """A system here talking to a far one in another process, both protected by ``mode``."""
    async with (
        served_port("benchmarks.bench_security", "serve", mode, pki) as port,
        swimactors.open_system(
            f"near-{mode}",
            bind="127.0.0.1:0",
            seeds=[f"127.0.0.1:{port}"],
            config=_remote_config(mode, f"near-{mode}", pki),
        ) as system,
    ):
        await system.wait_for("echo", timeout=20)
        await system.wait_for("count", timeout=20)
        await system.wait_for("cpu", timeout=20)
        yield system


@asynccontextmanager
async def _pair_here(mode: str, pki: str) -> AsyncIterator[swimactors.System]:
    """Both systems of ``mode`` in this process (the near one yielded): a round trip that
    never waits for a process to wake, so its cost is the code's own."""
    config = _remote_config(mode, f"far-{mode}", pki)
    async with swimactors.open_system(f"far-{mode}", bind="127.0.0.1:0", config=config) as far:
        await far.spawn(Echo, name="echo", public=True)
        assert far.cluster is not None
        async with swimactors.open_system(
            f"near-{mode}",
            bind="127.0.0.1:0",
            seeds=[f"127.0.0.1:{far.cluster.node.address[1]}"],
            config=_remote_config(mode, f"near-{mode}", pki),
        ) as near:
            await near.wait_for("echo", timeout=20)
            yield near


@asynccontextmanager
async def _each_mode(
    near: Callable[[str, str], AbstractAsyncContextManager[swimactors.System]], pki: str
) -> AsyncIterator[dict[str, swimactors.System]]:
    """The asking system of every mode, from ``near``, each warmed up by 200 asks."""
    async with AsyncExitStack() as stack:
        systems = {mode: await stack.enter_async_context(near(mode, pki)) for mode in MODES}
        for system in systems.values():
            await _ask_round_trips(system, 200)
        yield systems


async def _asks_here(pki: str, trips: int) -> dict[str, list[float]]:
    """Ask p50 per round and mode, both systems of each mode in this process."""
    p50s: dict[str, list[float]] = {mode: [] for mode in MODES}
    async with _each_mode(_pair_here, pki) as systems:
        for round_ in range(REMOTE_ROUNDS):
            for mode in MODES[round_ % 3 :] + MODES[: round_ % 3]:
                asks = await _ask_round_trips(systems[mode], trips)
                p50s[mode].append(statistics.median(asks) * 1e6)
    return p50s


async def _remote(quick: bool) -> list[Row]:
    trips, tells = (500, 20_000) if quick else (2000, 100_000)
    results = {
        mode: {"ask": list[float](), "cpu": list[float](), "tell": list[float]()} for mode in MODES
    }
    with tempfile.TemporaryDirectory() as pki:
        _issue_certificates(pki, [f"{side}-tls" for side in ("near", "far")])
        async with _each_mode(_near, pki) as systems:
            for round_ in range(REMOTE_ROUNDS):
                order = MODES[round_ % 3 :] + MODES[: round_ % 3]  # rotated each round
                for mode in order:
                    system = systems[mode]
                    far = await system.wait_for("cpu")
                    near_cpu, far_cpu = time.process_time(), await far.ask("cpu?")
                    asks = await _ask_round_trips(system, trips)
                    near_cpu = time.process_time() - near_cpu
                    far_cpu = await far.ask("cpu?") - far_cpu
                    results[mode]["ask"].append(statistics.median(asks) * 1e6)
                    results[mode]["cpu"].append((near_cpu + far_cpu) / trips * 1e6)
                    results[mode]["tell"].append(await _tell_rate(system, tells))
        here = await _asks_here(pki, trips)
    note = f"floor: plaintext connection; {REMOTE_ROUNDS} interleaved rounds"
    floor = results["plain"]
    rows: list[Row] = []
    for mode, label in (("keyed", "keyed"), ("tls", "mutual TLS")):
        ask, cpu, tell = results[mode]["ask"], results[mode]["cpu"], results[mode]["tell"]
        extra = sorted(a - f for a, f in zip(ask, floor["ask"], strict=True))
        extra_cpu = sorted(c - f for c, f in zip(cpu, floor["cpu"], strict=True))
        ratios = sorted(t / f for t, f in zip(tell, floor["tell"], strict=True))
        extra_here = sorted(a - f for a, f in zip(here[mode], here["plain"], strict=True))
        rows += [
            {
                "benchmark": "security",
                "metric": f"remote ask p50, {label}",
                "value": statistics.median(ask),
                "unit": "us",
                "floor": statistics.median(floor["ask"]),
                "ratio": statistics.median(a / f for a, f in zip(ask, floor["ask"], strict=True)),
                "note": f"{note}; +{statistics.median(extra):.1f} us (per round "
                f"{extra[0]:+.0f}..{extra[-1]:+.0f}; target < 10)",
            },
            {
                "benchmark": "security",
                "metric": f"remote ask CPU per ask (both processes), {label}",
                "value": statistics.median(cpu),
                "unit": "us",
                "floor": statistics.median(floor["cpu"]),
                "ratio": statistics.median(c / f for c, f in zip(cpu, floor["cpu"], strict=True)),
                "note": f"{note}; +{statistics.median(extra_cpu):.1f} us (per round "
                f"{extra_cpu[0]:+.0f}..{extra_cpu[-1]:+.0f}): the round trip runs one side "
                "then the other, so this is what the key adds to its latency, less the noise",
            },
            {
                "benchmark": "security",
                "metric": f"remote ask p50, {label}, both systems in this process",
                "value": statistics.median(here[mode]),
                "unit": "us",
                "floor": statistics.median(here["plain"]),
                "ratio": statistics.median(
                    a / f for a, f in zip(here[mode], here["plain"], strict=True)
                ),
                "note": f"{note}; +{statistics.median(extra_here):.1f} us (per round "
                f"{extra_here[0]:+.1f}..{extra_here[-1]:+.1f}): no process sleeps between "
                "the hops, so this is the code's own cost, without the cold caches of a wake",
            },
            {
                "benchmark": "security",
                "metric": f"remote tell throughput, {label}, one sender",
                "value": statistics.median(tell),
                "unit": "msg/s",
                "floor": statistics.median(floor["tell"]),
                "ratio": statistics.median(ratios),
                "note": f"{note}; per round {ratios[0]:.2f}..{ratios[-1]:.2f}; target > 0.85",
            },
        ]
    return rows


def run(quick: bool) -> list[Row]:
    return _primitives(quick) + _membership(quick) + trio.run(_remote, quick)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"] and sys.argv[2] in MODES:
        trio.run(_serve, sys.argv[2], sys.argv[3])
