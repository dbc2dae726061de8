"""HostNames, the drivers' host-name table, against a model: lookups bounded and due by
their deadline (the last places kept for names vouched for), failures remembered for
``failed_ttl``, answers kept through failed renewals."""

from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from swimactors.membership.host_names import HostNames

NAMES = [(f"n{i}.example", 7946) for i in range(6)]
TTL, FAILED_TTL, TIMEOUT, MAX_LOOKUPS, VOUCHED_LOOKUPS = 30.0, 20.0, 5.0, 3, 1


class HostNamesMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.names = HostNames(
            ttl=TTL,
            failed_ttl=FAILED_TTL,
            timeout=TIMEOUT,
            max_lookups=MAX_LOOKUPS,
            size=64,
            vouched_lookups=VOUCHED_LOOKUPS,
        )
        self.now = 0.0
        self.under_way: dict[tuple[str, int], float] = {}
        self.failed_until: dict[tuple[str, int], float] = {}
        self.answers: dict[tuple[str, int], str] = {}

    @rule(seconds=st.floats(0, 40))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        late = self.names.expire(self.now)
        assert sorted(late) == sorted(n for n, due in self.under_way.items() if due <= self.now)
        for name in late:
            del self.under_way[name]
            if name not in self.answers:
                self.failed_until[name] = self.now + FAILED_TTL

    @rule(name=st.sampled_from(NAMES), vouched=st.booleans())
    def send(self, name: tuple[str, int], vouched: bool) -> None:
        """What a driver does per packet: look the name up when due (``vouched``: a
        member at that name has sent this node a packet)."""
        failing = self.failed_until.get(name, -1.0) > self.now
        if self.names.due(name, self.now):
            assert not failing and name not in self.under_way
            started = self.names.begin(name, self.now, vouched)
            room = MAX_LOOKUPS if vouched else MAX_LOOKUPS - VOUCHED_LOOKUPS
            assert started == (len(self.under_way) < room)
            if started:
                self.under_way[name] = self.now + TIMEOUT
        elif name not in self.under_way and name not in self.answers:
            assert failing  # never due only while failing (or a lookup runs)
        known = self.names.answer(name)
        assert (known and known[0]) == self.answers.get(name)

    @rule(data=st.data(), ok=st.booleans())
    def a_lookup_ends(self, data: st.DataObject, ok: bool) -> None:
        name = data.draw(st.sampled_from(NAMES))  # even one not under way: a late answer
        self.under_way.pop(name, None)
        if ok:
            self.names.finish(name, (f"10.0.0.{NAMES.index(name)}", 7946), self.now)
            self.answers[name] = f"10.0.0.{NAMES.index(name)}"
            self.failed_until.pop(name, None)
        else:
            self.names.finish(name, OSError("no such name"), self.now)
            if name not in self.answers:
                self.failed_until[name] = self.now + FAILED_TTL

    @invariant()
    def deadline_is_the_earliest_lookup(self) -> None:
        assert self.names.deadline == min(self.under_way.values(), default=math.inf)
        assert len(self.under_way) <= MAX_LOOKUPS


TestHostNames = HostNamesMachine.TestCase
TestHostNames.settings = settings(max_examples=100, stateful_step_count=25, deadline=None)
