"""A CPU-starved process: one server with a queue, instead of a fixed lag.

A starved node handles its inputs (delivered packets and timer wake-ups) one at a time,
in arrival order.  Each takes a service time (exponential, mean ``service``) and every
packet it sends takes ``send_service`` more, so a burst builds a backlog that drains only
as fast as the node can work; its packets leave late and its timers fire late.  At random
(a Poisson process of ``stalls_per_minute``) the process stalls for a time drawn
uniformly from ``stall`` (kinship's starved model: 0.5-2.5 s), as under a GC pause or a
noisy neighbour, and nothing is handled until it ends.  The backlog is bounded by
``backlog_limit`` (a socket buffer): packets beyond it are dropped and counted.

:meth:`Starvation.late_reader` is the slow node of the Lifeguard paper and of kinship's
simulator instead: every packet is read 0.5-2.5 s late, in order, while timers fire on
time, so the node's own probes time out before it reads the acks.

Every draw comes from the node's own sub-stream ``starve/<name>``, so runs replay.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

import attrs

__all__ = ["Cpu", "Starvation"]


def _seconds(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{attribute.name} must be a finite number of seconds >= 0")


def _range(instance: Any, attribute: attrs.Attribute[Any], value: tuple[float, float]) -> None:
    low, high = value
    if not (0.0 <= low <= high and math.isfinite(high)):
        raise ValueError(
            f"{attribute.name} must be (low, high) seconds with 0 <= low <= high, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class Starvation:
    """How starved a node is (``World.starve``)."""

    service: float = attrs.field(default=0.03, validator=_seconds)
    """Mean CPU time to handle one input (a packet or a timer wake-up)."""
    send_service: float = attrs.field(default=0.002, validator=_seconds)
    """CPU time to send one packet."""
    stalls_per_minute: float = attrs.field(default=6.0, validator=_seconds)
    """Mean rate of stalls (0: none)."""
    stall: tuple[float, float] = attrs.field(default=(0.5, 2.5), validator=_range)
    """Range of a stall's length, drawn uniformly."""
    backlog_limit: int = 4096
    """Inputs waiting at most; packets beyond are dropped (counted ``backlog_full``)."""
    read_lag: tuple[float, float] = attrs.field(default=(0.0, 0.0), validator=_range)
    """Range of the extra delay before a received packet reaches the queue, drawn uniformly
    per packet; packets are still read in arrival order (a starved socket reader)."""
    timers_wait: bool = True
    """Timer wake-ups queue for the CPU like packets; False: they fire on time."""

    @classmethod
    def late_reader(cls) -> Starvation:
        """The Lifeguard paper's and kinship's starved node: every packet read 0.5-2.5 s
        late, in order; timers on time; no service time and no stalls."""
        return cls(
            service=0.0,
            send_service=0.0,
            stalls_per_minute=0.0,
            read_lag=(0.5, 2.5),
            timers_wait=False,
        )


class Cpu:
    """One starved node's processor: the input waiting, when it is free, its next stall."""

    def __init__(self, model: Starvation, rng: random.Random, now: float) -> None:
        self.model = model
        self.rng = rng
        self.waiting: deque[tuple[Any, ...]] = deque()
        self.busy = False
        self.free_at = now
        self.next_stall = self._draw_stall_gap(now)
        self.last_read = now

    def start(self, now: float) -> float:
        """Begin handling the next input at ``now`` or later: when it will be done."""
        begin = max(now, self.free_at)
        while begin >= self.next_stall:  # stalls that began before this input: wait them out
            low, high = self.model.stall
            begin = max(begin, self.next_stall + self.rng.uniform(low, high))
            self.next_stall = self._draw_stall_gap(begin)
        mean = self.model.service
        self.free_at = begin + (self.rng.expovariate(1.0 / mean) if mean else 0.0)
        self.busy = True
        return self.free_at

    def sent(self, count: int) -> float:
        """Account for sending ``count`` packets after an input: when the last one leaves."""
        self.free_at += count * self.model.send_service
        return self.free_at

    def read_at(self, arrival: float) -> float:
        """When a packet arriving at ``arrival`` is read: ``read_lag`` later, in order."""
        low, high = self.model.read_lag
        if not high:
            return arrival
        self.last_read = max(self.last_read, arrival + self.rng.uniform(low, high))
        return self.last_read

    def _draw_stall_gap(self, now: float) -> float:
        rate = self.model.stalls_per_minute / 60.0
        return now + self.rng.expovariate(rate) if rate else math.inf
