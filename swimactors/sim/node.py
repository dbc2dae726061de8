"""One simulated node: its core, its local clock, and its fault state.

The clock is ``local = offset + rate * sim_time``; a drift changes the rate without a
jump.  A paused node runs nothing: datagrams wait in a bounded inbox (its socket buffer)
and are handled when it resumes.  A slow node's timers fire ``timer_lag`` seconds late
and its incoming packets are handled ``receive_lag`` seconds late (a message-processing
backlog, as in Lifeguard's experiments).  A starved node (:mod:`.starvation`) instead
works through its inputs one at a time on a :class:`~.starvation.Cpu`.
"""

from __future__ import annotations

import enum
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs

from ..membership.config import Config
from ..membership.core import FormedCluster
from ..membership.types import Address, Member, MemberEvent, Packet
from .starvation import Cpu

__all__ = ["Core", "CoreFactory", "NodeClock", "NodeSpec", "NodeState", "SimNode"]

INBOX_LIMIT = 4096
"""Datagrams a paused node buffers before dropping (a socket receive buffer)."""


class Core(Protocol):
    """The sans-IO membership core the simulator drives (``swimactors.membership.Swim``)."""

    @property
    def name(self) -> str: ...
    @property
    def incarnation(self) -> int: ...
    @property
    def counters(self) -> Counter[str]: ...
    @property
    def leave_finished(self) -> bool: ...
    def join(self, seeds: Sequence[Address], now: float) -> None: ...
    def receive(self, now: float, source: Address, data: bytes) -> object: ...  # (ignored)
    def tick(self, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def take_outgoing(self) -> list[Packet]: ...
    def take_events(self) -> list[MemberEvent]: ...
    def members(self) -> list[Member]: ...
    def member(self, name: str) -> Member | None: ...
    def leave(self, now: float) -> None: ...
    def assume_formed(self, formed: FormedCluster, now: float) -> None: ...


@attrs.frozen
class NodeSpec:
    """What a core is built from; kept so a restart builds the same node afresh."""

    name: str
    address: Address
    config: Config
    meta: bytes = b""
    seeds: tuple[Address, ...] = ()


CoreFactory = Callable[[NodeSpec, random.Random, int], Core]
"""Builds a core from its spec, its random stream and its starting incarnation."""


class NodeState(enum.Enum):
    """A simulated node's fault state: running, paused (a stalled process), crashed or left."""

    RUNNING = "running"
    PAUSED = "paused"
    CRASHED = "crashed"
    LEFT = "left"


class NodeClock:
    """A node's local monotonic clock as a linear function of simulated time."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self.rate = 1.0

    def local(self, sim_time: float) -> float:
        """The node's local time at simulated time ``sim_time``."""
        return self.offset + self.rate * sim_time

    def to_sim(self, local_time: float) -> float:
        """The simulated time at which the node's clock reads ``local_time``."""
        return (local_time - self.offset) / self.rate

    def set_drift(self, sim_time: float, drift: float) -> None:
        """Run at ``1 + drift`` times real speed from ``sim_time`` on, without a jump."""
        if not drift > -1.0:
            raise ValueError(f"drift must be > -1, got {drift!r}")
        here = self.local(sim_time)
        self.rate = 1.0 + drift
        self.offset = here - self.rate * sim_time


class SimNode:
    """A node in the world: spec, current core, clock and fault state."""

    def __init__(self, spec: NodeSpec, core: Core, index: int) -> None:
        self.spec = spec
        self.core = core
        self.index = index
        self.state = NodeState.RUNNING
        self.clock = NodeClock()
        self.timer_lag = 0.0
        self.receive_lag = 0.0
        self.inbox: deque[tuple[Address, bytes]] = deque()
        self.inbox_dropped = 0
        self.retired_cores: list[Core] = []
        self.last_local = 0.0
        self.timer_local: float | None = None
        self.timer_generation = 0
        self.leaving = False
        self.last_tick_at = -1.0
        self.spins = 0
        self.cpu: Cpu | None = None
        """Set while the node is starved (``World.starve``)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def address(self) -> Address:
        return self.spec.address

    @property
    def slowed(self) -> bool:
        """Whether the node's timers or receives lag (a slow or starved process)."""
        return bool(self.timer_lag or self.receive_lag)

    @property
    def alive(self) -> bool:
        """Running or paused: a process that exists (crashed and left ones do not)."""
        return self.state in (NodeState.RUNNING, NodeState.PAUSED)

    def now(self, sim_time: float) -> float:
        """The node's local time at ``sim_time``, never going backwards."""
        local = self.clock.local(sim_time)
        if local > self.last_local:
            self.last_local = local
        return self.last_local

    def counters(self) -> Counter[str]:
        """Counters summed over this node's current and earlier (restarted) cores."""
        total: Counter[str] = Counter()
        for core in [*self.retired_cores, self.core]:
            total.update(core.counters)
        return total
