"""``open_node(transport=...)``: the trio driver on an in-memory transport instead of
sockets, timed by ``MockClock`` alone (no sockets, so no ``network`` mark)."""

from __future__ import annotations

import collections

import trio
import trio.testing

from swimactors.membership import MemberLeft, Packet, Status
from swimactors.membership.node import Node, open_node
from swimactors.membership.transport import Deliver, NodeTransport
from swimactors.membership.types import Address
from tests.network.fast import CONFIG


class FakeTransport:
    """Delivers each packet to the transport registered at its destination, in order,
    through that transport's inbox task."""

    def __init__(self, net: dict[Address, FakeTransport], address: Address) -> None:
        self.net = net
        self.address = address
        self.counters: collections.Counter[str] = collections.Counter()
        self.inbox, self._receive = trio.open_memory_channel[tuple[Address, bytes]](1000)
        self.closed = False

    def start(self, nursery: trio.Nursery, deliver: Deliver) -> None:
        self.net[self.address] = self
        nursery.start_soon(self._run, deliver)

    async def _run(self, deliver: Deliver) -> None:
        async for source, data in self._receive:
            deliver(source, data)

    def send(self, packet: Packet) -> None:
        self.counters["fake_reliable_sent" if packet.reliable else "fake_sent"] += 1
        peer = self.net.get(packet.destination)
        if peer is not None:
            peer.inbox.send_nowait((self.address, packet.data))

    async def flush(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.closed = True
        self.net.pop(self.address, None)


def test_open_node_runs_on_a_custom_transport() -> None:
    a_address, b_address = ("10.0.0.1", 7946), ("10.0.0.2", 7946)

    def up(node: Node) -> bool:
        return [m.status for m in node.members()] == [Status.UP, Status.UP]

    async def main() -> None:
        net: dict[Address, FakeTransport] = {}
        a_transport, b_transport = FakeTransport(net, a_address), FakeTransport(net, b_address)
        typed: NodeTransport = a_transport  # mypy checks the fake against the protocol
        async with open_node(name="a", transport=typed, config=CONFIG) as a:
            async with open_node(
                name="b", transport=b_transport, seeds=[a_address], config=CONFIG
            ) as b:
                assert (a.address, b.bound_address) == (a_address, b_address)
                with trio.fail_after(5):
                    while not (up(a) and up(b)):
                        await trio.sleep(0.05)
                assert b.counters["fake_reliable_sent"] >= 1  # the join's push/pull
                assert a.counters["fake_sent"] >= 1  # probes and gossip
                with a.events() as events:
                    await b.leave()
                    with trio.fail_after(5):
                        event = await events.__anext__()
                    assert isinstance(event, MemberLeft) and event.member.name == "b"
            assert b_transport.closed and not a_transport.closed
        assert a_transport.closed and net == {}

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
