"""A tiny deterministic in-memory network of SWIM cores, for core unit tests.

Every packet is delivered after ``latency`` seconds unless its destination is stopped or
``drop`` says otherwise; time advances straight to the next delivery or deadline.

Why not :class:`swimactors.sim.World`: these tests need what the simulator deliberately
does not offer, a restart at a chosen incarnation (0: a reborn node that does not outrank
its old self and must refute its own death) and at a new address, and drops chosen per
packet (only the unreliable channel, or a decoded message kind).  ``World.restart``
derives the incarnation from the clock so a restart always outranks, and its link rules
act on addresses, not packets.  Everything about whole-cluster behaviour under faults is
tested on ``World`` (tests/sim, sims/).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

from swimactors.membership import Config, MemberEvent, Packet, Status, Swim
from swimactors.membership.types import Address


class Loop:
    def __init__(self, config: Config, latency: float = 0.001, seed: int = 0) -> None:
        self.config = config
        self.latency = latency
        self.rng = random.Random(seed)
        self.now = 0.0
        self.cores: dict[Address, Swim] = {}
        self.stopped: set[Address] = set()
        self.events: list[tuple[str, MemberEvent]] = []
        self.drop: Callable[[Address, Packet], bool] = lambda src, packet: False
        self._queue: list[tuple[float, int, Address, Address, bytes]] = []
        self._order = itertools.count()

    def add(self, name: str, seeds: int = 1) -> Swim:
        address = ("10.0.0.1", 7000 + len(self.cores))
        core = Swim(name, address, self.config, random.Random(self.rng.random()))
        known = list(self.cores)[:seeds]
        self.cores[address] = core
        core.join(known, self.now)
        self._flush(core)
        return core

    def restart(self, name: str, incarnation: int = 0, new_address: bool = False) -> Swim:
        """A stopped node comes back as a fresh core (its state lost) and rejoins."""
        old = self.by_name(name)
        del self.cores[old.address]
        self.stopped.discard(old.address)
        address = ("10.0.0.1", 7000 + len(self.cores) + 100) if new_address else old.address
        core = Swim(name, address, self.config, random.Random(self.rng.random()), b"", incarnation)
        self.cores[address] = core
        core.join([a for a in self.cores if a not in self.stopped and a != address][:1], self.now)
        self._flush(core)
        return core

    def by_name(self, name: str) -> Swim:
        return next(c for c in self.cores.values() if c.name == name)

    def stop(self, name: str) -> None:
        """The node stops answering (a crash, from the others' point of view)."""
        self.stopped.add(self.by_name(name).address)

    def _flush(self, core: Swim) -> None:
        self.events += [(core.name, e) for e in core.take_events()]
        for packet in core.take_outgoing():
            if packet.destination in self.stopped or self.drop(core.address, packet):
                continue
            entry = (self.now + self.latency, next(self._order), core.address, packet.destination)
            heapq.heappush(self._queue, (*entry, packet.data))

    def run_until(self, end: float, until: Callable[[], bool] | None = None) -> float:
        """Run to ``end``, or until ``until()`` holds; returns the time reached."""
        while True:
            if until is not None and until():
                return self.now
            live = [c for a, c in self.cores.items() if a not in self.stopped]
            deadlines = [d for c in live if (d := c.next_deadline()) is not None]
            next_tick = min(deadlines, default=float("inf"))
            next_packet = self._queue[0][0] if self._queue else float("inf")
            step = max(self.now, min(next_tick, next_packet))  # a past deadline: tick now
            if step > end:
                self.now = end
                return end
            self.now = step
            if self._queue and self._queue[0][0] <= step:
                _, _, src, dst, data = heapq.heappop(self._queue)
                if dst in self.cores and dst not in self.stopped:
                    self.cores[dst].receive(self.now, src, data)
                    self._flush(self.cores[dst])
                continue
            for core in live:
                deadline = core.next_deadline()
                if deadline is not None and deadline <= step:
                    core.tick(self.now)
                    self._flush(core)

    def views(self, status: Status) -> dict[str, set[str]]:
        """For each running node, the names it sees with ``status``."""
        return {
            c.name: {m.name for m in c.members() if m.status is status}
            for a, c in self.cores.items()
            if a not in self.stopped
        }

    def all_see(self, name: str, status: Status) -> bool:
        return all(name in seen for seen in self.views(status).values())
