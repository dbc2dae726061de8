"""What only the lean membership thread has to show (the fronts' tests run on both
drivers): it interoperates with the trio driver, seals with the cluster key and spreads key
changes, keeps its TCP limits against hostile input, refuses awaitables it cannot wait
for, and gives way to the trio driver for TLS or a transport of its own."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path
from typing import cast

import pytest
import trio

from swimactors.membership import MemberEvent, MemberLeft, Status, start_node, transport
from swimactors.membership.lean import DRIVER_VARIABLE, LeanNodeThread, node_thread
from swimactors.membership.threaded import NodeThread
from swimactors.membership.transport import NodeTransport, SockAddr
from swimactors.security import Keyring
from tests.security.test_tls import Pki

from .helpers import blocking_cluster, sees_up, wait_for
from .timing import CONFIG, CONVERGE_BOUND

pytestmark = pytest.mark.network

KEY, OTHER_KEY, NEW_KEY = b"K" * 32, b"O" * 32, b"N" * 32


@pytest.fixture(autouse=True)
def lean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DRIVER_VARIABLE, "lean")


def test_lean_and_trio_nodes_form_one_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    with start_node(name="a", bind="127.0.0.1:0", config=CONFIG) as a:
        assert isinstance(a._thread, LeanNodeThread)
        monkeypatch.setenv(DRIVER_VARIABLE, "trio")
        with start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=CONFIG) as b:
            assert type(b._thread) is NodeThread
            wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
            with b.events(timeout=CONVERGE_BOUND) as events:
                assert a.leave() is True
                left = next(e for e in events if isinstance(e, MemberEvent))
                assert isinstance(left, MemberLeft) and left.member.name == "a"


def test_keyed_lean_nodes_seal_spread_key_changes_and_keep_other_keys_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyed = CONFIG.replace(keyring=Keyring(KEY))
    with start_node(name="a", bind="127.0.0.1:0", config=keyed) as a:
        monkeypatch.setenv(DRIVER_VARIABLE, "trio")
        with start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=keyed) as b:
            monkeypatch.setenv(DRIVER_VARIABLE, "lean")
            other = CONFIG.replace(keyring=Keyring(OTHER_KEY))
            with start_node(name="c", bind="127.0.0.1:0", seeds=[a.address], config=other) as c:
                wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
                assert a.counters["sealed_packets"] > 0 and a.counters["opened_packets"] > 0
                wait_for(lambda: a.counters["rejected_sealing_unknown_key"] > 0, CONVERGE_BOUND)
                assert a.member("c") is None and [m.name for m in c.members()] == ["c"]
            a._thread.call(lambda node: node.keys and node.keys.install(NEW_KEY))
            keyring = b._thread.call(lambda node: node.keys and node.keys.keyring)
            assert keyring is not None
            wait_for(lambda: NEW_KEY in keyring.keys, CONVERGE_BOUND)


def test_hostile_tcp_input_is_counted_and_the_node_keeps_answering() -> None:
    config = CONFIG.replace(tcp_timeout=0.5)
    with (
        start_node(name="a", bind="127.0.0.1:0", config=config) as a,
        socket.create_connection(a.address) as oversized,
        socket.create_connection(a.address) as stalled,
    ):
        oversized.sendall(struct.pack(">I", 2**31) + b"x")
        stalled.sendall(struct.pack(">I", 100) + b"half")
        wait_for(lambda: a.counters["tcp_oversized_frames"] == 1, 5)
        wait_for(lambda: a.counters["tcp_frame_timeouts"] == 1, 5)
        assert oversized.recv(1) == b"" and stalled.recv(1) == b""  # closed by a
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"\xff garbage", a.address)
        wait_for(lambda: a.counters["udp_packets_received"] >= 1, 5)
        with start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=config) as b:
            wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
        assert a.counters["driver_errors"] == 0


def test_awaiting_what_the_lean_thread_cannot_wait_for_is_refused() -> None:
    with start_node(name="a", bind="127.0.0.1:0", config=CONFIG) as a:
        with pytest.raises(RuntimeError, match="cannot wait for"):
            a._thread.call_async(lambda node: trio.sleep(0))
        assert a.running and a.member("a") is not None


def test_a_node_leaving_alone_stops_within_its_leave_timeout() -> None:
    with blocking_cluster("ab", []) as (a, b):
        start = time.monotonic()
        a._thread.stop()  # b still answers: LEFT spreads, then the thread ends
        assert time.monotonic() - start < 2 * CONFIG.gossip_interval * 10 + 2.0
        assert not a.running
        wait_for(lambda: (m := b.member("a")) is not None and m.status is Status.LEFT, 5)


def test_tls_or_a_transport_of_its_own_keeps_the_trio_driver(tmp_path: Path) -> None:
    tls = Pki(tmp_path).config("a")
    assert type(node_thread("a", {"config": CONFIG.replace(tls=tls)})) is NodeThread
    own = cast(NodeTransport, object())  # never started: only the choice is tested
    assert type(node_thread("a", {"config": CONFIG, "transport": own})) is NodeThread
    assert type(node_thread("a", {"config": CONFIG})) is LeanNodeThread


def test_an_unknown_driver_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DRIVER_VARIABLE, "asyncio")
    with pytest.raises(ValueError, match="'lean' or 'trio'"):
        node_thread("a", {})


def test_a_host_name_is_looked_up_off_the_loop_and_what_waited_for_it_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A seed given by host name: its lookup runs on a thread of its own, so the node keeps
    answering calls while it blocks, and the join frame that waited for it goes out once
    it answers (the lean loop used to block in ``getaddrinfo``)."""
    answer = threading.Event()
    calls_while_blocked: list[bool] = []
    real = transport.resolve_now

    def slow_resolve(host: str, port: int, family: int = 0) -> tuple[int, SockAddr]:
        if host != "seed.invalid":
            return real(host, port, family)
        answered = answer.wait(timeout=10 * CONVERGE_BOUND)
        calls_while_blocked.append(answered)
        return socket.AF_INET, ("127.0.0.1", port)

    monkeypatch.setattr(transport, "resolve_now", slow_resolve)
    with start_node(name="b", bind="127.0.0.1:0", config=CONFIG) as b:
        seed = f"seed.invalid:{b.address[1]}"
        with start_node(name="a", bind="127.0.0.1:0", seeds=[seed], config=CONFIG) as a:
            assert {m.name for m in a.members()} == {"a"}  # answered while the lookup blocks
            assert a.counters["tcp_frames_sent"] == 0  # the join frame waits for the answer
            answer.set()
            wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
    assert calls_while_blocked and all(calls_while_blocked)
