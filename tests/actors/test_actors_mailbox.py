"""Bounded mailboxes: backpressure, MailboxFull, the stop rule, dead letters, late replies."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import swimactors
from swimactors import Actor, ActorStopped, AskTimeout, Context, MailboxFull, message
from swimactors.actors.cell import RUNNING, ActorCell


@message
class Item:
    n: int


@message
class Hold:
    pass


class Gate(Actor):
    """Blocks inside ``receive`` on Hold until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = trio.Event()
        self.got: list[int] = []

    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Hold():
                await self.gate.wait()
            case Item(n):
                self.got.append(n)
        return len(self.got)


async def held_gate(
    system: swimactors.System, mailbox_size: int | swimactors.Mailbox = 1024
) -> tuple[Gate, swimactors.ActorRef]:
    """A Gate whose actor is blocked inside ``receive``: what the test tells next queues."""
    gate = Gate()
    ref = await system.spawn(gate, mailbox_size=mailbox_size)
    await ref.tell(Hold())
    await trio.testing.wait_all_tasks_blocked()
    return gate, ref


async def test_tell_blocks_on_a_full_mailbox_and_resumes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=3)
        for n in range(3):
            await ref.tell(Item(n))  # fills the mailbox without waiting
        sent = trio.Event()

        async def fourth() -> None:
            await ref.tell(Item(3))
            sent.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fourth)
            await trio.sleep(5)
            assert not sent.is_set()  # backpressure: still waiting for room
            with pytest.raises(MailboxFull):
                ref.tell_nowait(Item(99))
            gate.gate.set()
            await sent.wait()
        assert await ref.ask(Item(4)) == 5
        assert gate.got == [0, 1, 2, 3, 4]


async def test_a_cancelled_blocked_tell_is_not_delivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=1)
        await ref.tell(Item(0))
        with trio.move_on_after(1):
            await ref.tell(Item(1))
        gate.gate.set()
        assert await ref.ask(Item(2)) == 2
        assert gate.got == [0, 2]


async def test_a_sender_that_gave_up_waiting_leaves_the_mailbox_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=1)
        await ref.tell(Item(0))
        with trio.move_on_after(1):
            await ref.tell(Item(1))  # waits for room, then gives up
        gate.gate.set()
        await trio.testing.wait_all_tasks_blocked()  # drained: the actor is idle
        with trio.fail_after(1):  # room, nobody waiting: the tell queues at once
            await ref.tell(Item(2))
        assert await ref.ask(Item(3)) == 3
        assert gate.got == [0, 2, 3]


async def test_ask_on_a_full_mailbox_is_refused_as_full_without_being_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=1)
        await ref.tell(Item(0))
        with pytest.raises(MailboxFull, match="no room"):
            await ref.ask(Item(1), timeout=1.0)
        gate.gate.set()
        assert await ref.ask(Item(2)) == 2
        assert gate.got == [0, 2]
        assert system.stats.late_replies == 0


async def test_late_reply_is_dropped_and_counted_leaving_nothing_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system)
        for n in range(3):
            with pytest.raises(AskTimeout):
                await ref.ask(Item(n), timeout=0.5)
        gate.gate.set()
        assert await ref.ask(Item(3)) == 4  # the timed-out asks were still handled
        assert system.stats.late_replies == 3
        await trio.sleep(10)  # past every deadline: the heap expires and empties
        assert len(system.ask_deadlines) == 0


async def test_answered_asks_do_not_pile_up_on_the_deadline_heap() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Gate())
        for n in range(5000):
            await ref.ask(Item(n), timeout=60.0)
        assert len(system.ask_deadlines) <= 2048


async def test_asks_one_at_a_time_keep_one_deadline_entry() -> None:
    """An ask made once the one before it was answered takes that one's place (the slot
    beside the heap): 100 asks in a row leave one entry, not 100 awaiting a sweep."""
    async with swimactors.open_system() as system:
        ref = await system.spawn(Gate())
        for n in range(100):
            await ref.ask(Item(n), timeout=60.0)
        assert len(system.ask_deadlines) == 1


async def test_asks_pending_together_time_out_at_their_deadlines(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Asks made while another is pending go on the heap; the slot's ask and theirs each
    time out at its own deadline, whichever is earlier; a later answer is late."""
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system)
        timed_out: dict[str, float] = {}

        async def ask(name: str, delay: float, timeout: float) -> None:
            await trio.sleep(delay)
            with pytest.raises(AskTimeout):
                await ref.ask(Item(0), timeout=timeout)
            timed_out[name] = trio.current_time()

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "slot", 0, 3.0)
            nursery.start_soon(ask, "heap, before the slot's", 1, 1.0)
            nursery.start_soon(ask, "heap, after it", 1, 2.5)
            nursery.start_soon(ask, "heap, made last", 2, 2.0)
        assert {name: at - start for name, at in timed_out.items()} == {
            "slot": pytest.approx(3.0),
            "heap, before the slot's": pytest.approx(2.0),
            "heap, after it": pytest.approx(3.5),
            "heap, made last": pytest.approx(4.0),
        }
        assert len(system.ask_deadlines) == 0
        gate.gate.set()
        assert await ref.ask(Item(1)) == 5
        assert system.stats.late_replies == 4


class _DeadlineSteps(trio.abc.Instrument):
    """Counts the task steps of the system's ask-deadline task."""

    def __init__(self) -> None:
        self.steps = 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.coro.cr_code.co_qualname == "AskDeadlines.run":
            self.steps += 1


async def test_the_deadline_task_does_not_wake_for_answered_asks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """100 asks a tenth of a second apart, each with a 1 s timeout: their deadlines pass
    during the run, and the task wakes about once a timeout (for the ask pending when it
    went to sleep, answered since), not once per answered ask."""
    async with swimactors.open_system() as system:
        ref = await system.spawn(Gate())
        counted = _DeadlineSteps()
        trio.lowlevel.add_instrument(counted)
        for n in range(100):
            assert await ref.ask(Item(n), timeout=1.0) == n + 1
            await trio.sleep(0.1)
        trio.lowlevel.remove_instrument(counted)
        assert 1 <= counted.steps <= 12  # it woke once per answered ask: 90


async def test_stop_turns_queued_messages_into_dead_letters_and_fails_asks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system, mailbox_size=2)
        await ref.tell(Item(0))
        outcomes: list[str] = []

        async def ask(n: int) -> None:
            try:
                await ref.ask(Item(n), timeout=None)
                outcomes.append("reply")
            except ActorStopped:
                outcomes.append("stopped")

        with system.dead_letters.subscribe() as letters:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask, 1)  # queued
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(ask, 2)  # waiting for room
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(system.stop, ref)
                await trio.testing.wait_all_tasks_blocked()
                gate.gate.set()  # the message in hand finishes, the rest are dropped
            assert outcomes == ["stopped", "stopped"]
            assert gate.got == []
            dead = [letters.receive_nowait().message for _ in range(3)]
        assert dead == [Item(0), Item(1), Item(2)]
        assert system.dead_letters.count == 3


async def test_dead_letter_subscribers_that_fall_behind_lose_letters_not_actors() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Gate())
        await system.stop(ref)
        with system.dead_letters.subscribe(buffer=2) as letters:
            for n in range(5):
                await ref.tell(Item(n))
            assert [letters.receive_nowait().message for _ in range(2)] == [Item(0), Item(1)]
        assert system.dead_letters.count == 5
        assert system.dead_letters.dropped == 3
        assert len(system.dead_letters.recent) == 5


async def test_a_subscriber_that_closed_its_channel_does_not_break_delivery() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Gate())
        await system.stop(ref)
        with system.dead_letters.subscribe() as letters:
            await letters.aclose()
            await ref.tell(Item(0))
        assert system.dead_letters.count == 1
        assert system.dead_letters.dropped == 1


async def test_an_ask_cancelled_from_outside_counts_its_reply_as_late(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        gate, ref = await held_gate(system)
        with trio.move_on_after(1):
            await ref.ask(Item(0), timeout=None)
        gate.gate.set()
        assert await ref.ask(Item(1)) == 2
        assert system.stats.late_replies == 1


class Valve(Actor):
    """Records items; while closed, ``receive`` and ``on_stop`` wait for it to open."""

    def __init__(self) -> None:
        self.opened = trio.Event()
        self.got: list[int] = []

    async def receive(self, msg: Any, ctx: Context) -> Any:
        await self.opened.wait()
        self.got.append(msg.n)

    async def on_stop(self) -> None:
        await self.opened.wait()


valve_ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 4)),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.tuples(st.just("nowait"), st.just(0)),
        st.tuples(st.just("open"), st.just(0)),
        st.tuples(st.just("close"), st.just(0)),
        st.tuples(st.just("stop"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=100, deadline=None)
@given(valve_ops)
def test_a_tell_queues_straight_in_exactly_when_the_mailbox_is_open(
    program: list[tuple[str, int]],
) -> None:
    """``limit`` (what a tell's fast path tests) is the capacity while the actor runs
    and no sender waits for room, else 0, through senders parking, giving up, being
    admitted and the actor stopping; once the senders are done, a running actor takes a
    tell at once."""

    async def main() -> None:
        async with swimactors.open_system() as system, trio.open_nursery() as nursery:
            valve = Valve()
            ref = await system.spawn(valve, mailbox_size=2)
            cell = ref.target
            assert isinstance(cell, ActorCell)
            senders: list[trio.CancelScope] = []
            items = iter(range(1_000))

            async def send(count: int, scope: trio.CancelScope) -> None:
                with scope:
                    for _ in range(count):
                        await ref.tell(Item(next(items)))

            for op, arg in program:
                if op == "send":
                    senders.append(trio.CancelScope())
                    nursery.start_soon(send, arg, senders[-1])
                elif op == "cancel" and senders:
                    senders[arg % len(senders)].cancel()
                elif op == "nowait":
                    with contextlib.suppress(MailboxFull):
                        ref.tell_nowait(Item(next(items)))
                elif op == "open":
                    valve.opened.set()
                elif op == "close" and valve.opened.is_set():
                    valve.opened = trio.Event()
                elif op == "stop":
                    nursery.start_soon(system.stop, ref)
                await trio.testing.wait_all_tasks_blocked()
                open_ = cell.state is RUNNING and not cell._waiters
                assert cell.limit == (cell.capacity if open_ else 0)
            for scope in senders:
                scope.cancel()
            valve.opened.set()
            await trio.testing.wait_all_tasks_blocked()
            assert cell.limit == (cell.capacity if cell.state is RUNNING else 0)
            if cell.state is RUNNING:
                with trio.fail_after(1):
                    await ref.tell(Item(-1))
                await trio.testing.wait_all_tasks_blocked()
                assert valve.got[-1] == -1

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
