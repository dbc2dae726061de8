"""The lean driver wakes only for work: over a simulated minute of steady state, every
return of its loop's wait hands it a ready socket or comes when a deadline of its own is
due.  The lean node runs its real loop on real loopback sockets; its clock is a virtual
one, and three peers (sans-IO cores on sockets of their own) are driven from inside its
wait, which jumps the clock to the next deadline, the node's or a peer's, the way trio's
MockClock jumps when every task sleeps."""

from __future__ import annotations

import math
import random
import select
import socket
import threading
from typing import Any

import pytest

from swimactors.membership import Config, Member, Status
from swimactors.membership import lean as lean_module
from swimactors.membership.core import FormedCluster, Swim
from swimactors.membership.lean import LeanNode, LeanNodeThread
from swimactors.membership.poller import Poller

pytestmark = pytest.mark.network

CONFIG = Config.lan().replace(probe_interval=0.2, probe_timeout=0.1, push_pull_interval=3600.0)
"""The benchmarks' fast profile; no push/pull in the minute (the peers have no TCP)."""
PEERS = 3
WARM_UP, STEADY = 5.0, 60.0


class Clock:
    """The virtual clock: the lean node reads it, the harness moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def read(self) -> float:
        return self.now


class Harness:
    """Drives the peers and the clock from inside the lean node's wait, and counts."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.thread: LeanNodeThread | None = None
        self.socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(PEERS)]
        for sock in self.socks:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
        self.peers = [
            Swim(f"p{i}", sock.getsockname(), CONFIG, random.Random(i), incarnation=1)
            for i, sock in enumerate(self.socks)
        ]
        self.formed = False
        self.sent_to_node = 0
        self.heard_from_node = 0
        self.counting = False
        self.minute_done = threading.Event()
        self.wake_ups = 0
        self.empty = 0
        self.work = 0
        self._work_before = -1
        self.probes = 0

    # -- the lean node's wait -------------------------------------------------------------

    def wait(self, epoll: select.epoll, timeout: float) -> list[tuple[int, int]]:
        """What the node's ``epoll.poll(timeout)`` returns, in virtual time."""
        self._judge_last_wake_up()
        if not self.formed:
            self._form()
        # epoll rounds a timeout up to whole milliseconds; so does the virtual one
        wake_at = math.inf if timeout < 0 else self.clock.now + math.ceil(timeout * 1000) / 1000
        while True:
            ready = self._ready(epoll)
            if ready:
                return self._woken(ready)
            due = min(peer.next_deadline() or math.inf for peer in self.peers)
            if wake_at <= due:
                self.clock.now = max(self.clock.now, wake_at)
                return self._woken([])
            self.clock.now = max(self.clock.now, due)
            for peer in self.peers:
                deadline = peer.next_deadline()
                if deadline is not None and deadline <= self.clock.now:
                    peer.tick(self.clock.now)
                self._flush(peer)
            self._keep_time()

    def _ready(self, epoll: select.epoll) -> list[tuple[int, int]]:
        """The node's ready sockets once every datagram in flight has landed: what the
        node sent is read by the peers (and answered), what they sent waits on its socket."""
        node = self._node()
        while self.heard_from_node < node._sockets.counters["udp_packets_sent"]:
            readable, _, _ = select.select(self.socks, [], [], 5.0)
            assert readable, "a datagram the node sent never arrived"
            for sock in readable:
                self._read_peer(sock)
        unread = self.sent_to_node - node._sockets.counters["udp_packets_received"]
        return epoll.poll(5.0 if unread else 0)

    def _read_peer(self, sock: socket.socket) -> None:
        index = self.socks.index(sock)
        while True:
            try:
                data, source = sock.recvfrom(65536)
            except BlockingIOError:
                return
            self.heard_from_node += 1
            self.peers[index].receive(self.clock.now, source, data)
            self._flush(self.peers[index])

    def _flush(self, peer: Swim) -> None:
        """Send what a peer has to say: to the node by its socket, to another peer at once."""
        sock = self.socks[self.peers.index(peer)]
        by_address = {other.address: other for other in self.peers}
        for packet in peer.take_outgoing():
            if packet.reliable:  # (no push/pull in this minute)
                continue
            other = by_address.get(packet.destination)
            if other is None:
                sock.sendto(packet.data, packet.destination)
                self.sent_to_node += 1
            else:
                other.receive(self.clock.now, peer.address, packet.data)
                self._flush(other)
        peer.take_events()

    def _woken(self, ready: list[tuple[int, int]]) -> list[tuple[int, int]]:
        self.wake_ups += self.counting
        self._work_before = self.work if not ready else -1
        return ready

    def _judge_last_wake_up(self) -> None:
        """A wake-up with nothing ready must have ticked the core at a due timer, which
        then lies behind it (the steady state has no TCP connection, so no other deadline)."""
        if self._work_before >= 0:
            deadline = self._node()._core.next_deadline()
            if self.work == self._work_before or (
                deadline is not None and deadline <= self.clock.now
            ):
                self.empty += 1
                if self.empty > 100:  # a loop waking for nothing may never reach the minute's end
                    self.minute_done.set()
        self._work_before = -1

    def _keep_time(self) -> None:
        start = 1000.0 + WARM_UP
        if not self.counting and start <= self.clock.now < start + STEADY:
            self.counting = True
            self.probes = -self._node()._core.counters["probes"]
        elif self.counting and self.clock.now >= start + STEADY:
            self.counting = False
            self.probes += self._node()._core.counters["probes"]
            self.minute_done.set()

    # -- set-up --------------------------------------------------------------------------

    def _node(self) -> LeanNode:
        assert self.thread is not None and self.thread._node is not None
        return self.thread._node

    def _form(self) -> None:
        """Every core starts from the same formed cluster (no join, no gossip to drain)."""
        node = self._node()
        core = node._core
        cores = [core, *self.peers]
        members = [Member(c.name, c.address, c.incarnation, Status.UP, b"") for c in cores]
        formed = FormedCluster(members, self.clock.now)
        for each in cores:
            each.assume_formed(formed, self.clock.now)
        core.tick = self._counted(core.tick)  # type: ignore[method-assign]
        self.formed = True

    def _counted(self, method: Any) -> Any:
        def counted(*args: Any) -> Any:
            self.work += 1
            return method(*args)

        return counted

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def test_every_wake_up_of_a_steady_lean_node_handles_a_socket_or_a_due_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    harness = Harness(clock)

    class VirtualPoller(Poller):
        def __init__(self) -> None:
            super().__init__()
            epoll = self._epoll
            assert epoll is not None
            self.wait = lambda timeout: harness.wait(epoll, timeout)

    monkeypatch.setattr(lean_module, "Poller", VirtualPoller)
    monkeypatch.setattr(LeanNode, "_now", staticmethod(clock.read))
    thread = harness.thread = LeanNodeThread("n", {"bind": "127.0.0.1:0", "config": CONFIG})
    try:
        thread.start(timeout=10)
        assert harness.minute_done.wait(timeout=60), "the virtual minute did not pass"
    finally:
        thread.stop(timeout=10)
        harness.close()
    core = thread._node._core if thread._node is not None else None
    assert core is not None and core.counters["probe_failures"] == 0
    assert harness.empty == 0, f"{harness.empty} wake-ups did nothing"
    expected = STEADY / CONFIG.probe_interval
    assert expected * 0.95 <= harness.probes <= expected * 1.05
    # a probe period: a wake-up to send the ping, one for its ack, and about one for a
    # peer's ping (each of the four nodes probes once a period)
    assert harness.wake_ups <= harness.probes * 3.3
