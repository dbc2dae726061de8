"""The trio driver on real loopback sockets: convergence, crash detection within the
config's bound, graceful leave, restart, event delivery and hostile input."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import pytest
import trio
import trio.testing

from swimactors import wire
from swimactors.membership import (
    Config,
    Delegate,
    MemberDown,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    MemberUpdated,
    Status,
    decode_meta,
    encode_meta,
)
from swimactors.membership.events import EventsDropped
from swimactors.membership.node import Node, open_node
from tests.network.fast import CONFIG
from tests.network.ports import ReservedPort

pytestmark = pytest.mark.network

FAST = CONFIG.replace(tcp_timeout=1.0)
"""The tests' one fast timing, with push/pull connections given up on after a second."""
TEST_TIMEOUT = 30.0


def down_bound(config: Config, members: int) -> float:
    """The core contract's safe bound for 'every survivor marks a crashed node DOWN'."""
    return config.suspicion_timeouts(members)[1] + 3 * config.probe_interval + 1.0


CONVERGE_BOUND = 2 * FAST.push_pull_interval + 2.0
"""Gossip normally converges in well under a second; push/pull mends any miss."""


async def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` holds; fails the test after ``timeout``."""
    start = trio.current_time()
    with trio.move_on_after(timeout):
        while not check():
            await trio.sleep(0.02)
        return trio.current_time() - start
    pytest.fail(f"condition not reached within {timeout:.1f} s")


def status_of(node: Node, name: str) -> Status | None:
    member = node.member(name)
    return None if member is None else member.status


def all_up(nodes: list[Node]) -> Callable[[], bool]:
    names = {n.name for n in nodes}
    return lambda: all(
        {m.name for m in n.members() if m.status is Status.UP} == names for n in nodes
    )


@asynccontextmanager
async def cluster_of(config: Config, names: str) -> AsyncIterator[list[Node]]:
    """Nodes named by the letters of ``names``, each joining the first, all converged."""
    async with AsyncExitStack() as stack:
        nodes: list[Node] = []
        for name in names:
            seeds = [nodes[0].address] if nodes else []
            node = await stack.enter_async_context(
                open_node(name=name, bind="127.0.0.1:0", seeds=seeds, config=config)
            )
            nodes.append(node)
        await wait_for(all_up(nodes), 2 * config.push_pull_interval + 2.0)
        yield nodes


def cluster(names: str) -> AbstractAsyncContextManager[list[Node]]:
    return cluster_of(FAST, names)


async def test_three_nodes_converge_on_real_ports() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with cluster("abc") as nodes:
            for node in nodes:
                assert node.address[0] == "127.0.0.1"
                assert node.address[1] != 0
                assert node.address == node.bound_address
                assert node.local_member.name == node.name
                assert node.local_member.status is Status.UP
            ports = {n.address[1] for n in nodes}
            assert len(ports) == 3
            assert nodes[0].counters["tcp_frames_received"] > 0  # the join push/pulls
            await wait_for(lambda: nodes[0].counters["received_ack"] > 0, 5)  # probes on UDP
            assert nodes[0].counters["udp_packets_received"] > 0
            assert nodes[0].counters["driver_errors"] == 0


async def test_a_crashed_node_is_marked_down_within_the_bound() -> None:
    bound = down_bound(FAST, 3)
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            cluster("ab") as (a, b),
            open_node(
                name="c", bind="127.0.0.1:0", seeds=[a.address], config=FAST, leave_timeout=0.2
            ) as c,
        ):
            with a.events() as events:
                await wait_for(all_up([a, b, c]), CONVERGE_BOUND)
                await c._transport.aclose()  # the process "dies": its sockets vanish
                took = await wait_for(
                    lambda: status_of(a, "c") is Status.DOWN and status_of(b, "c") is Status.DOWN,
                    bound + 5,
                )
                assert took <= bound, f"took {took:.2f} s, bound {bound:.2f} s"
                seen = []
                with trio.move_on_after(0.5):
                    async for event in events:
                        if not isinstance(event, EventsDropped) and event.member.name == "c":
                            seen.append(type(event))
                            if isinstance(event, MemberDown):
                                break
                assert MemberSuspect in seen
                assert seen[-1] is MemberDown
                assert status_of(a, "b") is Status.UP
            # the dead node's own loops survive their sockets closing: failures are counted
        assert c.counters["driver_errors"] == 0


async def test_a_graceful_leave_shows_left_everywhere_within_a_few_gossip_rounds() -> None:
    rounds = 10 * FAST.gossip_interval + 0.5
    with trio.fail_after(TEST_TIMEOUT):
        async with cluster("ab") as (a, b):
            async with open_node(name="c", bind="127.0.0.1:0", seeds=[a.address], config=FAST) as c:
                await wait_for(all_up([a, b, c]), CONVERGE_BOUND)
                start = trio.current_time()
                assert await c.leave()
            took = await wait_for(
                lambda: status_of(a, "c") is Status.LEFT and status_of(b, "c") is Status.LEFT,
                rounds + 5,
            )
            assert trio.current_time() - start <= rounds, f"took {took:.2f} s"


async def test_a_restarted_node_rejoins_with_a_higher_incarnation() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with cluster("ab") as (a, b):
            async with open_node(
                name="c", bind="127.0.0.1:0", seeds=[a.address], config=FAST, leave_timeout=0.2
            ) as c:
                await wait_for(all_up([a, b, c]), CONVERGE_BOUND)
                first_life = c.incarnation
                port = c.address[1]
                await c._transport.aclose()  # crash
                await wait_for(lambda: status_of(a, "c") is Status.DOWN, down_bound(FAST, 3) + 5)
            async with open_node(
                name="c", bind=f"127.0.0.1:{port}", seeds=[a.address], config=FAST
            ) as c2:
                assert c2.incarnation > first_life

                def rejoined() -> bool:
                    views = [a.member("c"), b.member("c")]
                    return all(
                        m is not None and m.status is Status.UP and m.incarnation > first_life
                        for m in views
                    )

                await wait_for(rejoined, CONVERGE_BOUND)


async def test_events_reach_two_subscribers_and_a_slow_one_never_stalls_the_node() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_node(name="a", bind="127.0.0.1:0", config=FAST) as a:
            fast_seen: list[object] = []
            slow = a.events(buffer=2)  # never read until the end: it must not block anything

            async def read_fast(task_status: trio.TaskStatus[None]) -> None:
                with a.events() as events:
                    task_status.started()
                    async for event in events:
                        fast_seen.append(event)

            async with trio.open_nursery() as nursery:
                await nursery.start(read_fast)
                async with (
                    open_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=FAST) as b,
                    open_node(name="c", bind="127.0.0.1:0", seeds=[a.address], config=FAST) as c,
                ):
                    await wait_for(all_up([a, b, c]), CONVERGE_BOUND)
                    await c.set_meta(encode_meta({"role": "db"}))
                    await wait_for(
                        lambda: decode_meta(a.member("c").meta) == {"role": "db"},  # type: ignore[union-attr]
                        CONVERGE_BOUND,
                    )
                await wait_for(
                    lambda: status_of(a, "b") is Status.LEFT and status_of(a, "c") is Status.LEFT,
                    5,
                )
                await trio.sleep(0.1)
                nursery.cancel_scope.cancel()
            kinds = [
                (type(e), e.member.name) for e in fast_seen if not isinstance(e, EventsDropped)
            ]
            for name in "bc":
                assert (MemberUp, name) in kinds
                assert (MemberLeft, name) in kinds
            assert (MemberUpdated, "c") in kinds
            assert len(kinds) >= 5
            slow.close()
            slow_seen = [e async for e in slow]
            assert slow_seen[0] == EventsDropped(len(kinds) - 2)
            assert slow_seen[1:] == fast_seen[-2:]
            assert a.counters["events_dropped"] == len(kinds) - 2


async def test_garbage_on_udp_and_tcp_is_counted_and_the_node_keeps_serving() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with cluster("ab") as (a, b):
            udp = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for size in (0, 1, 7, 100, 1400, 9000):
                await udp.sendto(os.urandom(size), a.address)
            await udp.sendto(wire.dumps([1, "", "x", [[99, "unknown"]], "bad"]), a.address)
            udp.close()

            async def tcp_send(data: bytes) -> bytes:
                """Send ``data``, half-close, and return what the node sent back (nothing)."""
                stream = await trio.open_tcp_stream(*a.address)
                async with stream:
                    await stream.send_all(data)
                    await stream.send_eof()
                    return await stream.receive_some(100)

            assert await tcp_send(wire.encode_frame(os.urandom(300))) == b""
            assert await tcp_send(struct.pack(">I", 100) + b"only ten b") == b""
            assert await tcp_send(struct.pack(">I", 2**31) + os.urandom(64)) == b""
            assert await tcp_send(os.urandom(3)) == b""

            def counted() -> bool:
                c = a.counters
                return (
                    c["rejected_malformed"] >= 7
                    and c["tcp_truncated_frames"] >= 2
                    and c["tcp_oversized_frames"] >= 1
                )

            await wait_for(counted, 5)
            assert a.counters["driver_errors"] == 0
            # still serving: b keeps seeing a up, and a newcomer joins through a over TCP
            await trio.sleep(3 * FAST.probe_interval)
            assert status_of(b, "a") is Status.UP
            async with open_node(name="d", bind="127.0.0.1:0", seeds=[a.address], config=FAST) as d:
                await wait_for(all_up([a, b, d]), CONVERGE_BOUND)


async def test_wildcard_bind_advertises_a_routable_address() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_node(name="a", bind="127.0.0.1:0", config=FAST) as a,
            open_node(name="b", bind="0.0.0.0:0", seeds=[a.address], config=FAST) as b,
            open_node(
                name="c", bind="0.0.0.0:0", seeds=[a.address], config=FAST, advertise="127.0.0.1"
            ) as c,
        ):
            assert b.address == ("127.0.0.1", b.bound_address[1])
            assert c.address == ("127.0.0.1", c.bound_address[1])
            await wait_for(all_up([a, b, c]), CONVERGE_BOUND)


async def test_host_names_resolve() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with open_node(name="a", bind="localhost:0", config=FAST) as a:
            host, port = a.address
            assert host in ("127.0.0.1", "::1")  # a literal, not the name
            async with open_node(
                name="b",
                bind=f"{host}:0" if ":" not in host else f"[{host}]:0",
                seeds=[f"localhost:{port}"],
                config=FAST,
            ) as b:
                await wait_for(all_up([a, b]), CONVERGE_BOUND)


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback on this machine")
async def test_ipv6_literals() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_node(name="a", bind="[::1]:0", config=FAST) as a,
            open_node(name="b", bind="[::1]:0", seeds=[a.address], config=FAST) as b,
        ):
            assert a.address[0] == "::1"
            await wait_for(all_up([a, b]), CONVERGE_BOUND)
            assert b.member("a").address == a.address  # type: ignore[union-attr]


async def test_binding_a_busy_port_is_a_clear_error() -> None:
    async with open_node(name="a", bind="127.0.0.1:0", config=FAST) as a:
        with pytest.raises(OSError, match=rf"cannot bind 127\.0\.0\.1:{a.address[1]}"):
            async with open_node(name="b", bind=f"127.0.0.1:{a.address[1]}", config=FAST):
                pass


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback on this machine")
async def test_a_dual_stack_node_talks_to_ipv4_peers() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_node(name="a", bind="[::]:0", config=FAST, advertise="127.0.0.1") as a,
            open_node(
                name="b", bind="127.0.0.1:0", seeds=[("127.0.0.1", a.address[1])], config=FAST
            ) as b,
            open_node(name="c", bind="[::]:0", seeds=[b.address], config=FAST) as c,
        ):
            assert c.address == ("127.0.0.1", c.bound_address[1])  # the route to its seed
            await wait_for(all_up([a, b, c]), CONVERGE_BOUND)
            assert a.member("b").address == b.address  # type: ignore[union-attr]
            await wait_for(lambda: a.counters["received_ack"] > 0, 5)  # UDP both ways


async def test_a_node_started_before_its_seed_joins_once_the_seed_is_up() -> None:
    with trio.fail_after(TEST_TIMEOUT), ReservedPort() as seed:
        port = seed.port
        async with open_node(
            name="b", bind="127.0.0.1:0", seeds=[f"127.0.0.1:{port}"], config=FAST
        ) as b:
            # its first join attempts are refused: counted, not raised
            await wait_for(lambda: b.counters["tcp_connect_failures"] >= 1, CONVERGE_BOUND)
            seed.release()  # held until now: another process could take a port only probed
            async with open_node(name="a", bind=f"127.0.0.1:{port}", config=FAST) as a:
                await wait_for(all_up([a, b]), FAST.reconnect_interval + CONVERGE_BOUND)


def test_the_driver_runs_on_a_mock_clock_with_the_lan_profile() -> None:
    """Time is trio's, so a MockClock runs default (slow) timings in seconds of real time:
    the clock jumps whenever every task waits, packets still cross real sockets."""
    config = Config.lan()
    bound = down_bound(config, 3)

    async def scenario() -> float:
        async with (
            cluster_of(config, "ab") as (a, b),
            open_node(
                name="c", bind="127.0.0.1:0", seeds=[a.address], config=config, leave_timeout=0.2
            ) as c,
        ):
            await wait_for(all_up([a, b, c]), 60)
            await c._transport.aclose()
            return await wait_for(
                lambda: status_of(a, "c") is Status.DOWN and status_of(b, "c") is Status.DOWN,
                bound + 30,
            )

    clock = trio.testing.MockClock(autojump_threshold=0.01)
    started = time.monotonic()
    took = trio.run(scenario, clock=clock)
    assert took <= bound, f"took {took:.2f} virtual s, bound {bound:.2f} s"
    assert took > config.suspicion_timeouts(3)[0]  # the suspicion timeout did elapse
    assert time.monotonic() - started < TEST_TIMEOUT


async def test_an_unresolvable_bind_host_is_a_clear_error() -> None:
    with trio.fail_after(TEST_TIMEOUT), pytest.raises(OSError, match="cannot resolve"):
        async with open_node(name="a", bind="no-such-host.invalid:0", config=FAST):
            pass


class _Inbox(Delegate):
    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def notify_message(self, payload: bytes, now: float) -> None:
        self.payloads.append(payload)


async def test_a_broadcast_goes_out_at_once_not_at_the_next_probe() -> None:
    """A layer's broadcast must not wait for the next protocol period (an idle node arms
    no gossip timer)."""
    slow_probes = FAST.replace(probe_interval=5.0, probe_timeout=1.0)
    async with cluster_of(slow_probes, "ab") as (a, b):
        inbox = _Inbox()
        b.register_delegate("test", inbox)
        await trio.sleep(0.2)  # let join gossip drain: the next probe is seconds away
        with trio.fail_after(TEST_TIMEOUT):
            a.broadcast("test", b"hello")
            took = await wait_for(lambda: inbox.payloads == [b"hello"], 2.0)
        assert took < 1.0, f"broadcast took {took:.2f} s"


async def test_open_node_takes_a_chosen_incarnation() -> None:
    async with open_node(name="x", bind="127.0.0.1:0", config=FAST, incarnation=42) as node:
        assert node.incarnation == 42
