"""Mailbox policies: overflow (backpressure, drop-newest, drop-oldest, fail) and priority,
as a hypothesis state machine against a model, and through running actors."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from test_actors_mailbox import Hold, Item, held_gate

import swimactors
from swimactors import Actor, Context, Mailbox, MailboxFull
from swimactors.actors.cell import ActorCell, offer_all
from swimactors.actors.mailbox import OVERFLOWS
from swimactors.actors.observe import DeadLetters, Stats
from swimactors.actors.supervision import DEFAULT_STRATEGY


class _Idle(Actor):
    def receive(self, msg: Any, ctx: Context) -> None:
        pass


class _System:
    """What a cell needs from its system to queue, drop and count (no task runs)."""

    def __init__(self) -> None:
        self.name = "model"
        self.stats = Stats()
        self.dead_letters = DeadLetters()
        self.children: dict[str, ActorCell] = {}


class MailboxMachine(RuleBasedStateMachine):
    """Tells and takes on a cell whose actor never runs, against a list model."""

    def __init__(self) -> None:
        super().__init__()
        self.cell: ActorCell | None = None

    @precondition(lambda self: self.cell is None)
    @rule(
        size=st.integers(1, 5),
        overflow=st.sampled_from(OVERFLOWS),
        prioritised=st.booleans(),
    )
    def open(self, size: int, overflow: Any, prioritised: bool) -> None:
        self.mailbox = Mailbox(size, overflow, (lambda m: m[0]) if prioritised else None)
        self.system = _System()
        self.cell = ActorCell(
            self.system,  # type: ignore[arg-type]
            self.system,
            "m",
            "m",
            1,
            _Idle(),
            None,
            DEFAULT_STRATEGY,
            self.mailbox,
        )
        self.model: list[tuple[int, int]] = []  # (key, serial) in arrival order
        self.serial = 0
        self.drops = 0
        self.dead = 0

    def _next(self) -> int:
        """Index in the model of the message the actor would handle next."""
        if self.mailbox.priority is None:
            return 0
        return min(range(len(self.model)), key=lambda i: self.model[i])

    @precondition(lambda self: self.cell is not None)
    @rule(key=st.integers(0, 3))
    def tell(self, key: int) -> None:
        assert self.cell is not None
        self.serial += 1
        msg = (key, self.serial)
        full = len(self.model) == self.mailbox.size
        overflow = self.mailbox.overflow
        if full and overflow in ("backpressure", "fail"):
            with pytest.raises(MailboxFull):
                self.cell.tell_nowait(msg, None)
            self.drops += overflow == "fail"
            return
        self.cell.tell_nowait(msg, None)
        if not full:
            self.model.append(msg)
        elif overflow == "drop-newest":
            self.drops += 1
            self.dead += 1
        else:  # drop-oldest: the oldest, or with priorities the least urgent
            victim = 0 if self.mailbox.priority is None else self.model.index(max(self.model))
            del self.model[victim]
            self.model.append(msg)
            self.drops += 1
            self.dead += 1

    @precondition(lambda self: self.cell is not None)
    @rule(keys=st.lists(st.integers(0, 3), max_size=7))
    def offer_a_burst(self, keys: list[int]) -> None:
        """A burst of tells from the wire: as many offers in order, stopping at the first
        a backpressure mailbox has no room for (what was taken is returned)."""
        assert self.cell is not None
        burst = []
        for key in keys:
            self.serial += 1
            burst.append((key, self.serial))
        taken = offer_all(self.cell, burst, None)
        expected = len(burst)
        for at, msg in enumerate(burst):
            overflow = self.mailbox.overflow
            if len(self.model) < self.mailbox.size:
                self.model.append(msg)
            elif overflow == "backpressure":
                expected = at
                break
            elif overflow in ("drop-newest", "fail"):  # from the wire, fail drops it
                self.drops += 1
                self.dead += 1
            else:
                victim = 0 if self.mailbox.priority is None else self.model.index(max(self.model))
                del self.model[victim]
                self.model.append(msg)
                self.drops += 1
                self.dead += 1
        assert taken == expected

    @precondition(lambda self: self.cell is not None and self.model)
    @rule()
    def take(self) -> None:
        assert self.cell is not None
        msg, _sender, _reply = self.cell.queue.popleft()
        assert msg == self.model.pop(self._next())

    @invariant()
    def counted(self) -> None:
        if self.cell is not None:
            assert len(self.cell.queue) == len(self.model) <= self.mailbox.size
            assert self.system.stats.mailbox_drops == self.drops
            assert self.system.dead_letters.count == self.dead

    # a refusal (``fail``) raises at the sender: counted, but not a dead letter


MailboxMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
TestMailboxMachine = MailboxMachine.TestCase


# -- through running actors ----------------------------------------------------------------


async def test_drop_newest_drops_and_fails_the_ask(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=Mailbox(2, "drop-newest"))
        for n in range(5):
            await ref.tell(Item(n))
        with pytest.raises(MailboxFull):
            await ref.ask(Item(9))
        assert system.stats.mailbox_drops == 4
        gate.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.ask(Item(10)) == 3
        assert gate.got == [0, 1, 10]


async def test_drop_oldest_keeps_the_newest_and_fails_the_evicted_ask(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=Mailbox(2, "drop-oldest"))
        async with trio.open_nursery() as nursery:
            failed: list[type[BaseException]] = []

            async def evicted_ask() -> None:
                with pytest.raises(MailboxFull) as raised:
                    await ref.ask(Item(0))
                failed.append(raised.type)

            nursery.start_soon(evicted_ask)
            await trio.testing.wait_all_tasks_blocked()
            for n in range(1, 5):
                ref.tell_nowait(Item(n))
        assert failed == [MailboxFull]
        assert system.stats.mailbox_drops == 3
        gate.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.ask(Item(5)) == 3
        assert gate.got == [3, 4, 5]


@pytest.mark.parametrize("overflow", ["drop-newest", "drop-oldest"])
async def test_a_loop_telling_a_full_dropping_mailbox_lets_the_actor_run(overflow: Any) -> None:
    """A tell that drops yields once: the actor keeps taking messages while the loop runs
    (a tell that never yielded would leave it the first two and drop all the rest)."""

    class Counter(Actor):
        def __init__(self) -> None:
            self.got: list[int] = []

        async def receive(self, msg: Any, ctx: Context) -> None:
            self.got.append(msg.n)

    async with swimactors.open_system() as system:
        counter = Counter()
        ref = await system.spawn(counter, mailbox_size=Mailbox(2, overflow))
        for n in range(200):
            await ref.tell(Item(n))
        assert len(counter.got) > 50
        await trio.testing.wait_all_tasks_blocked()
        assert len(counter.got) + system.stats.mailbox_drops == 200


async def test_fail_raises_at_once(autojump_clock: trio.testing.MockClock) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=Mailbox(1, "fail"))
        await ref.tell(Item(0))
        with pytest.raises(MailboxFull):
            await ref.tell(Item(1))
        with pytest.raises(MailboxFull):
            await ref.ask(Item(2))
        assert system.stats.mailbox_drops == 2
        gate.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert await ref.ask(Item(3)) == 2


async def test_a_priority_mailbox_hands_out_the_lowest_key_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def urgency(msg: Any) -> int:
        return -msg.n if isinstance(msg, Item) else 0

    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=Mailbox(10, priority=urgency))
        for n in (1, 3, 2, 3):
            await ref.tell(Item(n))
        await ref.tell(Hold())  # key 0: after every Item (negative keys)
        gate.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        await trio.testing.wait_all_tasks_blocked()
        assert gate.got == [3, 3, 2, 1]


def test_bad_policies_are_value_errors() -> None:
    with pytest.raises(ValueError, match="overflow"):
        Mailbox(4, "drop-everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        Mailbox(0)
