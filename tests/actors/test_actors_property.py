"""Random spawn/tell/ask/fail/stop programs: no task leaks, no message unaccounted for.

Every message the runtime accepted must end up exactly once as a handled message (a
reply, for an ask) or a dead letter; a message it refused (MailboxFull, an ask that found
no room in time, a send cancelled while waiting) must appear nowhere.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

import trio
import trio.testing
from actor_tasks import count_tasks
from hypothesis import given, settings
from hypothesis import strategies as st

import swimactors
from swimactors import (
    Actor,
    ActorFailed,
    ActorRef,
    ActorStopped,
    AskTimeout,
    Context,
    MailboxFull,
    SystemFailed,
    message,
)
from swimactors.actors import DeadLetter, Strategy


@message
class Job:
    seq: int
    fail: bool = False


@message
class SpawnChild:
    seq: int
    sync: bool


class Handled(defaultdict[int, list[str]]):
    """seq -> paths of the actors that handled it, plus the order of handling."""

    def __init__(self) -> None:
        super().__init__(list)
        self.log: list[tuple[str, int]] = []

    def record(self, path: str, seq: int) -> None:
        self[seq].append(path)
        self.log.append((path, seq))


class Recorder(Actor):
    """Records each job under its own path, yields once, then maybe fails."""

    def __init__(self, handled: Handled) -> None:
        self.handled = handled

    async def receive(self, msg: Any, ctx: Context) -> Any:
        self.handled.record(ctx.self_ref.path, msg.seq)
        if isinstance(msg, SpawnChild):
            factory = _factory(self.handled, msg.sync, msg.seq)
            return await ctx.spawn(factory, mailbox_size=2)
        await trio.sleep(0)
        if msg.fail:
            raise RuntimeError(f"job {msg.seq}")
        return msg.seq


class SyncRecorder(Actor):
    """The plain-def flavour: asks to it may run in the asker's task."""

    def __init__(self, handled: Handled) -> None:
        self.handled = handled

    def receive(self, msg: Any, ctx: Context) -> Any:
        self.handled.record(ctx.self_ref.path, msg.seq)
        if isinstance(msg, SpawnChild):
            return None  # cannot spawn without awaiting; still a handled message
        if msg.fail:
            raise RuntimeError(f"job {msg.seq}")
        return msg.seq


class EagerRecorder(SyncRecorder):
    """An async receive without await: it cannot wait, so asks may run in the asker's task."""

    async def receive(self, msg: Any, ctx: Context) -> Any:  # type: ignore[override]
        self.handled.record(ctx.self_ref.path, msg.seq)
        if isinstance(msg, SpawnChild):
            return None
        if msg.fail:
            raise RuntimeError(f"job {msg.seq}")
        return msg.seq


def _factory(handled: Handled, sync: bool, seq: int) -> Any:
    """A Recorder, or one whose receive cannot wait (plain def or async without await,
    by the parity of ``seq``)."""
    if not sync:
        return lambda: Recorder(handled)
    return (lambda: SyncRecorder(handled)) if seq % 2 else (lambda: EagerRecorder(handled))


STRATEGIES: list[Strategy] = [
    swimactors.restart(3, 1.0),
    swimactors.resume(),
    swimactors.stop(),
    swimactors.restart(1, 5.0, scope="all_for_one"),
    swimactors.escalate(),
]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("spawn"), st.integers(0, len(STRATEGIES) - 1), st.booleans()),
        st.tuples(st.just("child"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("tell"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("tell_nowait"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("ask"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("stop"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("sleep"), st.integers(0, 3), st.booleans()),
    ),
    max_size=40,
)


class Ledger:
    """What the driver did: accepted, refused, and in-doubt message numbers."""

    def __init__(self) -> None:
        self.accepted: dict[int, str | None] = {}  # seq -> path, or None if unknown
        self.refused: set[int] = set()
        self.in_doubt: set[int] = set()
        self.replies: dict[int, Any] = {}


async def _run(program: list[tuple[str, int, bool]]) -> None:
    handled = Handled()
    ledger = Ledger()
    refs: list[ActorRef] = []
    letters: list[DeadLetter] = []
    seq = 0
    before = count_tasks()
    with contextlib.ExitStack() as stack, trio.fail_after(3600):  # virtual time: a hang fails
        try:
            async with swimactors.open_system(mailbox_size=2) as system:
                channel = stack.enter_context(system.dead_letters.subscribe(100_000))
                for op, arg, flag in program:
                    seq += 1
                    await _step(system, op, arg, flag, seq, refs, handled, ledger)
        except SystemFailed as exc:
            assert isinstance(exc.__cause__, RuntimeError)
        with contextlib.suppress(trio.WouldBlock):
            while True:
                letters.append(channel.receive_nowait())
    _check(handled, ledger, letters, system)
    assert count_tasks() == before


async def _step(
    system: swimactors.System,
    op: str,
    arg: int,
    flag: bool,
    seq: int,
    refs: list[ActorRef],
    handled: Handled,
    ledger: Ledger,
) -> None:
    if op == "spawn":
        refs.append(await system.spawn(_factory(handled, flag, seq), supervision=STRATEGIES[arg]))
        return
    if op == "sleep":
        await trio.sleep(arg * 0.4)
        return
    if not refs:
        return
    ref = refs[arg % len(refs)]
    if op == "stop":
        await system.stop(ref)
        return
    msg = SpawnChild(seq, flag) if op == "child" else Job(seq, fail=flag)
    if op == "tell":
        ledger.in_doubt.add(seq)  # until tell returns (it may be cancelled while waiting)
        await ref.tell(msg)
        ledger.in_doubt.discard(seq)
        ledger.accepted[seq] = ref.path
        return
    if op == "tell_nowait":
        try:
            ref.tell_nowait(msg)
        except MailboxFull:
            ledger.refused.add(seq)
        else:
            ledger.accepted[seq] = ref.path
        return
    ledger.in_doubt.add(seq)
    try:
        ledger.replies[seq] = await ref.ask(msg, timeout=1.0)
    except MailboxFull:  # found no room in time: refused, never queued
        ledger.refused.add(seq)
        ledger.in_doubt.discard(seq)
        return
    except AskTimeout:
        return  # accepted but unanswered in time: handled late or dead-lettered
    except (ActorFailed, ActorStopped):
        pass
    ledger.in_doubt.discard(seq)
    ledger.accepted[seq] = ref.path
    if isinstance(ledger.replies.get(seq), ActorRef):
        child: ActorRef = ledger.replies[seq]
        refs.append(child)


def _check(
    handled: Handled, ledger: Ledger, letters: list[DeadLetter], system: swimactors.System
) -> None:
    dead: dict[int, int] = defaultdict(int)
    for letter in letters:
        dead[letter.message.seq] += 1
    for seq, path in ledger.accepted.items():
        outcomes = len(handled.get(seq, [])) + dead.get(seq, 0)
        assert outcomes == 1, f"accepted message {seq} ended {outcomes} times"
        if seq in handled and path is not None:
            assert handled[seq] == [path]
    for seq in ledger.refused:
        assert seq not in handled and seq not in dead, f"refused message {seq} got through"
    for seq in ledger.in_doubt:
        assert len(handled.get(seq, [])) + dead.get(seq, 0) <= 1
    for seq, reply in ledger.replies.items():
        assert seq in handled
        if not isinstance(reply, ActorRef) and reply is not None:
            assert reply == seq
    # per recipient, messages were handled in the order they were accepted
    order: dict[str, list[int]] = defaultdict(list)
    for path, seq in handled.log:
        order[path].append(seq)
    for seqs in order.values():
        assert seqs == sorted(seqs)
    assert system.live_actors == 0
    assert system.children == {}


@settings(max_examples=150)
@given(ops)
def test_random_programs_account_for_every_message(program: list[tuple[str, int, bool]]) -> None:
    trio.run(_run, program, clock=trio.testing.MockClock(autojump_threshold=0))
