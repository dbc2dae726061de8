"""The blocking front on real loopback sockets: join, events, metadata, leave, start-up
errors, crash detection across OS processes, and the point of the membership thread: a
node whose application thread blocks is not suspected (and without the thread it is)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable

import pytest
import trio

from swimactors.membership import (
    Delegate,
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
from swimactors.membership.driven import DrivenNode
from swimactors.membership.events import EventsDropped
from swimactors.membership.threaded import ThreadEvents
from swimactors.membership.types import Address

from .helpers import BLOCK, block_with_peers, blocking_cluster, peer_process, sees_up, wait_for
from .timing import CONFIG, CONVERGE_BOUND, down_bound

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("membership_driver")]


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
        left_b = a.member("b")
        assert left_b is not None and left_b.status is Status.LEFT
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


def test_a_subscriber_gets_the_events_from_its_subscription_on() -> None:
    """An event published on the membership thread just before a subscription there does
    not reach it; the next one does.  The trio driver relayed events through a task that
    ran later, so a new subscriber could get one from before it (a test waited until b saw
    a UP, subscribed, and read a's MemberUp first)."""
    with start_node(name="a", bind="127.0.0.1:0", config=CONFIG) as a:
        thread = a._thread
        (member,) = a.members()
        before, after = MemberUpdated(member, 1.0), MemberUpdated(member, 2.0)

        def publish_then_subscribe(node: DrivenNode) -> ThreadEvents:
            node._publish(before)
            return thread.subscribe()

        events = thread.call(publish_then_subscribe)
        thread.call(lambda node: node._publish(after))
        assert events.get(CONVERGE_BOUND) == after
        assert events.get(0) is None
        events.close()


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


def test_a_delegate_hook_calling_back_into_the_blocking_node_is_refused() -> None:
    """Hooks run on the membership thread; a blocking call from there would hang forever."""
    errors: list[BaseException] = []

    class CallsBack(Delegate):
        def on_member_event(self, event: MemberEvent) -> None:
            try:
                a.members()
            except RuntimeError as exc:
                errors.append(exc)

    with blocking_cluster("a", []) as (a,):
        a.register_delegate("test", CallsBack())
        with start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=CONFIG):
            wait_for(lambda: bool(errors), CONVERGE_BOUND)
        assert "would hang" in str(errors[0])
        assert a.members()  # the node is fine
