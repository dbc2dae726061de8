"""Helpers for driving one SWIM core by hand: explicit times, hand-built packets.

A test plays every peer itself: it builds packets with :func:`packet`, feeds them with
:func:`deliver`, advances time with :func:`run` and reads what the core sent, decoded,
with :func:`sent`.  Peer ``pN`` lives at ``addr(N)``; the core under test is ``n0``.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from swimactors.membership import Config, Member, Swim
from swimactors.membership.messages import Ack, Alive, Ping, decode_packet, encode_message
from swimactors.membership.messages import encode_packet as _encode_packet
from swimactors.membership.types import Address

CONFIG = Config.lan()
_clock: weakref.WeakKeyDictionary[Swim, float] = weakref.WeakKeyDictionary()
"""The last time each core was fed: ticks never go back before it."""
HOME: Address = ("10.0.0.1", 7000)


def addr(index: int) -> Address:
    return ("10.0.0.2", 7000 + index)


def make_core(config: Config = CONFIG, seed: int = 1, name: str = "n0", **kw: Any) -> Swim:
    return Swim(name, HOME, config, random.Random(seed), **kw)


def packet(sender: str, *messages: Any, label: str = "", reply_to: Address | None = None) -> bytes:
    """A packet from ``sender``; ``reply_to`` makes it a reliable-channel packet."""
    return _encode_packet(label, sender, [encode_message(m) for m in messages], reply_to)


def deliver(
    core: Swim,
    now: float,
    sender: str,
    *messages: Any,
    source: Address | None = None,
    reliable: bool = False,
    label: str = "",
) -> None:
    """``sender`` (at ``addr`` of its number unless ``source``) sends ``messages``."""
    _clock[core] = max(now, _clock.get(core, now))
    origin = source or peer_address(sender)
    data = packet(sender, *messages, label=label, reply_to=origin if reliable else None)
    core.receive(now, origin, data)


def member(core: Swim, name: str) -> Member:
    """``name`` as ``core`` sees it (which must know it)."""
    found = core.member(name)
    assert found is not None, f"{core.name} does not know {name}"
    return found


def next_deadline(core: Swim) -> float:
    deadline = core.next_deadline()
    assert deadline is not None
    return deadline


def peer_address(name: str) -> Address:
    return addr(int(name.lstrip("abcdefghijklmnopqrstuvwxyz") or 0))


@attrs.frozen
class Sent:
    """One packet the core sent, decoded."""

    destination: Address
    reliable: bool
    messages: tuple[Any, ...]
    size: int

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]


def sent(core: Swim) -> list[Sent]:
    """Take and decode everything the core has to send."""
    out = []
    for p in core.take_outgoing():
        envelope = decode_packet(p.data, core.config.label)
        assert envelope.sender == core.name
        assert (envelope.sender_address == core.address) == p.reliable
        out.append(Sent(p.destination, p.reliable, envelope.messages, len(p.data)))
    return out


def messages(packets: Iterable[Sent], kind: type) -> list[Any]:
    return [m for p in packets for m in p.of(kind)]


def add_peers(core: Swim, count: int, now: float = 0.0, first: int = 1) -> list[str]:
    """Peers ``p<first>..`` introduce themselves with Alive(incarnation 1)."""
    names = [f"p{i}" for i in range(first, first + count)]
    for i, name in zip(range(first, first + count), names, strict=True):
        deliver(core, now, name, Alive(name, addr(i), 1))
    return names


Responder = Callable[[Swim, float, list[Sent]], None]


def run(core: Swim, until: float, respond: Responder | None = None) -> list[tuple[float, Sent]]:
    """Tick the core at each of its deadlines up to ``until``; ``respond`` may answer what
    it sent at the same instant.  Returns every packet sent, with its time."""
    log: list[tuple[float, Sent]] = []
    while (deadline := core.next_deadline()) is not None and deadline <= until:
        deadline = _clock[core] = max(deadline, _clock.get(core, deadline))
        core.tick(deadline)
        out = sent(core)
        log += [(deadline, p) for p in out]
        if respond is not None:
            respond(core, deadline, out)
            log += [(deadline, p) for p in sent(core)]
    return log


def acking(alive: Callable[[str], bool] = lambda name: True) -> Responder:
    """A responder: every peer for which ``alive(name)`` acks the pings sent to it."""

    def respond(core: Swim, now: float, out: list[Sent]) -> None:
        for p in out:
            for ping in p.of(Ping):
                if ping.target and alive(ping.target):
                    deliver(core, now, ping.target, Ack(ping.seq), reliable=p.reliable)

    return respond
