"""The second engine: real trio code on a simulated network under
``trio.testing.MockClock``: membership nodes (``open_sim_node``) and whole actor systems
(``open_system(environment=SimNet.environment(...))``).

Membership nodes alone are deterministic by construction: every random draw of the
network comes from a stream of the *sending* node (``per_source``), each node's core has
its own stream, deliveries due at the same instant are ordered by ``(time, sender,
sender's sequence number)``, and the trace is hashed per node and combined in name order,
so the order in which trio runs tasks woken at the same instant cannot change the run.
Actor systems run many tasks whose order does matter: :func:`deterministic_scheduling`
seeds trio's scheduler for them.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import heapq
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..cluster.system import Environment
from ..membership.config import Config
from ..membership.node import Node, open_node
from ..membership.types import Address, Packet
from .network import LinkModel, Network
from .rng import Streams
from .world import EPHEMERAL_PORT

__all__ = [
    "ACTOR_PORT",
    "SimActorNetwork",
    "SimNet",
    "SimTransport",
    "deterministic_scheduling",
    "open_sim_node",
]

ACTOR_PORT = 7947
"""The actor port a simulated system listens on when it asks for any free one."""


@contextlib.contextmanager
def deterministic_scheduling(seed: int) -> Iterator[None]:
    """Make trio run tasks woken at the same moment in an order drawn from ``seed``, for
    the ``trio.run`` inside the block: the order of each batch of runnable tasks is then
    a function of their creation order and the seed (trio's own hook for Hypothesis,
    which reaches into ``trio._core._run``; checked to exist, so a trio without it fails
    here rather than replaying wrong)."""
    run_module = getattr(getattr(trio, "_core", None), "_run", None)
    if (
        run_module is None
        or not hasattr(run_module, "_r")
        or not hasattr(run_module, "_ALLOW_DETERMINISTIC_SCHEDULING")
    ):
        raise RuntimeError(f"trio {trio.__version__} has no deterministic scheduling hook")
    previous = run_module._ALLOW_DETERMINISTIC_SCHEDULING, run_module._r.getstate()
    run_module._ALLOW_DETERMINISTIC_SCHEDULING = True
    run_module._r.seed(seed)
    try:
        yield
    finally:
        run_module._ALLOW_DETERMINISTIC_SCHEDULING = previous[0]
        run_module._r.setstate(previous[1])


Deliver = Callable[[Address, bytes], None]


class SimTransport:
    """A :class:`~swimactors.membership.transport.NodeTransport` for ``open_node``: the
    node's packets go to the :class:`SimNet`, which calls ``deliver`` when they arrive."""

    def __init__(self, net: SimNet, name: str, address: Address) -> None:
        self.net = net
        self.name = name
        self.address = address
        self.counters: Counter[str] = Counter()
        self.deliver: Deliver | None = None
        self.sent = 0

    def start(self, nursery: trio.Nursery, deliver: Deliver) -> None:
        self.deliver = deliver
        self.net.attach(self)

    def send(self, packet: Packet) -> None:
        self.net.send(self, packet)

    async def flush(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        self.net.detach(self)


class _SimListener(trio.abc.Listener[trio.abc.Stream]):
    """A node's actor listener on the :class:`SimNet`: accepts what peers connect."""

    def __init__(self) -> None:
        self.incoming, self._accepted = trio.open_memory_channel[trio.abc.Stream](math.inf)

    async def accept(self) -> trio.abc.Stream:
        try:
            return await self._accepted.receive()
        except trio.EndOfChannel:
            raise trio.ClosedResourceError("listener closed") from None

    async def aclose(self) -> None:
        self.incoming.close()
        await trio.lowlevel.checkpoint()


class _Pipe:
    """One direction of a simulated connection: bytes in flight, each chunk due when the
    network model delivers a reliable frame of its size (latency, jitter and TCP's
    retransmissions of lost segments), never before the bytes sent earlier."""

    def __init__(self, net: SimNet, sender: str, receiver: str) -> None:
        self.net, self.sender, self.receiver = net, sender, receiver
        self.in_flight: collections.deque[tuple[float, bytes]] = collections.deque()
        self.last_due = 0.0
        self.finished = False
        """The sender closed: the receiver reads what is in flight, then end of file."""
        self.reset = False
        self.changed = trio.Event()

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def push(self, data: bytes) -> bool:
        """Put ``data`` in flight; False when a link rule drops it (a failed connection)."""
        now = trio.current_time()
        route = self.net.network.route(now, self.sender, self.receiver, len(data), True)
        self.net._trace(self.sender, f"{now!r} stream {self.receiver} {route.dropped}", data)
        if route.dropped is not None or not route.deliveries:
            return False
        self.last_due = max(self.last_due, route.deliveries[0])
        self.in_flight.append((self.last_due, data))
        self.notify()
        return True


class _SimStream(trio.abc.Stream):
    """One end of a simulated actor connection."""

    def __init__(self, outgoing: _Pipe, incoming: _Pipe) -> None:
        self.outgoing, self.incoming = outgoing, incoming
        self.closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise trio.ClosedResourceError("stream closed")
        if self.outgoing.reset or self.outgoing.finished:
            raise trio.BrokenResourceError("connection reset")
        if not self.outgoing.push(bytes(data)):
            for pipe in (self.outgoing, self.incoming):
                pipe.reset = True
                pipe.notify()
            raise trio.BrokenResourceError("connection reset by a link rule")

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        pipe = self.incoming
        while True:
            if self.closed:
                raise trio.ClosedResourceError("stream closed")
            if pipe.reset:
                raise trio.BrokenResourceError("connection reset")
            if pipe.in_flight:
                due, data = pipe.in_flight[0]
                if due <= trio.current_time():
                    pipe.in_flight.popleft()
                    if max_bytes is not None and len(data) > max_bytes:
                        pipe.in_flight.appendleft((due, data[max_bytes:]))
                        data = data[:max_bytes]
                    await trio.lowlevel.checkpoint()
                    return data
                with trio.move_on_at(due):
                    await pipe.changed.wait()
            elif pipe.finished:
                await trio.lowlevel.checkpoint()
                return b""
            else:
                await pipe.changed.wait()

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.outgoing.finished = True
            self.outgoing.notify()
            self.incoming.notify()
        await trio.lowlevel.checkpoint()


@attrs.frozen
class _Link:
    """An actor connection between two nodes of a :class:`SimNet`."""

    client: str
    server: str
    pipes: tuple[_Pipe, _Pipe]

    @property
    def done(self) -> bool:
        """Both ends closed or reset: nothing left to break."""
        return all(pipe.finished or pipe.reset for pipe in self.pipes)

    def reset(self) -> None:
        for pipe in self.pipes:
            pipe.reset = True
            pipe.notify()


class SimActorNetwork:
    """A :class:`~swimactors.actors.transport.ActorNetwork` on the :class:`SimNet`:
    streams whose bytes arrive as the network model delivers reliable frames (in order),
    refused to or from a crashed node or across a partition, reset when either happens to
    an open one or a link rule drops a segment."""

    def __init__(self, net: SimNet, name: str) -> None:
        self.net = net
        self.name = name

    async def listen(self, host: str, port: int) -> tuple[trio.abc.Listener[Any], int]:
        port = port or ACTOR_PORT
        listener = _SimListener()
        self.net._listeners[(host, port)] = (self.name, listener)
        return listener, port

    async def connect(self, address: Address) -> trio.abc.Stream:
        await trio.sleep(self.net.network.default.latency)  # the SYN's trip
        target = self.net._listeners.get(address)
        if target is None or not self.net._reachable(self.name, target[0]):
            raise OSError(f"{self.name}: connection to {address} refused")
        there, back = _Pipe(self.net, self.name, target[0]), _Pipe(self.net, target[0], self.name)
        client, server = _SimStream(there, back), _SimStream(back, there)
        self.net._links = [link for link in self.net._links if not link.done]
        self.net._links.append(_Link(self.name, target[0], (there, back)))
        try:
            target[1].incoming.send_nowait(server)
        except trio.ClosedResourceError:
            raise OSError(f"{self.name}: connection to {address} refused") from None
        return client


class SimNet:
    """The simulated network of the trio engine; run :meth:`serve` in a nursery."""

    def __init__(self, seed: int, link: LinkModel | None = None, max_datagram: int = 1400) -> None:
        self.seed = seed
        self.streams = Streams(seed)
        self.network = Network(self.streams, link, max_datagram, per_source=True)
        self.dropped: Counter[str] = Counter()
        self.delivered = 0
        self._endpoints: dict[Address, SimTransport] = {}
        self._names: dict[Address, str] = {}
        self._queue: list[tuple[float, str, int, Address, Address, bytes]] = []
        self._changed = trio.Event()
        self._traces: dict[str, Any] = {}
        self._listeners: dict[Address, tuple[str, _SimListener]] = {}
        self._links: list[_Link] = []
        self._cuts: list[tuple[frozenset[str], frozenset[str]]] = []
        self.crashed: set[str] = set()

    def crash(self, name: str) -> None:
        """From now on nothing ``name`` sends leaves it and nothing reaches it: to the
        rest of the cluster it crashed (its task may keep running, unheard); its actor
        connections break."""
        self.crashed.add(name)
        self._break(lambda link: name in (link.client, link.server))

    def partition(self, side_a: Sequence[str], side_b: Sequence[str]) -> None:
        """Cut the network between two groups of node names: datagrams and frames are
        dropped, actor connections across break and new ones are refused."""
        a, b = frozenset(side_a), frozenset(side_b)
        self.network.partition(a, b)
        self._cuts.append((a, b))
        self._break(lambda link: self._cut(link.client, link.server))

    def heal(self) -> None:
        """Remove every partition."""
        self.network.heal()
        self._cuts.clear()

    def _cut(self, one: str, other: str) -> bool:
        return any((one in a and other in b) or (one in b and other in a) for a, b in self._cuts)

    def _reachable(self, one: str, other: str) -> bool:
        return one not in self.crashed and other not in self.crashed and not self._cut(one, other)

    def _break(self, broken: Callable[[_Link], bool]) -> None:
        """Reset the actor connections ``broken`` picks, both ways."""
        kept = []
        for link in self._links:
            if broken(link):
                link.reset()
            else:
                kept.append(link)
        self._links = kept

    def environment(self, name: str, address: Address, incarnation: int = 0) -> Environment:
        """What ``open_system(environment=...)`` needs to run a whole actor system as node
        ``name`` at ``address`` on this network, replaying from the seed."""
        return Environment(
            node_transport=SimTransport(self, name, address),
            actor_network=SimActorNetwork(self, name),
            incarnation=incarnation,
            rng=self.streams.get(f"node/{name}"),
            clock=trio.current_time,
        )

    def attach(self, endpoint: SimTransport) -> None:
        """Deliver packets for ``endpoint``'s address to it."""
        self._endpoints[endpoint.address] = endpoint
        self._names[endpoint.address] = endpoint.name

    def detach(self, endpoint: SimTransport) -> None:
        """Stop delivering to ``endpoint`` (its node stopped)."""
        if self._endpoints.get(endpoint.address) is endpoint:
            del self._endpoints[endpoint.address]

    def _trace(self, name: str, text: str, data: bytes = b"") -> None:
        digest = self._traces.get(name)
        if digest is None:
            digest = self._traces[name] = hashlib.blake2b(digest_size=16)
        digest.update(text.encode())
        digest.update(data)

    def send(self, source: SimTransport, packet: Packet) -> None:
        """Route ``packet`` through the network model: dropped and counted, or delivered at
        its arrival times."""
        now = trio.current_time()
        source.sent += 1
        dst_name = self._names.get(packet.destination, "?")
        route = self.network.route(now, source.name, dst_name, len(packet.data), packet.reliable)
        if source.name in self.crashed or dst_name in self.crashed:
            self.dropped["node_down"] += 1
            return
        if dst_name == "?":
            self.dropped["no_route"] += 1
        elif route.dropped is not None:
            self.dropped[route.dropped] += 1
        else:
            origin = (source.address[0], EPHEMERAL_PORT) if packet.reliable else source.address
            for arrival in route.deliveries:
                entry = (arrival, source.name, source.sent, packet.destination, origin, packet.data)
                heapq.heappush(self._queue, entry)
            self._changed.set()
        self._trace(source.name, f"{now!r} send {dst_name} {route.dropped}", packet.data)

    async def serve(self) -> None:
        """Deliver packets at their arrival times, forever."""
        while True:
            if not self._queue:
                await self._changed.wait()
                self._changed = trio.Event()
                continue
            due = self._queue[0][0]
            if due > trio.current_time():
                with trio.move_on_at(due):
                    await self._changed.wait()
                self._changed = trio.Event()
                continue
            arrival, sender, sequence, destination, origin, data = heapq.heappop(self._queue)
            endpoint = self._endpoints.get(destination)
            if endpoint is None or endpoint.deliver is None:
                self.dropped["node_down"] += 1
                continue
            self.delivered += 1
            self._trace(endpoint.name, f"{arrival!r} from {sender}#{sequence}")
            endpoint.deliver(origin, data)
            await trio.lowlevel.checkpoint()

    @property
    def trace_hash(self) -> str:
        combined = hashlib.blake2b(digest_size=16)
        for name in sorted(self._traces):
            combined.update(name.encode() + self._traces[name].digest())
        return combined.hexdigest()


@asynccontextmanager
async def open_sim_node(
    net: SimNet,
    *,
    name: str,
    address: Address,
    seeds: Sequence[Address] = (),
    config: Config | None = None,
    meta: bytes = b"",
    incarnation: int = 0,
    leave_timeout: float = 2.0,
) -> AsyncIterator[Node]:
    """Run a trio membership node on ``net`` for the life of the block (``open_node`` on a
    :class:`SimTransport`); leaving the block leaves gracefully, :meth:`SimNet.crash`
    makes it a crash."""
    async with open_node(
        name=name,
        seeds=seeds,
        config=config,
        meta=meta,
        rng=net.streams.get(f"node/{name}"),
        leave_timeout=leave_timeout,
        incarnation=incarnation,
        transport=SimTransport(net, name, address),
        clock=trio.current_time,
    ) as node:
        yield node
