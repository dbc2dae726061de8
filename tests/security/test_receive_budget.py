"""Half-sent frames on many connections (a slowloris of big frames): each listener holds
at most its receive budget in frames still arriving, dropping the connections that hold
the most, and a stranger's first frame on the actor port (its HELLO) must be small.

Before: 60 connections each sending 3 MiB of an unfinished frame held 243 MB of a
victim agent's memory on the actor port (with or without a HELLO) and 60 x 15 MiB held
902 MB on the membership TCP port, until each frame's deadline (30 s and 10 s).
"""

from __future__ import annotations

import contextlib
import socket
import struct

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from swimactors import wire
from swimactors.actors import protocol
from swimactors.actors.transport import TransportConfig
from swimactors.membership import start_node
from swimactors.membership.lean import DRIVER_VARIABLE
from swimactors.membership.transport import TransportLimits
from tests.cluster.cluster_helpers import cluster_of, open_systems, until
from tests.fronts.helpers import sees_up, wait_for
from tests.fronts.timing import CONFIG, CONVERGE_BOUND
from tests.security.test_actor_port import Echo, actor_port, closed_by_peer, counter, hello

holds = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 300)), max_size=60)


@given(holds, st.integers(1, 600))
def test_a_budget_never_holds_more_than_its_limit(
    changes: list[tuple[int, int]], limit: int
) -> None:
    budget = wire.ReceiveBudget[int](limit)
    held: dict[int, int] = {}
    for key, size in changes:
        held[key] = size
        for over in budget.hold(key, size):
            assert held[over] == max(held.values())  # the largest holder goes first
            del held[over]
        assert budget.total == sum(held.values()) <= limit


@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 5)), max_size=80),
    st.integers(1, 12),
    st.integers(1, 12),
)
def test_newcomers_stay_bounded_and_the_oldest_makes_room(
    steps: list[tuple[bool, int]], total: int, per_source: int
) -> None:
    """Arrivals (from one of 6 sources) and proofs: never more than the bounds, every
    arrival is admitted, and the one displaced is its source's oldest when that source is
    full, else the oldest of all."""
    newcomers = wire.Newcomers[int](total, per_source)
    waiting: list[tuple[int, str]] = []  # oldest first
    for key, (arrives, n) in enumerate(steps):
        if not arrives:
            if waiting:
                gone = waiting.pop(n % len(waiting))
                newcomers.proven(gone[0])
            continue
        source = f"10.0.0.{n}"
        same = [k for k, s in waiting if s == source]
        expected = same[0] if len(same) >= per_source else None
        if expected is None and len(waiting) >= total:
            expected = waiting[0][0]
        assert newcomers.arrive(key, source) == expected
        waiting = [(k, s) for k, s in waiting if k != expected] + [(key, source)]
        assert len(newcomers) == len(waiting) <= total
        assert all(sum(s == src for _, s in waiting) <= per_source for _, src in waiting)


@given(st.binary(max_size=200), st.integers(1, 64))
def test_only_the_first_frame_has_the_greeting_limit(payload: bytes, cut: int) -> None:
    big = b"x" * 300
    stream = wire.encode_frame(payload) + wire.encode_frame(big)
    decoder = wire.FrameDecoder(1000, first_frame=200)
    frames = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
    assert frames == [payload, big] and decoder.error is None
    refused = wire.FrameDecoder(1000, first_frame=200)
    assert refused.feed(wire.encode_frame(big)) == [] and refused.error is not None


def test_a_stranger_s_big_first_frame_is_refused_before_it_arrives() -> None:
    session = protocol.PeerSession[object]("b", 1, 64, 1 << 20)
    session.receive_data(struct.pack(">I", protocol.MAX_HELLO_FRAME + 1), 0.0)
    with pytest.raises(protocol.ProtocolViolation) as refused:
        session.next_event()
    assert refused.value.counter == "rejected_oversized"


SMALL = TransportConfig(max_frame=256 * 1024, max_receiving_bytes=1024 * 1024)


@pytest.mark.network
async def test_half_sent_frames_on_the_actor_port_hold_at_most_the_budget() -> None:
    with trio.fail_after(30):
        async with open_systems(2, transport=SMALL) as (a, b):
            await b.spawn(Echo(), name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            transport = cluster_of(b).transport
            streams = []
            for n in range(12):  # 12 x 200 KiB of unfinished 256 KiB frames, 1 MiB budget
                stream = await trio.open_tcp_stream(*actor_port(b))
                start = hello(f"visitor{n}") + struct.pack(">I", 256 * 1024)
                await stream.send_all(start + b"\0" * 200 * 1024)
                streams.append(stream)
            await until(lambda: counter(b, "rejected_receive_budget")() >= 7)
            assert transport.receiving.total <= SMALL.max_receiving_bytes
            assert await ref.ask("still answers") == "still answers"
            # no HELLO yet: a first frame bigger than a HELLO is refused at its header
            stranger = await trio.open_tcp_stream(*actor_port(b))
            await stranger.send_all(struct.pack(">I", 200 * 1024) + b"\0" * 1000)
            assert await closed_by_peer(stranger)
            assert counter(b, "rejected_oversized")() == 1
            for stream in streams:
                await stream.aclose()
            await until(lambda: transport.receiving.total == 0)


@pytest.mark.network
@pytest.mark.parametrize("driver", ["lean", "trio"])
def test_half_sent_frames_on_the_membership_port_hold_at_most_the_budget(
    driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DRIVER_VARIABLE, driver)
    frame = 3 * 1024 * 1024  # 16 of them: 48 MiB against a 32 MiB budget
    count = TransportLimits.max_receiving // frame + 6
    with start_node(name="a", bind="127.0.0.1:0", config=CONFIG) as a:
        attackers = [socket.create_connection(a.address) for _ in range(count)]
        try:
            for sock in attackers:
                sock.settimeout(5.0)
                with contextlib.suppress(OSError):  # dropped by the budget while sending
                    sock.sendall(struct.pack(">I", 15 * 1024 * 1024) + b"\0" * frame)
            wait_for(lambda: a.counters["tcp_receive_budget"] >= 5, 10)
            with start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=CONFIG) as b:
                wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
        finally:
            for sock in attackers:
                sock.close()


@pytest.mark.network
@pytest.mark.parametrize("driver", ["lean", "trio"])
def test_idle_connections_cannot_lock_the_membership_port(
    driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most 64 connections per address, each closed unless its first frame arrives
    within ``tcp_timeout`` (before: 1,024 silent connections from anyone held every place
    for 60 s, refusing peers' push/pull, so nobody could join)."""
    monkeypatch.setenv(DRIVER_VARIABLE, driver)
    config = CONFIG.replace(tcp_timeout=0.5)
    per_address = TransportLimits.max_incoming_per_address
    with start_node(name="a", bind="127.0.0.1:0", config=config) as a:
        silent = [socket.create_connection(a.address) for _ in range(per_address + 6)]
        try:
            wait_for(lambda: a.counters["tcp_connections_refused"] == 6, 5)
            wait_for(lambda: a.counters["tcp_frame_timeouts"] == per_address, 5)
            with start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=config) as b:
                wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
        finally:
            for sock in silent:
                sock.close()
