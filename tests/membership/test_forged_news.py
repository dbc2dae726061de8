"""Forged membership news at any incarnation the wire accepts, the maximum included, has no
lasting effect without a key: a hypothesis state machine runs three cores on a loss-free
in-memory network (incarnations from the wall clock, as ``open_node`` starts them), lets an
outsider send them forged Alive, Suspect, Dead and Left news at random incarnations (and
restarts nodes meanwhile), then stops the attack and checks that within a bounded time
every node sees every other one UP again, and that no incarnation ever passed the
horizon."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from swimactors.membership import Status, Swim
from swimactors.membership.core import INCARNATION_HORIZON
from swimactors.membership.messages import (
    MAX_INCARNATION,
    Alive,
    Dead,
    Left,
    MemberState,
    PushPull,
    Suspect,
    encode_message,
    encode_packet,
)
from tests.network.fast import CONFIG

from .util import member

NAMES = ("n0", "n1", "n2")
WALL = 1_764_000_000_000
"""The wall clock in ms at time 0 (December 2025)."""
OUTSIDER = ("10.66.0.1", 7000)
RECOVERY = 60.0
"""Seconds after the last forged packet within which the cluster must be whole again."""
STEP = 0.01


def address(name: str) -> tuple[str, int]:
    return ("10.0.0.1", 7000 + NAMES.index(name))


def incarnations(now: float) -> st.SearchStrategy[int]:
    """Plain values, the extremes of the wire, and the edge of the horizon."""
    edge = WALL + int(now * 1000) + INCARNATION_HORIZON
    extremes = [0, 1, WALL, MAX_INCARNATION, MAX_INCARNATION - 1, edge - 1, edge, edge + 1]
    return st.one_of(st.sampled_from(extremes), st.integers(0, MAX_INCARNATION))


class ForgedNews(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.rng = random.Random(3)
        self.cores: dict[str, Swim] = {}
        for name in NAMES:
            self.start(name)

    def start(self, name: str) -> None:
        wall = WALL + int(self.now * 1000)
        core = Swim(name, address(name), CONFIG, self.rng, incarnation=wall, wall_ms=wall)
        self.cores[name] = core
        seeds = [address(n) for n in NAMES if n != name]
        core.join(seeds, self.now)

    def run(self, seconds: float) -> None:
        """Advance the clock, delivering every packet at once (no loss)."""
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + STEP, 6)
            for core in list(self.cores.values()):
                core.tick(self.now)
            self.exchange()

    def exchange(self) -> None:
        for _ in range(8):  # answers to answers, within the same instant
            moved = False
            for core in list(self.cores.values()):
                for packet in core.take_outgoing():
                    target = next(
                        (c for c in self.cores.values() if c.address == packet.destination),
                        None,
                    )
                    if target is not None:
                        target.receive(self.now, core.address, packet.data)
                        moved = True
                core.take_events()
            if not moved:
                return

    @rule(seconds=st.floats(0.01, 3.0))
    def time_passes(self, seconds: float) -> None:
        self.run(seconds)

    @rule(data=st.data(), victim=st.sampled_from(NAMES), about=st.sampled_from(NAMES))
    def forge(self, data: st.DataObject, victim: str, about: str) -> None:
        incarnation = data.draw(incarnations(self.now))
        kind = data.draw(st.sampled_from(["alive", "suspect", "dead", "left"]))
        news: Any = {
            "alive": Alive(about, OUTSIDER, incarnation, b""),
            "suspect": Suspect(about, incarnation, "x"),
            "dead": Dead(about, incarnation, "x"),
            "left": Left(about, incarnation),
        }[kind]
        forged = encode_packet(CONFIG.label, "x", [encode_message(news)])
        self.cores[victim].receive(self.now, OUTSIDER, forged)
        self.exchange()

    @rule(name=st.sampled_from(NAMES))
    def restart(self, name: str) -> None:
        self.start(name)
        self.exchange()

    @invariant()
    def no_incarnation_passes_the_horizon(self) -> None:
        horizon = WALL + int(self.now * 1000) + INCARNATION_HORIZON + 1000
        for core in self.cores.values():
            assert all(m.incarnation <= horizon for m in core.members())

    def teardown(self) -> None:
        """The attack is over: within ``RECOVERY`` seconds everyone is UP everywhere."""
        deadline = self.now + RECOVERY
        while self.now < deadline:
            self.run(1.0)
            if all(
                core.member(other) is not None and member(core, other).status is Status.UP
                for core in self.cores.values()
                for other in NAMES
            ):
                return
        views = {
            name: {m.name: (m.status.value, m.incarnation) for m in core.members()}
            for name, core in self.cores.items()
        }
        raise AssertionError(f"not whole {RECOVERY} s after the attack: {views}")


TestForgedNews = ForgedNews.TestCase
TestForgedNews.settings = settings(max_examples=40, stateful_step_count=12, deadline=None)


def test_news_past_the_horizon_is_dropped_alone_and_counted() -> None:
    """Only the message from the future goes: the rest of its packet, and of a push/pull,
    is handled; the horizon moves with the clock."""
    core = Swim("n0", address("n0"), CONFIG, random.Random(1), incarnation=WALL, wall_ms=WALL)
    edge = WALL + INCARNATION_HORIZON
    news = [Alive("p1", OUTSIDER, edge + 1, b""), Alive("p2", OUTSIDER, edge, b"")]
    core.receive(0.0, OUTSIDER, encode_packet("", "x", [encode_message(m) for m in news]))
    assert core.member("p1") is None and member(core, "p2").incarnation == edge
    assert core.counters["rejected_future"] == 1
    states = (
        MemberState.of("p3", OUTSIDER, edge + 2000, Status.UP, b""),
        MemberState.of("p4", OUTSIDER, edge + 500, Status.UP, b""),
    )
    pushed = encode_packet("", "x", [encode_message(PushPull(False, True, states, {}))], OUTSIDER)
    core.receive(1.0, OUTSIDER, pushed)  # a second later the horizon is 1,000 further
    assert core.member("p3") is None and member(core, "p4").status is Status.UP
    assert core.counters["rejected_future"] == 2
