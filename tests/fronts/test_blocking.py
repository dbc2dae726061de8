"""The blocking front on real loopback sockets: join, events, metadata, leave, start-up
errors, crash detection across OS processes, and the point of the membership thread: a
node whose application thread blocks is not suspected (and without the thread it is)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest
import trio

from swimactors.membership import (
    BlockingNode,
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    MemberUpdated,
    NodeClosed,
    Status,
    open_node,
    start_node,
)
from swimactors.membership.events import EventsDropped
from swimactors.membership.types import Address, format_address

from .timing import CONFIG, CONVERGE_BOUND, down_bound, suspicion_timeout

pytestmark = pytest.mark.network


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` holds, polled; fails the test after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not reached within {timeout:.1f} s")
        time.sleep(0.02)
    return time.monotonic() - start


def sees_up(node: BlockingNode, names: set[str]) -> bool:
    return {m.name for m in node.members() if m.status is Status.UP} >= names


@contextmanager
def blocking_cluster(names: str, seeds: list[Address]) -> Iterator[list[BlockingNode]]:
    """Blocking nodes named by the letters of ``names``, joined through ``seeds`` (or the
    first of them), all seeing one another UP."""
    with ExitStack() as stack:
        nodes: list[BlockingNode] = []
        for name in names:
            join = seeds or [n.address for n in nodes[:1]]
            nodes.append(
                stack.enter_context(
                    start_node(name=name, bind="127.0.0.1:0", seeds=join, config=CONFIG)
                )
            )
        wait_for(lambda: all(sees_up(n, set(names)) for n in nodes), CONVERGE_BOUND)
        yield nodes


def test_join_members_events_meta_and_leave() -> None:
    with blocking_cluster("ab", []) as (a, b):
        assert a.address[0] == "127.0.0.1" and a.address[1] != 0
        assert a.local_member.name == "a" and a.local_member.status is Status.UP
        assert a.member("b") == b.local_member
        assert a.member("nobody") is None
        assert a.counters["driver_errors"] == 0
        with a.events(timeout=CONVERGE_BOUND) as events:
            b.set_meta(b"role=web")
            updated = next(e for e in events if isinstance(e, MemberUpdated))
            assert updated.member.name == "b" and updated.member.meta == b"role=web"
            assert b.leave() is True
            assert not b.running
            left = next(e for e in events if isinstance(e, MemberEvent) and e.member.name == "b")
            assert isinstance(left, MemberLeft)
        assert a.member("b") is not None and a.member("b").status is Status.LEFT  # type: ignore[union-attr]
        with pytest.raises(NodeClosed):
            b.members()


def test_a_bound_address_is_a_start_up_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        before = threading.active_count()
        with pytest.raises(OSError), start_node(name="a", bind=f"127.0.0.1:{port}"):
            pass
        assert threading.active_count() == before  # the membership thread is gone


def test_a_slow_reader_loses_the_oldest_events_and_is_told() -> None:
    with blocking_cluster("a", []) as (a,), a.events(buffer=1) as events:
        with start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=CONFIG):
            wait_for(lambda: sees_up(a, {"b"}), CONVERGE_BOUND)
        wait_for(lambda: events.dropped == 1, CONVERGE_BOUND)  # UP went when LEFT came
        assert events.get(0) == EventsDropped(1)
        left = events.get(0)
        assert isinstance(left, MemberLeft) and left.member.name == "b"
        assert events.get(0) is None


# -- a blocked application thread ----------------------------------------------------------

BLOCK = 3 * suspicion_timeout(3)
"""How long the application thread blocks: three times the suspicion timeout."""


def suspicions_of(events: list[MemberEvent | EventsDropped], name: str) -> list[MemberEvent]:
    return [
        e for e in events if isinstance(e, MemberSuspect | MemberDown) and e.member.name == name
    ]


def block_with_peers(run_node: Callable[[Address, Callable[[], None]], None]) -> list[MemberEvent]:
    """Peers b and c on membership threads; ``run_node(seed, on_up)`` runs node a, which
    must call ``on_up()`` once joined and then block its thread for :data:`BLOCK` seconds,
    during which c leaves.  Returns what b saw happen to a."""
    with blocking_cluster("bc", []) as (b, c), b.events() as seen:
        leave = threading.Timer(BLOCK / 3, c.leave)

        def a_is_up_everywhere() -> None:
            wait_for(lambda: sees_up(b, {"a"}) and sees_up(c, {"a"}), CONVERGE_BOUND)
            leave.start()

        run_node(b.address, a_is_up_everywhere)
        leave.join()
        time.sleep(CONFIG.probe_interval)  # let b finish the probe of a that was in flight
        return suspicions_of(list(iter(lambda: seen.get(0), None)), "a")


def test_a_blocked_main_thread_is_not_suspected_with_the_membership_thread() -> None:
    def run_node(seed: Address, on_up: Callable[[], None]) -> None:
        with start_node(name="a", bind="127.0.0.1:0", seeds=[seed], config=CONFIG) as a:
            wait_for(lambda: sees_up(a, {"b", "c"}), CONVERGE_BOUND)
            on_up()
            time.sleep(BLOCK)  # the application thread is blocked; the node is not
            # its view stayed current: c's leave during the block is already known
            c = a.member("c")
            assert c is not None and c.status is Status.LEFT
            assert a.counters["driver_errors"] == 0

    assert block_with_peers(run_node) == []


def test_a_blocked_loop_is_suspected_without_the_membership_thread() -> None:
    """The control: the same node on the application's own trio loop is falsely suspected."""

    def run_node(seed: Address, on_up: Callable[[], None]) -> None:
        async def main() -> None:
            async with open_node(name="a", bind="127.0.0.1:0", seeds=[seed], config=CONFIG) as a:
                while not {m.name for m in a.members() if m.status is Status.UP} >= {"b", "c"}:
                    await trio.sleep(0.02)
                await trio.to_thread.run_sync(on_up)
                time.sleep(BLOCK)  # blocks the loop the node runs on

        trio.run(main)

    suspicions = block_with_peers(run_node)
    assert suspicions, "b never suspected the blocked node"
    assert isinstance(suspicions[0], MemberSuspect)


# -- across OS processes --------------------------------------------------------------------


class PeerProcess:
    """``tests/fronts/peer.py`` in its own process, its output lines collected by a thread."""

    def __init__(self, name: str, seed: Address) -> None:
        command = [sys.executable, "-u", "-m", "tests.fronts.peer", name, format_address(seed)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def saw(self, line: str) -> bool:
        return line in self.lines

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@contextmanager
def peer_process(name: str, seed: Address) -> Iterator[PeerProcess]:
    """A started peer process, killed and reaped at the end whatever happens."""
    peer = PeerProcess(name, seed)
    try:
        wait_for(lambda: any(line.startswith("address ") for line in peer.lines), 30)
        yield peer
    finally:
        peer.close()


def test_crash_detection_and_events_across_os_processes() -> None:
    with (
        blocking_cluster("a", []) as (a,),
        a.events(timeout=down_bound(2)) as events,
        peer_process("p", a.address) as peer,
    ):
        up = next(e for e in events if isinstance(e, MemberUp))
        assert up.member.name == "p"
        wait_for(lambda: peer.saw("MemberUp a"), CONVERGE_BOUND)
        a.set_meta(b"v2")
        wait_for(lambda: peer.saw("MemberUpdated a"), CONVERGE_BOUND)
        peer.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        bound = down_bound(2)
        down = next(e for e in events if isinstance(e, MemberDown))
        took = time.monotonic() - killed
        assert down.member.name == "p"
        assert took <= bound, f"DOWN after {took:.1f} s > {bound:.1f} s"
