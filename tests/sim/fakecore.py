"""A tiny heartbeat membership core that honours the sans-IO contract the simulator drives.

It exists so the engine's tests do not depend on SWIM's behaviour: every second each
node sends a heartbeat datagram to every member it knows; silence for ``timeout`` seconds
means DOWN; a heartbeat from a DOWN member means UP again.  Joining is one reliable
frame to a seed, answered by a reliable frame listing the seed's members.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence

from swimactors.membership.config import Config
from swimactors.membership.core import FormedCluster
from swimactors.membership.types import (
    Address,
    Member,
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberUp,
    Packet,
    Status,
)
from swimactors.sim import NodeSpec


class FakeCore:
    """Heartbeats to everyone; a member silent for ``timeout`` seconds is DOWN."""

    def __init__(
        self,
        spec: NodeSpec,
        rng: random.Random,
        incarnation: int,
        timeout: float = 3.5,
        padding: int = 0,
    ) -> None:
        self.name = spec.name
        self.address = spec.address
        self.config = spec.config
        self.incarnation = incarnation
        self.rng = rng
        self.timeout = timeout
        self.padding = padding
        self.counters: Counter[str] = Counter()
        self.leave_finished = False
        self._members: dict[str, Member] = {}
        self._heard: dict[str, float] = {}
        self._out: list[Packet] = []
        self._events: list[MemberEvent] = []
        self._next_beat: float | None = 0.0
        self.ticks: list[float] = []

    def _message(self, kind: str, **fields: object) -> bytes:
        body = {"k": kind, "n": self.name, "a": list(self.address), "i": self.incarnation}
        body.update(fields)
        if self.padding:
            body["pad"] = "x" * self.padding
        return json.dumps(body).encode()

    def join(self, seeds: Sequence[Address], now: float) -> None:
        for seed in seeds:
            self._out.append(Packet(seed, self._message("join"), reliable=True))

    def assume_formed(self, formed: FormedCluster, now: float) -> None:
        for name, state in formed.states.items():
            if name != self.name:
                self._members[name] = Member(name, state.address, state.incarnation, Status.UP)
                self._heard[name] = now

    def receive(self, now: float, source: Address, data: bytes) -> None:
        try:
            body = json.loads(data)
            name, address, incarnation = body["n"], tuple(body["a"]), body["i"]
        except (ValueError, KeyError, TypeError):
            self.counters["rejected"] += 1
            return
        self.counters[f"received_{body['k']}"] += 1
        if body["k"] == "leave":
            self._set(now, Member(name, address, incarnation, Status.LEFT))
            return
        self._heard[name] = now
        self._set(now, Member(name, address, incarnation, Status.UP))
        if body["k"] == "join":
            members = [[m.name, list(m.address), m.incarnation] for m in self.members()]
            self._out.append(Packet(address, self._message("state", m=members), reliable=True))
        elif body["k"] == "state":
            for other, other_address, other_incarnation in body["m"]:
                if other != self.name and other not in self._members:
                    self._heard[other] = now
                    self._set(
                        now, Member(other, tuple(other_address), other_incarnation, Status.UP)
                    )

    def _set(self, now: float, member: Member) -> None:
        if member.name == self.name:
            return
        old = self._members.get(member.name)
        if old is not None and old.status is Status.LEFT and member.incarnation <= old.incarnation:
            return
        self._members[member.name] = member
        if old is None or old.status is not member.status:
            kind = {Status.UP: MemberUp, Status.DOWN: MemberDown, Status.LEFT: MemberLeft}
            self._events.append(kind[member.status](member, now))

    def tick(self, now: float) -> None:
        self.ticks.append(now)
        if self._next_beat is None or now < self._next_beat:
            return
        self._next_beat = now + 1.0
        for member in list(self._members.values()):
            if member.status is Status.UP and now - self._heard[member.name] > self.timeout:
                down = Member(member.name, member.address, member.incarnation, Status.DOWN)
                self._members[member.name] = down
                self._events.append(MemberDown(down, now))
        for member in self._members.values():
            if member.status is not Status.LEFT:
                self._out.append(Packet(member.address, self._message("beat")))
                self.counters["sent_beat"] += 1

    def next_deadline(self) -> float | None:
        return self._next_beat

    def take_outgoing(self) -> list[Packet]:
        out, self._out = self._out, []
        return out

    def take_events(self) -> list[MemberEvent]:
        events, self._events = self._events, []
        return events

    def members(self) -> list[Member]:
        me = Member(self.name, self.address, self.incarnation, Status.UP)
        return [me, *self._members.values()]

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members() if m.name == name), None)

    def leave(self, now: float) -> None:
        for member in self._members.values():
            self._out.append(Packet(member.address, self._message("leave")))
        self._next_beat = None
        self.leave_finished = True


def fake_factory(spec: NodeSpec, rng: random.Random, incarnation: int) -> FakeCore:
    return FakeCore(spec, rng, incarnation)


LOCAL = Config.local()
