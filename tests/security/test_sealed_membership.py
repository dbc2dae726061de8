"""Membership with a keyring on real loopback sockets: a keyed cluster forms and stays
whole; plaintext or foreign-key packets have no effect (dropped, counted, logged once per
peer); a replayed sealed packet is dropped; a plaintext cluster migrates to encrypted."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio

from swimactors.membership import Config, Status
from swimactors.membership.messages import Dead, Ping, encode_message, encode_packet
from swimactors.membership.node import Node, open_node
from swimactors.security import Keyring, PacketSealer
from tests.network.test_node import FAST, all_up, wait_for

pytestmark = pytest.mark.network

KEY = b"K" * 32
CONVERGE = 2 * FAST.push_pull_interval + 2.0


@asynccontextmanager
async def nodes_with(configs: list[tuple[str, Config]]) -> AsyncIterator[list[Node]]:
    async with AsyncExitStack() as stack:
        nodes: list[Node] = []
        for name, config in configs:
            seeds = [nodes[0].address] if nodes else []
            node = await stack.enter_async_context(
                open_node(name=name, bind="127.0.0.1:0", seeds=seeds, config=config)
            )
            nodes.append(node)
        yield nodes


def keyed(**options: object) -> Config:
    return FAST.replace(keyring=Keyring(KEY, **options))  # type: ignore[arg-type]


async def test_a_keyed_cluster_forms_and_seals_everything() -> None:
    with trio.fail_after(20):
        async with nodes_with([("a", keyed()), ("b", keyed()), ("c", keyed())]) as nodes:
            await wait_for(all_up(nodes), CONVERGE)
            await wait_for(lambda: nodes[0].counters["received_ack"] > 3, 5)
            counters = nodes[0].counters
            assert counters["opened_packets"] > 0
            assert counters["sealed_packets"] > 0
            assert counters["tcp_frames_received"] > 0  # the join push/pull, sealed too
            assert not any(k.startswith("rejected_sealing") for k in counters if counters[k])
            assert counters["plaintext_accepted"] == 0


async def test_forged_news_without_the_key_has_no_effect(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "swimactors.membership.sealing")
    with trio.fail_after(20):
        async with nodes_with([("a", keyed()), ("b", keyed())]) as (a, b):
            await wait_for(all_up([a, b]), CONVERGE)
            forged = encode_packet("", "mallory", [encode_message(Dead("b", 2**40, "mallory"))])
            stranger = PacketSealer(Keyring(b"X" * 32), "")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for _ in range(5):
                    sock.sendto(forged, a.address)
                    sock.sendto(stranger.seal(forged, time.time()), a.address)
            await wait_for(
                lambda: (
                    a.counters["rejected_sealing_unsealed"] == 5
                    and a.counters["rejected_sealing_unknown_key"] == 5
                ),
                5,
            )
            assert a.member("b") is not None and a.member("b").status is Status.UP  # type: ignore[union-attr]
            assert a.member("mallory") is None
            warnings = [r for r in caplog.records if "another cluster" in r.getMessage()]
            assert len(warnings) == 1  # once per peer (the forger's one address)


async def test_a_node_with_another_key_never_joins() -> None:
    with trio.fail_after(20):
        async with nodes_with(
            [("a", keyed()), ("x", FAST.replace(keyring=Keyring(b"X" * 32)))]
        ) as (
            a,
            x,
        ):
            await wait_for(lambda: a.counters["rejected_sealing_unknown_key"] > 0, 5)
            assert a.member("x") is None and x.member("a") is None


async def test_a_replayed_sealed_packet_is_dropped() -> None:
    with trio.fail_after(20):
        async with nodes_with([("a", keyed())]) as (a,):
            holder = PacketSealer(Keyring(KEY), "")
            ping = encode_packet("", "probe", [encode_message(Ping(7, "a"))])
            sealed = holder.seal(ping, time.time())
            with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                await sock.bind(("127.0.0.1", 0))
                await sock.sendto(sealed, a.address)
                with trio.fail_after(2):
                    ack = await sock.recv(2000)
                assert isinstance(holder.open(ack, time.time()), bytes)
                await sock.sendto(sealed, a.address)
                await wait_for(lambda: a.counters["rejected_sealing_replayed"] == 1, 5)
                with trio.move_on_after(0.3) as quiet:
                    await sock.recv(2000)  # no second ack
                assert quiet.cancelled_caught
            assert a.counters["received_ping"] == 1


async def test_a_plaintext_cluster_migrates_to_encrypted_while_running() -> None:
    """Serf's order: restart each node, one at a time, with a keyring that accepts sealed
    packets but still sends plaintext; then each sends sealed while accepting both; then
    each refuses plaintext.  The cluster stays whole and, after the restarts, no one is
    suspected."""
    with trio.fail_after(60):
        rings = {name: Keyring(KEY, plaintext="send") for name in "abc"}
        running: dict[str, tuple[trio.Event, Node]] = {}

        async def run(name: str, config: Config, task_status: trio.TaskStatus[None]) -> None:
            seeds = [n.address for _, n in running.values()]
            async with open_node(name=name, bind="127.0.0.1:0", seeds=seeds, config=config) as n:
                stop = trio.Event()
                running[name] = (stop, n)
                task_status.started()
                await stop.wait()

        def nodes() -> list[Node]:
            return [node for _, node in running.values()]

        async with trio.open_nursery() as nursery:
            for name in "abc":
                await nursery.start(run, name, FAST)
            await wait_for(all_up(nodes()), CONVERGE)
            for name in "abc":  # a rolling restart with the key, still sending plaintext
                stop, node = running.pop(name)
                stop.set()
                await wait_for(lambda node=node: node._left.is_set(), 5)  # type: ignore[misc]
                await nursery.start(run, name, FAST.replace(keyring=rings[name]))
                await wait_for(all_up(nodes()), CONVERGE)
            suspected_before = [n.counters["suspicions_raised"] for n in nodes()]
            for policy in ("accept", "refuse"):
                for ring in rings.values():
                    ring.plaintext = policy  # type: ignore[assignment]
                    await trio.sleep(5 * FAST.probe_interval)
                assert all_up(nodes())()
            assert [n.counters["suspicions_raised"] for n in nodes()] == suspected_before
            counters = running["a"][1].counters
            assert counters["plaintext_accepted"] > 0 and counters["opened_packets"] > 0
            for stop, _ in running.values():
                stop.set()


async def test_a_node_of_another_cluster_label_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "swimactors.membership.node")
    with trio.fail_after(20):
        async with nodes_with([("a", FAST), ("x", FAST.replace(label="other"))]) as (a, x):
            await wait_for(lambda: a.counters["rejected_label"] >= 3, 5)
            assert a.member("x") is None and x.member("a") is None
    warnings = [r for r in caplog.records if "another cluster" in r.getMessage()]
    assert len(warnings) == 1
