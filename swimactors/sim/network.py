"""The simulated network: per-link latency, loss, duplication and reordering, a size
limit for datagrams, a TCP-like reliable channel, and an ordered chain of link rules.

Rules are checked in order for every packet (as in tokio's turmoil): a matching DROP
ends the packet (on the reliable channel, the connection fails), PASS ends the chain,
DELAY adds latency and DUPLICATE adds a copy, and the chain goes on.  Partitions are
DROP rules named ``partition``; :meth:`Network.heal` removes them.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Iterable
from typing import Any

import attrs

from ..wire import DEFAULT_MAX_FRAME, DEFAULT_PACKET_BUDGET
from .rng import Streams

__all__ = ["Action", "LinkModel", "Network", "Route", "Rule"]


def _probability(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value!r}")


def _seconds(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{attribute.name} must be a finite number of seconds >= 0")


@attrs.frozen(kw_only=True)
class LinkModel:
    """How one directed link (or, as the default, every link) treats packets."""

    latency: float = attrs.field(default=0.0005, validator=_seconds)
    """Base one-way delay in seconds."""
    jitter: float = attrs.field(default=0.0002, validator=_seconds)
    """Mean of an exponentially distributed extra delay (0: none)."""
    loss: float = attrs.field(default=0.0, validator=_probability)
    """Probability a packet is lost.  A datagram is gone; the reliable channel instead
    retransmits after ``stream_rto`` (doubling each time), so the frame arrives late."""
    duplicate: float = attrs.field(default=0.0, validator=_probability)
    """Probability a datagram is delivered twice."""
    reorder: float = attrs.field(default=0.0, validator=_probability)
    """Probability a datagram is held back by up to ``reorder_window`` (so later ones pass)."""
    reorder_window: float = attrs.field(default=0.01, validator=_seconds)
    stream_rto: float = attrs.field(default=0.2, validator=_seconds)
    """First retransmission timeout of the reliable channel (Linux's minimum RTO)."""


class Action(enum.Enum):
    """What a matching rule does to a packet."""

    PASS = "pass"
    DROP = "drop"
    DELAY = "delay"
    DUPLICATE = "duplicate"


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen(kw_only=True)
class Rule:
    """One link rule: which packets it matches and what it does to them."""

    action: Action
    src: frozenset[str] | None = attrs.field(default=None, converter=_names)
    """Sender names matched (None: any)."""
    dst: frozenset[str] | None = attrs.field(default=None, converter=_names)
    """Receiver names matched (None: any)."""
    probability: float = attrs.field(default=1.0, validator=_probability)
    delay: float = attrs.field(default=0.0, validator=_seconds)
    """Extra latency for DELAY."""
    datagrams: bool = True
    """Applies to datagrams."""
    streams: bool = True
    """Applies to the reliable channel (a DROP there is a failed connection)."""
    name: str = "rule"

    def matches(self, src: str, dst: str, reliable: bool) -> bool:
        """Whether this rule applies to a packet from ``src`` to ``dst`` on that channel."""
        if not (self.streams if reliable else self.datagrams):
            return False
        return (self.src is None or src in self.src) and (self.dst is None or dst in self.dst)


@attrs.frozen
class Route:
    """The fate of one packet: delivery times (one per copy), or why it was dropped."""

    deliveries: tuple[float, ...]
    dropped: str | None = None


_LOST = {reason: Route((), reason) for reason in ("oversize", "loss", "partition", "rule")}


class Network:
    """Decides, for each packet sent at ``now``, when (and how many times) it arrives."""

    def __init__(
        self,
        streams: Streams,
        default: LinkModel | None = None,
        max_datagram: int = DEFAULT_PACKET_BUDGET,
        max_frame: int = DEFAULT_MAX_FRAME,
        per_source: bool = False,
    ) -> None:
        self.default = default or LinkModel()
        self.max_datagram = max_datagram
        self.max_frame = max_frame
        self._streams = streams
        self._rng = streams.get("network")
        self.per_source = per_source
        """Draw from one stream per sender (``network/<src>``, ``rule/<h>/<src>``), so the
        order in which concurrent senders are served cannot change any draw."""
        self._links: dict[tuple[str, str], LinkModel] = {}
        self._rules: list[tuple[int, Rule, random.Random]] = []
        self._next_rule = 0
        self._stream_clock: dict[tuple[str, str], float] = {}

    # -- configuration ---------------------------------------------------------------------

    def set_link(self, src: str, dst: str, model: LinkModel, both_ways: bool = True) -> None:
        """Give the link ``src -> dst`` (and back, by default) its own model."""
        self._links[(src, dst)] = model
        if both_ways:
            self._links[(dst, src)] = model

    def link(self, src: str, dst: str) -> LinkModel:
        """The link model from ``src`` to ``dst`` (the default unless one was set)."""
        return self._links.get((src, dst), self.default)

    def add_rule(self, rule: Rule) -> int:
        """Append ``rule`` to the chain; returns a handle for :meth:`remove_rule`."""
        handle = self._next_rule
        self._next_rule += 1
        self._rules.append((handle, rule, self._streams.get(f"rule/{handle}")))
        return handle

    def remove_rule(self, handle: int) -> None:
        """Take the rule ``handle`` (from :meth:`add_rule`) out of the chain."""
        self._rules = [entry for entry in self._rules if entry[0] != handle]

    @property
    def rules(self) -> list[Rule]:
        """The link rules in force, in chain order."""
        return [rule for _, rule, _ in self._rules]

    def partition(
        self, side_a: Iterable[str], side_b: Iterable[str], one_way: bool = False
    ) -> list[int]:
        """Cut ``a -> b`` (and ``b -> a`` unless ``one_way``); returns the rule handles."""
        a, b = frozenset(side_a), frozenset(side_b)
        handles = [self.add_rule(Rule(action=Action.DROP, src=a, dst=b, name="partition"))]
        if not one_way:
            handles.append(self.add_rule(Rule(action=Action.DROP, src=b, dst=a, name="partition")))
        return handles

    def heal(self) -> None:
        """Remove every partition rule."""
        self._rules = [entry for entry in self._rules if entry[1].name != "partition"]

    # -- routing ---------------------------------------------------------------------------

    def route(self, now: float, src: str, dst: str, size: int, reliable: bool) -> Route:
        """Where the packet goes; draws only from the network and rule sub-streams."""
        if size > (self.max_frame if reliable else self.max_datagram):
            return _LOST["oversize"]
        extra = 0.0
        copies = 1
        for handle, rule, rng in self._rules:
            if not rule.matches(src, dst, reliable):
                continue
            if self.per_source:
                rng = self._streams.get(f"rule/{handle}/{src}")
            if rule.probability < 1.0 and rng.random() >= rule.probability:
                continue
            action = rule.action
            if action is Action.DROP:
                return _LOST["partition" if rule.name == "partition" else "rule"]
            if action is Action.PASS:
                break
            if action is Action.DELAY:
                extra += rule.delay
            elif not reliable:
                copies += 1
        link = self._links.get((src, dst), self.default)
        rng = self._streams.get(f"network/{src}") if self.per_source else self._rng
        if reliable:
            arrival = now + extra + self._latency(link, rng) + self._retransmits(link, rng)
            key = (src, dst)
            arrival = max(arrival, self._stream_clock.get(key, arrival))
            self._stream_clock[key] = arrival
            return Route((arrival,))
        if link.loss and rng.random() < link.loss:
            return _LOST["loss"]
        if link.duplicate and rng.random() < link.duplicate:
            copies += 1
        times = []
        for _ in range(copies):
            arrival = now + extra + self._latency(link, rng)
            if link.reorder and rng.random() < link.reorder:
                arrival += rng.random() * link.reorder_window
            times.append(arrival)
        return Route(tuple(times))

    @staticmethod
    def _retransmits(link: LinkModel, rng: random.Random) -> float:
        """Delay added by TCP-like retransmission of a frame lost with ``link.loss``."""
        delay, timeout = 0.0, link.stream_rto
        while link.loss and rng.random() < link.loss and timeout < 120.0:
            delay += timeout
            timeout *= 2
        return delay

    @staticmethod
    def _latency(link: LinkModel, rng: random.Random) -> float:
        if link.jitter:
            return link.latency + rng.expovariate(1.0 / link.jitter)
        return link.latency
