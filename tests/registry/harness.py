"""A small deterministic in-memory cluster of real SWIM cores, each carrying a registry.

Time is explicit and jumps to the next packet delivery or core deadline.  Datagrams are
lost with probability ``loss`` (a seeded rng); reliable packets (push/pull) always arrive,
as over TCP.  A crashed node stops sending and receiving.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

from swimactors.membership import Config, Status, Swim
from swimactors.membership.types import Address
from swimactors.registry import Registry
from swimactors.registry.delegate import RegistryDelegate


class Node:
    def __init__(self, core: Swim, registry: Registry) -> None:
        self.core = core
        self.registry = registry
        self.delegate = RegistryDelegate(registry, core)

    @property
    def name(self) -> str:
        return self.core.name


class Cluster:
    def __init__(
        self, config: Config, seed: int = 0, loss: float = 0.0, latency: float = 0.002
    ) -> None:
        self.config = config
        self.loss = loss
        self.latency = latency
        self.rng = random.Random(seed)
        self.now = 0.0
        self.nodes: dict[str, Node] = {}
        self.crashed: set[str] = set()
        self.isolated: set[str] = set()
        self.sides: dict[str, int] = {}
        """Node name -> its side of a cut (nodes on different sides cannot talk)."""
        self._by_address: dict[Address, Node] = {}
        self._heap: list[tuple[float, int, str, Address, Address, bytes]] = []
        self._order = itertools.count()

    def add(self, name: str, incarnation: int = 1, seeds: int = 1) -> Node:
        address = (f"10.0.{len(self.nodes) // 250}.{len(self.nodes) % 250 + 1}", 7946)
        core = Swim(name, address, self.config, random.Random(self.rng.random()), b"", incarnation)
        node = Node(core, Registry(name, incarnation))
        known = [n.core.address for n in list(self.nodes.values())[:seeds]]
        self.nodes[name] = node
        self._by_address[address] = node
        core.join(known, self.now)
        self._flush(node)
        return node

    def crash(self, name: str) -> None:
        self.crashed.add(name)

    def isolate(self, name: str) -> None:
        """Cut every link of ``name`` (it keeps running): a one-node partition."""
        self.isolated.add(name)

    def heal(self, name: str) -> None:
        self.isolated.discard(name)

    def cut(self, *sides: list[str]) -> None:
        """Partition the cluster into ``sides`` (each side keeps talking within itself)."""
        self.sides = {name: i for i, side in enumerate(sides) for name in side}

    def heal_cut(self) -> None:
        self.sides = {}

    def live(self) -> list[Node]:
        return [n for name, n in self.nodes.items() if name not in self.crashed]

    def _flush(self, node: Node) -> None:
        core = node.core
        core.take_events()
        for packet in core.take_outgoing():
            if not packet.reliable and self.loss and self.rng.random() < self.loss:
                continue
            heapq.heappush(
                self._heap,
                (
                    self.now + self.latency,
                    next(self._order),
                    "p",
                    core.address,
                    packet.destination,
                    packet.data,
                ),
            )
        deadline = core.next_deadline()
        if deadline is not None:
            heapq.heappush(
                self._heap, (deadline, next(self._order), "t", core.address, core.address, b"")
            )

    def run_until(
        self, end: float, until: Callable[[], bool] | None = None, every: float = 0.1
    ) -> float:
        """Run to ``end`` or until ``until()`` holds (checked every ``every`` seconds)."""
        check = self.now
        while self._heap and self._heap[0][0] <= end:
            if until is not None and self.now >= check:
                if until():
                    return self.now
                check = self.now + every
            when, _, kind, source, destination, data = heapq.heappop(self._heap)
            node = self._by_address.get(destination)
            if node is None or node.name in self.crashed:
                continue
            self.now = max(self.now, when)
            if kind == "p":
                sender = self._by_address[source].name
                if {node.name, sender} & self.isolated or self.sides.get(
                    node.name
                ) != self.sides.get(sender):
                    continue
                node.core.receive(self.now, source, data)
            else:
                deadline = node.core.next_deadline()
                if deadline is None or deadline > self.now:
                    continue  # a stale timer entry; the current one is queued too
                node.core.tick(self.now)
            self._flush(node)
        if until is not None and until():
            return self.now
        self.now = end
        return end

    def view(self, node: Node) -> dict[str, tuple[str, str]]:
        """One node's table: name -> (holder node, actor id)."""
        table = {}
        for name in node.registry.names():
            winner = node.registry.lookup(name)
            assert winner is not None
            table[name] = (winner.node, winner.actor_id)
        return table

    def converged(self, expected: dict[str, tuple[str, str]]) -> bool:
        """Every live node resolves exactly ``expected`` (cheap count check first)."""
        live = self.live()
        if any(len(node.registry) != len(expected) for node in live):
            return False
        return all(self.view(node) == expected for node in live)

    def all_up(self) -> bool:
        live = {n.name for n in self.live()}
        return all(
            {m.name for m in n.core.members() if m.status is Status.UP} >= live for n in self.live()
        )
