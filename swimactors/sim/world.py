"""The discrete-event loop: a heap of timestamped deliveries, timers and actions
driving many sans-IO cores in one thread, with no clock but its own.

Determinism: every random draw comes from a named sub-stream of the seed, heap ties
are broken by insertion order, and nothing iterates an unordered container, so the
same seed and the same scenario give the same trace hash.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ..errors import SwimactorsError
from ..membership.config import Config
from ..membership.core import FormedCluster
from ..membership.types import Address, Member, MemberEvent, Packet, Status
from .network import LinkModel, Network
from .node import INBOX_LIMIT, Core, CoreFactory, NodeSpec, NodeState, SimNode
from .rng import Streams
from .starvation import Cpu, Starvation
from .trace import Trace

__all__ = ["EPHEMERAL_PORT", "Fault", "PacketRecord", "SimulationError", "World", "swim_factory"]

EPHEMERAL_PORT = 49152
"""Source port of reliable-channel frames (a TCP client's port is not the node's)."""

_DELIVER, _TIMER, _ACTION, _SERVED = 0, 1, 2, 3
SPIN_LIMIT = 1000
"""Ticks at one instant after which a core whose deadline never moves is reported."""


class SimulationError(SwimactorsError, RuntimeError):
    """The simulation cannot go on (misuse, or a core that breaks the contract)."""


@attrs.frozen
class Fault:
    """A change to the world: a node fault, a partition, a heal, a link change."""

    time: float
    kind: str
    nodes: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    value: float = 0.0


@attrs.frozen
class PacketRecord:
    """One packet as sent, with its fate (``dropped`` is None when it was delivered)."""

    time: float
    src: str
    dst: str
    data: bytes
    reliable: bool
    copies: int
    dropped: str | None


EventObserver = Callable[[str, MemberEvent], None]
PacketObserver = Callable[[PacketRecord], None]
FaultObserver = Callable[[Fault], None]


def swim_factory(spec: NodeSpec, rng: random.Random, incarnation: int) -> Core:
    """Build the real ``swimactors.membership.Swim`` core."""
    from ..membership import Swim

    core: Core = Swim(
        name=spec.name,
        address=spec.address,
        config=spec.config,
        rng=rng,
        meta=spec.meta,
        incarnation=incarnation,
    )
    return core


def address_for(index: int) -> Address:
    """The address given to the ``index``-th node: 10.x.y.z:7946."""
    number = index + 1
    return (f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}", 7946)


class World:
    """A simulated cluster: nodes, network, faults, observers and the event loop."""

    def __init__(
        self,
        seed: int = 0,
        *,
        config: Config | None = None,
        link: LinkModel | None = None,
        max_datagram: int | None = None,
        core_factory: CoreFactory | None = None,
        keep_trace: bool = False,
    ) -> None:
        self.seed = seed
        self.config = config or Config.lan()
        self.streams = Streams(seed)
        self.network = Network(self.streams, link, max_datagram or self.config.packet_budget)
        self.trace = Trace(keep=keep_trace)
        self.core_factory = core_factory or swim_factory
        self.now = 0.0
        self.nodes: dict[str, SimNode] = {}
        self.faults: list[Fault] = []
        self.dropped: Counter[str] = Counter()
        self.packets_sent = 0
        self._by_address: dict[Address, SimNode] = {}
        self._queue: list[tuple[Any, ...]] = []
        self._seq = itertools.count()
        self._event_observers: list[EventObserver] = []
        self._packet_observers: list[PacketObserver] = []
        self._fault_observers: list[FaultObserver] = []

    # -- observers -------------------------------------------------------------------------

    def on_event(self, observer: EventObserver) -> None:
        """Call ``observer(node_name, event)`` for every membership event of every node."""
        self._event_observers.append(observer)

    def on_packet(self, observer: PacketObserver) -> None:
        """Call ``observer(record)`` for every packet sent (delivered or dropped)."""
        self._packet_observers.append(observer)

    def on_fault(self, observer: FaultObserver) -> None:
        """Call ``observer(fault)`` for every node fault, partition, heal or link change."""
        self._fault_observers.append(observer)

    # -- nodes -----------------------------------------------------------------------------

    def add_node(
        self,
        name: str | None = None,
        *,
        address: Address | None = None,
        config: Config | None = None,
        meta: bytes = b"",
        seeds: Sequence[Address] | None = None,
        join_at: float | None = None,
    ) -> SimNode:
        """Start a node now and have it join ``seeds`` (default: the first node) at ``join_at``."""
        index = len(self.nodes)
        name = name if name is not None else f"n{index}"
        address = address or address_for(index)
        self._check_free(name, address)
        if seeds is None:
            seeds = [self.nodes[next(iter(self.nodes))].address] if self.nodes else []
        node = self._register(NodeSpec(name, address, config or self.config, meta, tuple(seeds)))
        self._fault("start", (name,))
        self._start(node, join_at)
        return node

    def add_nodes(self, count: int, stagger: float = 0.0, **options: Any) -> list[SimNode]:
        """Add ``count`` nodes joining ``stagger`` seconds apart (same options for each)."""
        first = self.now
        return [self.add_node(join_at=first + i * stagger, **options) for i in range(count)]

    def add_formed(
        self, count: int, *, config: Config | None = None, meta: bytes = b""
    ) -> list[SimNode]:
        """Add ``count`` nodes that start as a cluster already converged (each knows every
        other UP, nothing left to gossip): the warm start for runs about a formed cluster.
        Their seed, for a later restart, is the first of them."""
        first = len(self.nodes)
        seeds = (address_for(first),)
        specs = [
            NodeSpec(f"n{index}", address_for(index), config or self.config, meta, seeds)
            for index in range(first, first + count)
        ]
        for spec in specs:
            self._check_free(spec.name, spec.address)
        members = [Member(s.name, s.address, 0, Status.UP, s.meta) for s in specs]
        formed = FormedCluster(members, self.now)
        nodes = [self._register(spec) for spec in specs]
        self._fault("formed", tuple(spec.name for spec in specs))
        for node in nodes:
            node.core.assume_formed(formed, node.now(self.now))
            self._pump(node)
        return nodes

    def _check_free(self, name: str, address: Address) -> None:
        if name in self.nodes:
            raise SimulationError(f"a node called {name!r} already exists")
        if address in self._by_address:
            raise SimulationError(f"address {address!r} is already taken")

    def _register(self, spec: NodeSpec) -> SimNode:
        """Build ``spec``'s core from its random stream and add the node (not started)."""
        core = self.core_factory(spec, self.streams.get(f"node/{spec.name}"), 0)
        node = SimNode(spec, core, len(self.nodes))
        self.nodes[spec.name] = node
        self._by_address[spec.address] = node
        return node

    def node(self, name: str) -> SimNode:
        """The node called ``name`` (SimulationError if there is none)."""
        try:
            return self.nodes[name]
        except KeyError:
            raise SimulationError(f"no node called {name!r}") from None

    def alive_nodes(self) -> list[SimNode]:
        """Nodes whose process exists (running or paused)."""
        return [node for node in self.nodes.values() if node.alive]

    def _start(self, node: SimNode, join_at: float | None) -> None:
        seeds = [seed for seed in node.spec.seeds if seed != node.address]

        def join() -> None:
            if node.state is NodeState.RUNNING:
                if seeds:
                    node.core.join(seeds, node.now(self.now))
                self._pump(node)

        if join_at is None or join_at <= self.now:
            join()
        else:
            self.at(join_at, join)

    # -- faults ----------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        """Kill the process: no more timers or packets, state lost."""
        node = self.node(name)
        if not node.alive:
            return
        node.state = NodeState.CRASHED
        node.timer_generation += 1
        node.timer_local = None
        node.inbox.clear()
        if node.cpu is not None:
            node.cpu.waiting.clear()
        self._fault("crash", (name,))

    def restart(self, name: str, seeds: Sequence[Address] | None = None) -> SimNode:
        """Start a crashed or departed node again: same name and address, a fresh core whose
        incarnation comes from the simulated time (milliseconds), so it outranks the old one."""
        node = self.node(name)
        if node.alive:
            raise SimulationError(f"node {name!r} is still running")
        incarnation = int(self.now * 1000) + 1
        node.retired_cores.append(node.core)
        node.core = self.core_factory(node.spec, self.streams.fresh(f"node/{name}"), incarnation)
        node.state = NodeState.RUNNING
        node.leaving = False
        node.timer_lag = node.receive_lag = 0.0
        node.timer_local = None
        node.timer_generation += 1
        if seeds is not None:
            node.spec = attrs.evolve(node.spec, seeds=tuple(seeds))
        elif not [seed for seed in node.spec.seeds if seed != node.address]:
            others = [n.address for n in self.alive_nodes() if n is not node]
            node.spec = attrs.evolve(node.spec, seeds=tuple(others[:1]))
        self._fault("restart", (name,), value=incarnation)
        self._start(node, None)
        return node

    def pause(self, name: str, duration: float | None = None) -> None:
        """Freeze the node (GC pause, SIGSTOP): nothing runs; datagrams queue in its inbox."""
        node = self.node(name)
        if node.state is not NodeState.RUNNING:
            return
        node.state = NodeState.PAUSED
        node.timer_generation += 1
        node.timer_local = None
        self._fault("pause", (name,), value=duration or 0.0)
        if duration is not None:
            self.after(duration, lambda: self.resume(name))

    def resume(self, name: str) -> None:
        """Thaw a paused node: it handles its queued packets, then its overdue timers."""
        node = self.node(name)
        if node.state is not NodeState.PAUSED:
            return
        node.state = NodeState.RUNNING
        self._fault("resume", (name,))
        while node.inbox and node.state is NodeState.RUNNING:
            source, data = node.inbox.popleft()
            node.core.receive(node.now(self.now), source, data)
        self._pump(node)

    def slow(self, name: str, lag: float, receive_lag: float | None = None) -> None:
        """Starve the node: its timers fire ``lag`` seconds late and its packets are handled
        ``receive_lag`` (default: ``lag``) seconds late; ``slow(name, 0)`` heals it."""
        receive_lag = lag if receive_lag is None else receive_lag
        if lag < 0 or receive_lag < 0:
            raise ValueError("lag and receive_lag must be >= 0")
        node = self.node(name)
        node.timer_lag, node.receive_lag = lag, receive_lag
        self._fault("slow", (name,), value=max(lag, receive_lag))
        self._reschedule(node)

    def starve(self, name: str, model: Starvation | None = None) -> None:
        """Starve the node's CPU (see :mod:`.starvation`; default ``Starvation()``): its
        inputs queue for a CPU of finite speed that stalls at random; :meth:`feed` ends it."""
        node = self.node(name)
        model = model or Starvation()
        if node.cpu is None:
            node.cpu = Cpu(model, self.streams.get(f"starve/{name}"), self.now)
        else:
            node.cpu.model = model
        self._fault("starve", (name,), value=model.service)

    def feed(self, name: str) -> None:
        """End a node's starvation: what waits for its CPU is handled now, in order."""
        node = self.node(name)
        cpu, node.cpu = node.cpu, None
        if cpu is None:
            return
        self._fault("feed", (name,))
        for entry in cpu.waiting:
            heapq.heappush(self._queue, (self.now, next(self._seq), *entry[2:]))

    def drift(self, name: str, drift: float) -> None:
        """Make the node's clock run at ``1 + drift`` times real speed from now on."""
        node = self.node(name)
        node.clock.set_drift(self.now, drift)
        self._fault("drift", (name,), value=drift)
        self._reschedule(node)

    def leave(self, name: str) -> None:
        """Graceful leave; the node stops once its core reports ``leave_finished``."""
        node = self.node(name)
        if node.state is not NodeState.RUNNING:
            return
        node.leaving = True
        self._fault("leave", (name,))
        node.core.leave(node.now(self.now))
        self._pump(node)

    def partition(
        self, side_a: Iterable[str], side_b: Iterable[str], one_way: bool = False
    ) -> list[int]:
        """Cut the network between two groups (only ``a -> b`` when ``one_way``)."""
        a, b = tuple(side_a), tuple(side_b)
        self._fault("partition_one_way" if one_way else "partition", a, b)
        return self.network.partition(a, b, one_way)

    def heal(self) -> None:
        """Remove every partition."""
        self.network.heal()
        self._fault("heal")

    def set_link(self, model: LinkModel, src: str | None = None, dst: str | None = None) -> None:
        """Change the default link model, or one link's (both ways) when names are given."""
        if src is None or dst is None:
            self.network.default = model
            self._fault("link", value=model.loss)
        else:
            self.network.set_link(src, dst, model)
            self._fault("link", (src,), (dst,), value=model.loss)

    def _fault(
        self,
        kind: str,
        nodes: tuple[str, ...] = (),
        peers: tuple[str, ...] = (),
        value: float = 0.0,
    ) -> None:
        fault = Fault(self.now, kind, nodes, peers, value)
        self.faults.append(fault)
        self.trace.record(self.now, f"fault {kind} {','.join(nodes)} {','.join(peers)} {value!r}")
        for observer in self._fault_observers:
            observer(fault)

    # -- scheduling ------------------------------------------------------------------------

    def at(self, time: float, action: Callable[[], object]) -> None:
        """Run ``action()`` at simulated ``time`` (now, if that is past)."""
        heapq.heappush(self._queue, (max(time, self.now), next(self._seq), _ACTION, action))

    def after(self, delay: float, action: Callable[[], object]) -> None:
        """Run ``action`` ``delay`` simulated seconds from now."""
        self.at(self.now + delay, action)

    def run_until(
        self,
        until: float | Callable[[], bool],
        deadline: float | None = None,
        poll: float | None = None,
    ) -> bool:
        """Run to simulated time ``until``, or until ``until()`` holds (checked after every
        event, or every ``poll`` simulated seconds) but no later than ``deadline``.
        Returns whether the predicate held (always True for a time)."""
        if callable(until):
            if deadline is None:
                raise TypeError("run_until(predicate) needs a deadline")
            predicate: Callable[[], bool] | None = until
            stop = deadline
        else:
            predicate, stop = None, float(until)
        if predicate is not None and predicate():
            return True
        next_check = self.now + poll if poll else self.now
        queue = self._queue
        dispatch = self._dispatch
        while queue and queue[0][0] <= stop:
            entry = heapq.heappop(queue)
            self.now = entry[0]
            dispatch(entry)
            if predicate is not None and self.now >= next_check:
                if predicate():
                    return True
                if poll:
                    next_check = self.now + poll
        self.now = max(self.now, stop)
        return predicate() if predicate is not None else True

    def run_for(self, seconds: float) -> None:
        """Advance simulated time by ``seconds``."""
        self.run_until(self.now + seconds)

    # -- the loop --------------------------------------------------------------------------

    def _dispatch(self, entry: tuple[Any, ...]) -> None:
        kind = entry[2]
        if kind in (_DELIVER, _TIMER):
            node: SimNode = entry[3]
            cpu = node.cpu
            if (
                cpu is not None
                and node.state is NodeState.RUNNING
                and (kind == _DELIVER or cpu.model.timers_wait)
            ):
                self._wait_for_cpu(node, cpu, entry)
                return
        elif kind == _SERVED:
            self._served(entry[3], entry[4])
            return
        self._handle(entry)

    def _wait_for_cpu(self, node: SimNode, cpu: Cpu, entry: tuple[Any, ...]) -> None:
        """A starved node's input: handled when its CPU gets to it (FIFO, bounded)."""
        if entry[2] == _TIMER and entry[4] != node.timer_generation:
            return  # a wake-up the core no longer wants
        if not cpu.busy:
            self._begin(node, cpu, entry)
        elif len(cpu.waiting) < cpu.model.backlog_limit or entry[2] == _TIMER:
            cpu.waiting.append(entry)
        else:
            self.dropped["backlog_full"] += 1

    def _begin(self, node: SimNode, cpu: Cpu, entry: tuple[Any, ...]) -> None:
        done = cpu.start(self.now)
        heapq.heappush(self._queue, (done, next(self._seq), _SERVED, node, entry))

    def _served(self, node: SimNode, entry: tuple[Any, ...]) -> None:
        """A starved node's CPU finished an input: its effect happens now; next input."""
        self._handle(entry)
        cpu = node.cpu
        if cpu is None:
            return
        cpu.busy = False
        while cpu.waiting:
            following = cpu.waiting.popleft()
            if node.state is not NodeState.RUNNING:
                self._handle(following)  # paused: to the inbox; crashed: dropped
            elif following[2] != _TIMER or following[4] == node.timer_generation:
                self._begin(node, cpu, following)
                return

    def _handle(self, entry: tuple[Any, ...]) -> None:
        kind = entry[2]
        if kind == _DELIVER:
            self._deliver(entry[3], entry[4], entry[5], entry[6])
        elif kind == _TIMER:
            node: SimNode = entry[3]
            if entry[4] != node.timer_generation or node.state is not NodeState.RUNNING:
                return
            node.timer_local = None
            now = node.now(self.now)
            if now < entry[5]:
                now = node.last_local = entry[5]
            self._check_spin(node)
            node.core.tick(now)
            self._pump(node)
        else:
            entry[3]()

    def _check_spin(self, node: SimNode) -> None:
        """A core whose next_deadline() stays in the past after tick() would make a real
        driver spin; here it would hang the loop, so it is reported instead."""
        if node.last_tick_at == self.now:
            node.spins += 1
            if node.spins > SPIN_LIMIT:
                raise SimulationError(
                    f"{node.name}: next_deadline() stays at or before {self.now!r} after "
                    f"{SPIN_LIMIT} ticks; the core would make its driver spin"
                )
        else:
            node.last_tick_at, node.spins = self.now, 0

    def _deliver(self, node: SimNode, source: Address, data: bytes, src_name: str) -> None:
        state = node.state
        if state is NodeState.RUNNING:
            node.core.receive(node.now(self.now), source, data)
            self._pump(node)
        elif state is NodeState.PAUSED:
            if len(node.inbox) < INBOX_LIMIT:
                node.inbox.append((source, data))
            else:
                node.inbox_dropped += 1
                self.dropped["inbox_full"] += 1
        else:
            self.dropped["node_down"] += 1

    def _pump(self, node: SimNode) -> None:
        """Collect what a core produced after an input, and schedule its next timer."""
        core = node.core
        packets = core.take_outgoing()
        cpu = node.cpu
        if cpu is not None and packets and cpu.model.send_service:
            start = max(self.now, cpu.free_at)
            cpu.sent(len(packets))
            for index, packet in enumerate(packets, 1):
                when = start + index * cpu.model.send_service
                self.at(when, functools.partial(self._send_if_alive, node, packet))
        else:
            for packet in packets:
                self._send(node, packet)
        events = core.take_events()
        if events:
            name = node.name
            for event in events:
                member = event.member
                self.trace.record(
                    self.now,
                    f"event {name} {type(event).__name__} {member.name} {member.incarnation}",
                )
                for observer in self._event_observers:
                    observer(name, event)
        if node.leaving and core.leave_finished:
            node.state = NodeState.LEFT
            node.timer_generation += 1
            node.timer_local = None
            self._fault("left", (node.name,))
            return
        self._schedule_timer(node, core.next_deadline())

    def _reschedule(self, node: SimNode) -> None:
        if node.state is NodeState.RUNNING:
            node.timer_local = None
            self._schedule_timer(node, node.core.next_deadline())

    def _schedule_timer(self, node: SimNode, deadline: float | None) -> None:
        if deadline == node.timer_local:
            return
        node.timer_generation += 1
        node.timer_local = deadline
        if deadline is None:
            return
        when = node.clock.to_sim(deadline) + node.timer_lag
        if when < self.now:
            when = self.now
        heapq.heappush(
            self._queue, (when, next(self._seq), _TIMER, node, node.timer_generation, deadline)
        )

    def _send_if_alive(self, node: SimNode, packet: Packet) -> None:
        """A starved node's packet leaves its CPU (not if the process died meanwhile)."""
        if node.alive:
            self._send(node, packet)

    def _send(self, node: SimNode, packet: Packet) -> None:
        self.packets_sent += 1
        data = packet.data
        target = self._by_address.get(packet.destination)
        reliable = packet.reliable
        dropped: str | None
        if target is None:
            dst_name, copies, dropped = "?", 0, "no_route"
        else:
            dst_name = target.name
            route = self.network.route(self.now, node.name, dst_name, len(data), reliable)
            dropped = route.dropped
            copies = len(route.deliveries)
            source = (node.address[0], EPHEMERAL_PORT) if reliable else node.address
            lag, cpu = target.receive_lag, target.cpu
            for when in route.deliveries:
                when = when + lag if cpu is None else cpu.read_at(when + lag)
                entry = (when, next(self._seq), _DELIVER, target, source, data, node.name)
                heapq.heappush(self._queue, entry)
        if dropped is not None:
            self.dropped[dropped] += 1
        channel = "R" if reliable else "D"
        self.trace.record(
            self.now, f"send {node.name}>{dst_name} {channel}{len(data)} {dropped or copies}", data
        )
        if self._packet_observers:
            record = PacketRecord(self.now, node.name, dst_name, data, reliable, copies, dropped)
            for observer in self._packet_observers:
                observer(record)

    @property
    def trace_hash(self) -> str:
        """The hash of every event so far: the same seed and scenario give the same hash."""
        return self.trace.hash
