"""A hypothesis state machine feeds one core random valid and invalid packets from a few
fake peers (with plausible incarnations), user calls and ticks at increasing times, and
checks the core's invariants after every step."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from swimactors.membership import Config, Status, Swim
from swimactors.membership.messages import (
    Ack,
    Alive,
    Dead,
    Left,
    MemberState,
    Nack,
    Ping,
    PingReq,
    PushPull,
    Suspect,
    UserMessage,
    decode_packet,
)

from .util import HOME, addr, packet

PEERS = ["p1", "p2", "p3", "p4"]
NAMES = [*PEERS, "n0"]  # news about the core itself too


def address_of(name: str, moved: bool) -> tuple[str, int]:
    if name == "n0":
        return ("10.0.0.9", 7000) if moved else HOME
    index = int(name[1:])
    return addr(index + 50 if moved else index)


class SingleCore(RuleBasedStateMachine):
    config = Config.lan().replace(packet_budget=512)  # small, so that packets fill up

    def __init__(self) -> None:
        super().__init__()
        self.core = Swim("n0", HOME, self.config, random.Random(7))
        self.now = 0.0
        self.left = False
        self.incarnations: dict[str, int] = {"n0": 0}
        self.pings: list[tuple[tuple[str, int], int, bool]] = []  # (address, seq, reliable)

    # -- helpers ---------------------------------------------------------------------------

    def drain(self) -> None:
        """Take outgoing packets and events, checking them; remember pings to answer."""
        for p in self.core.take_outgoing():
            if not p.reliable:
                assert len(p.data) <= self.config.packet_budget, len(p.data)
            envelope = decode_packet(p.data, self.config.label)  # our own packets always decode
            for m in envelope.messages:
                # once leaving, no Alive of ours may outbid the Left
                assert not (self.left and isinstance(m, Alive) and m.name == "n0")
                if isinstance(m, Ping):
                    self.pings.append((p.destination, m.seq, p.reliable))
        del self.pings[:-20]
        for event in self.core.take_events():
            assert event.time == self.now

    def incarnation(self, data: st.DataObject, name: str) -> int:
        known = self.incarnations.get(name, 1)
        return max(0, known + data.draw(st.integers(-1, 2), label="delta"))

    def send(self, sender: str, *messages: Any, reliable: bool = False, label: str = "") -> None:
        source = address_of(sender, False)
        data = packet(sender, *messages, label=label, reply_to=source if reliable else None)
        self.core.receive(self.now, source, data)
        self.drain()

    # -- inputs ----------------------------------------------------------------------------

    @rule(dt=st.floats(0.0, 3.0))
    def tick(self, dt: float) -> None:
        self.now += dt
        self.core.tick(self.now)
        self.drain()
        deadline = self.core.next_deadline()
        assert (deadline is None and self.left) or (deadline is not None and deadline > self.now)

    @rule()
    def tick_at_deadline(self) -> None:
        deadline = self.core.next_deadline()
        self.now = max(self.now, deadline if deadline is not None else self.now)
        self.core.tick(self.now)
        self.drain()
        after = self.core.next_deadline()
        assert (after is None and self.left) or (after is not None and after > self.now)

    @rule(data=st.data(), sender=st.sampled_from(PEERS), name=st.sampled_from(NAMES),
          kind=st.sampled_from(["alive", "suspect", "dead", "left"]), moved=st.booleans(),
          meta=st.sampled_from([b"", b"m1", b"x" * 512]))  # fmt: skip
    def membership_news(
        self, data: st.DataObject, sender: str, name: str, kind: str, moved: bool, meta: bytes
    ) -> None:
        inc = self.incarnation(data, name)
        message = {
            "alive": Alive(name, address_of(name, moved and name != sender), inc, meta),
            "suspect": Suspect(name, inc, sender),
            "dead": Dead(name, inc, sender),
            "left": Left(name, inc),
        }[kind]
        self.send(sender, message)

    @rule(sender=st.sampled_from(PEERS), seq=st.integers(0, 2**62),
          meant_for=st.sampled_from(["n0", "", "p9"]), reliable=st.booleans())  # fmt: skip
    def ping(self, sender: str, seq: int, meant_for: str, reliable: bool) -> None:
        self.send(sender, Ping(seq, meant_for), reliable=reliable)

    @precondition(lambda self: self.pings)
    @rule(data=st.data(), nack=st.booleans())
    def answer_a_ping(self, data: st.DataObject, nack: bool) -> None:
        destination, seq, reliable = data.draw(st.sampled_from(self.pings))
        sender = next((n for n in PEERS if address_of(n, False) == destination), "p1")
        self.send(sender, Nack(seq) if nack else Ack(seq), reliable=reliable)

    @rule(sender=st.sampled_from(PEERS), about=st.sampled_from(NAMES), seq=st.integers(0, 99))
    def ping_req(self, sender: str, about: str, seq: int) -> None:
        self.send(sender, PingReq(seq, about, address_of(about, False)))

    @rule(data=st.data(), sender=st.sampled_from(PEERS), join=st.booleans(), reply=st.booleans())
    def push_pull(self, data: st.DataObject, sender: str, join: bool, reply: bool) -> None:
        states = [
            MemberState.of(
                name, address_of(name, data.draw(st.booleans())), self.incarnation(data, name),
                data.draw(st.sampled_from(list(Status))), b"",
            )
            for name in data.draw(st.lists(st.sampled_from(NAMES), max_size=5, unique=True))
        ]  # fmt: skip
        user = data.draw(st.dictionaries(st.sampled_from(["reg", "app"]), st.binary(max_size=8)))
        self.send(sender, PushPull(join, reply, tuple(states), user), reliable=True)

    @rule(sender=st.sampled_from(PEERS), payload=st.binary(max_size=64))
    def user_message(self, sender: str, payload: bytes) -> None:
        self.send(sender, UserMessage("app", payload))

    @rule(sender=st.sampled_from(PEERS), junk=st.binary(max_size=64))
    def garbage(self, sender: str, junk: bytes) -> None:
        self.core.receive(self.now, address_of(sender, False), junk)
        self.drain()

    @rule(sender=st.sampled_from(PEERS))
    def other_cluster(self, sender: str) -> None:
        before = self.core.counters["rejected_label"]
        self.send(sender, Alive("stranger", addr(99), 1), label="other")
        assert self.core.counters["rejected_label"] == before + 1
        assert self.core.member("stranger") is None

    @rule(payload=st.binary(max_size=300), key=st.sampled_from([None, "k"]))
    def broadcast(self, payload: bytes, key: str | None) -> None:
        self.core.broadcast("app", payload, key=key)
        self.drain()

    @rule(meta=st.binary(max_size=40))
    def set_meta(self, meta: bytes) -> None:
        self.core.set_meta(meta, self.now)
        self.drain()

    @rule(seeds=st.lists(st.sampled_from(PEERS), max_size=2))
    def join(self, seeds: list[str]) -> None:
        self.core.join([address_of(s, False) for s in seeds], self.now)
        self.drain()

    @precondition(lambda self: not self.left)
    @rule()
    def leave(self) -> None:
        self.core.leave(self.now)
        self.left = True
        self.drain()

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def own_node_is_never_down_or_suspect(self) -> None:
        me = self.core.member("n0")
        assert me is not None and me.address == HOME
        assert me.status is (Status.LEFT if self.left else Status.UP)

    @invariant()
    def incarnations_never_decrease(self) -> None:
        seen = {m.name: m.incarnation for m in self.core.members()}
        for name, incarnation in seen.items():
            assert incarnation >= self.incarnations.get(name, 0), name
        assert self.core.incarnation == seen["n0"]
        self.incarnations = seen  # a reaped member may come back afresh

    @invariant()
    def alive_bookkeeping_matches_the_view(self) -> None:
        alive = [m for m in self.core.members() if m.name != "n0" and m.status.is_alive]
        assert self.core.alive_count() == len(alive) + 1

    @invariant()
    def the_broadcast_queue_stays_bounded(self) -> None:
        queue = self.core._queue
        keys = list(queue)  # the queue is a mapping of its items by key
        member_news = [k for k in keys if isinstance(k, tuple) and k[0] == "m"]
        assert len(member_news) <= len(self.core.members())  # at most one item per member
        assert len(queue) <= queue.max_items

    @invariant()
    def awareness_stays_in_range(self) -> None:
        assert 0 <= self.core.awareness < self.config.awareness_max_multiplier


class FastSingleCore(SingleCore):
    """The same on timers short enough that reaping, the end of gossip to the dead and
    reconnects happen within a run; no indirect checks, the smallest datagrams."""

    config = Config.local().replace(
        packet_budget=256,
        indirect_checks=0,
        reap_time=5.0,
        reconnect_interval=2.0,
        gossip_to_the_dead_time=3.0,
    )


STEPS = settings(max_examples=60, stateful_step_count=50, deadline=None)
test_single_core = SingleCore.TestCase
test_single_core.settings = STEPS
test_fast_single_core = FastSingleCore.TestCase
test_fast_single_core.settings = STEPS
