"""ActorCell: the task that runs one actor, and the local delivery target of its ref.

The cell owns a bounded mailbox (FIFO or by priority, with an overflow policy; see
:mod:`.mailbox`) plus the senders waiting for room, runs
messages through the actor in batches without touching the scheduler while work is
queued (yielding every ``BUDGET`` messages so no actor starves the others), and carries
out lifecycle and supervision.  Control signals (stop, failure, sibling restart, death
notices) bypass the mailbox, so a full mailbox never holds them up.

Stop rule: a stopping actor finishes the message in hand; then every message still queued
(or waiting for room) becomes a dead letter and every pending ask fails with
:class:`ActorStopped`; its children stop, then its ``on_stop`` runs.

An actor whose ``receive`` is a plain ``def`` cannot wait, nor can an ``async def`` whose
body has no ``await`` (its coroutine ends in its first step), so an ask that finds it idle
is answered by running ``receive`` directly in the asker's task: no task switch at all.
"""

from __future__ import annotations

import dis
import enum
import functools
import inspect
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from itertools import repeat
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import outcome
import trio
from trio.lowlevel import current_task, reschedule, wait_task_rescheduled

from ..logs import logger
from . import step_end, supervision
from .actor import Actor
from .context import Context, IdleTimer, Timer
from .errors import ActorFailed, ActorStopped, MailboxFull, describe
from .events import ActorExited, ActorRestarted, ActorStarted
from .mailbox import Mailbox, Queue, evict
from .message import Terminated
from .pipes import Pipe
from .ref import READY, ActorRef, Watcher, current_sender, sender_now
from .reply import Notify, Reply
from .streams import Producer, ReplyStream, StreamFeed, open_local

if TYPE_CHECKING:
    from .runtime import LocalSystem

__all__ = ["BUDGET", "RUNNING", "ActorCell", "CellRef", "Parent", "State", "offer_all"]

log = logger("swimactors.actors")

BUDGET = 256
"""Messages an actor handles in a row (and direct asks a task makes) before yielding."""
_BATCH = range(BUDGET)

Envelope = tuple[Any, ActorRef | None, Reply | None]
Handler = Callable[[Any, Context], Any]
"""What handles a message: ``receive`` or a behaviour from ``ctx.become``."""
Factory = Callable[[], Actor]

_sync_receive: dict[type, bool] = {}


def _is_sync(actor: Actor) -> bool:
    """Whether this actor's class defines ``receive`` as a plain function (cached)."""
    cls = type(actor)
    sync = _sync_receive.get(cls)
    if sync is None:
        sync = _sync_receive[cls] = not inspect.iscoroutinefunction(cls.receive)
    return sync


_SUSPENDING = frozenset(
    {"YIELD_VALUE", "SEND", "GET_AWAITABLE", "GET_AITER", "GET_ANEXT", "BEFORE_ASYNC_WITH"}
)
"""The opcodes of ``await``, ``async for`` and ``async with``: a coroutine suspends only there."""
_never_waits_by_code: dict[types.CodeType, bool] = {}


def _never_waits(handler: Handler) -> bool:
    """Whether ``handler`` is an ``async def`` whose body has no ``await``, ``async for``
    or ``async with`` (read off its bytecode, cached): its coroutine returns in its first
    step, so it can no more wait than a plain ``def`` can."""
    code = getattr(getattr(handler, "__func__", handler), "__code__", None)
    if not isinstance(code, types.CodeType) or not code.co_flags & inspect.CO_COROUTINE:
        return False
    never = _never_waits_by_code.get(code)
    if never is None:
        ops = {instruction.opname for instruction in dis.get_instructions(code)}
        never = _never_waits_by_code[code] = ops.isdisjoint(_SUSPENDING)
    return never


def _direct_handler(receive: Handler, sync: bool) -> Handler | None:
    """What an ask that finds the actor idle runs in the asker's task: a plain ``def``
    receive itself, an ``async def`` one that cannot wait (:func:`_never_waits`) run to
    its end by :func:`_run_through`; None for one that can wait."""
    if sync:
        return receive
    if _never_waits(receive):
        return functools.partial(_run_through, receive)
    return None


def _run_through(receive: Handler, msg: Any, ctx: Context) -> Any:
    """What an ``async`` ``receive`` that cannot suspend returns for ``msg``, from its
    coroutine's one step (a loop over a generator that awaits it: no StopIteration to
    catch)."""
    coro = receive(msg, ctx)
    answer: list[Any] = []
    for _ in _await_into(answer, coro):
        coro.close()
        raise RuntimeError(f"{coro!r} suspended although its code has no await")
    return answer[0]


@types.coroutine
def _await_into(answer: list[Any], coro: Coroutine[Any, Any, Any]) -> Generator[Any, None, None]:
    answer.append((yield from coro))


class State(enum.Enum):
    """A cell's life: running, stopping (children and ``on_stop`` first), dead."""

    RUNNING = "running"
    STOPPING = "stopping"
    DEAD = "dead"


RUNNING = State.RUNNING
"""The member as a module constant: reading an Enum member off its class costs about
200 ns on Python 3.11 (a global about 15), and the hot paths test it per message."""
_DEAD = State.DEAD


class Signal(enum.Enum):
    """What a cell's loop handles before its mailbox: a failure, a restart ordered by its
    supervisor, a watched actor's termination."""

    FAIL = "fail"
    RESTART = "restart"
    TERMINATED = "terminated"


class Parent(Protocol):
    """Who supervises a cell: another cell, or the system at the top."""

    children: dict[str, ActorCell]

    def child_failed(self, error: BaseException) -> None: ...


class _Waiter:
    """A sender parked on a full mailbox, with the envelope it will add."""

    __slots__ = ("envelope", "task")

    def __init__(self, task: trio.lowlevel.Task, envelope: Envelope) -> None:
        self.task = task
        self.envelope = envelope


class CellRef(ActorRef):
    """The ref of a plain local actor: a tell that finds room queues into the actor's
    mailbox from here, one Python call in all; anything else goes to :meth:`ActorCell.tell`."""

    __slots__ = ()

    def tell(self, msg: Any) -> Awaitable[None]:
        """Deliver ``msg``; waits only while the mailbox is full (see :meth:`ActorRef.tell`)."""
        cell: ActorCell = self._target  # type: ignore[assignment]
        queue = cell.queue
        if len(queue) < cell.limit:
            queue.append((msg, sender_now(), None))
            if cell._parked:
                cell._wake()
            return READY
        return cell.tell(msg, sender_now())


def offer_all(endpoint: Any, msgs: list[Any], sender: ActorRef | None) -> int:
    """``endpoint.offer`` of each of ``msgs`` in order until one does not fit (the
    sender must wait for it); how many were taken.  A plain actor with room takes them
    all in one step (:meth:`ActorCell.queue_all`); cells that route (pools) each."""
    if type(endpoint) is ActorCell and endpoint.queue_all(msgs, sender):
        return len(msgs)
    for taken, msg in enumerate(msgs):
        if not endpoint.offer(msg, sender, None):
            return taken
    return len(msgs)


class ActorCell:
    """Runs one actor (across restarts) and takes delivery of its messages."""

    ref_type: ClassVar[type[ActorRef]] = CellRef
    """The class of this cell's ref: a cell that overrides ``tell`` brings its own."""

    __slots__ = (
        "_direct",
        "_done",
        "_escalate",
        "_factory",
        "_holding",
        "_interrupt",
        "_parked",
        "_receive",
        "_signals",
        "_stop_requested",
        "_sync",
        "_task",
        "_waiters",
        "_watchers",
        "_windows",
        "behaviours",
        "capacity",
        "children",
        "ctx",
        "idle_since",
        "idle_timer",
        "instance",
        "limit",
        "mailbox",
        "name",
        "parent",
        "queue",
        "reason",
        "ref",
        "state",
        "strategy",
        "streams",
        "system",
        "timers",
        "watching",
    )

    def __init__(
        self,
        system: LocalSystem,
        parent: Parent,
        name: str,
        path: str,
        uid: int,
        instance: Actor,
        factory: Factory | None,
        strategy: supervision.Strategy,
        mailbox: Mailbox,
    ) -> None:
        self.system = system
        self.parent = parent
        self.name = name
        self.ref = self.ref_type(system.name, path, uid, self)
        self.instance = instance
        self._factory = factory
        self._sync = _is_sync(instance)
        self._receive: Handler = instance.receive
        self._direct = _direct_handler(self._receive, self._sync)
        """What an ask that finds the actor idle runs in the asker's task (None: ``receive``
        can wait, the ask goes through the mailbox)."""
        self.behaviours: list[Handler] | None = None
        """Handlers ``ctx.become`` stacked over ``receive`` (None: just ``receive``)."""
        self.idle_timer: IdleTimer | None = None
        """What ``ctx.set_receive_timeout`` started, while it runs."""
        self.idle_since = 0.0
        """When the actor last went idle (kept only while an idle timer runs)."""
        self.strategy = strategy
        self.mailbox = mailbox
        self.capacity = mailbox.size
        self.ctx = Context(self)
        instance._context = self.ctx
        self.queue: Queue = mailbox.new_queue()
        self.children: dict[str, ActorCell] = {}
        self.state = State.RUNNING
        self.limit = self.capacity
        """How many messages a tell may find queued and still queue straight in: the
        capacity while the actor runs and no sender waits for room, else 0 (one test on
        the hot path instead of three)."""
        self.reason: str | None = None
        # Created on first use: most actors never need them.
        self.timers: set[Timer | IdleTimer] | None = None
        self.streams: set[StreamFeed | Producer | Pipe] | None = None
        """Streams read into this actor and streamed replies it produces."""
        self.watching: set[ActorRef] | None = None
        self._waiters: dict[_Waiter, None] | None = None
        self._signals: deque[tuple[Signal, Any]] | None = None
        self._watchers: set[Watcher] | None = None
        self._windows: dict[supervision.Restart, supervision.RestartWindow] | None = None
        self._done: trio.Event | None = None
        self._escalate: BaseException | None = None
        self._task: trio.lowlevel.Task | None = None
        self._parked = False
        self._holding: step_end.ReadRole | None = None
        """The read role of a connection whose socket the parked actor task waits on
        (:meth:`_loop`): waking it means kicking it off that socket."""
        self._interrupt = False
        self._stop_requested = False

    # -- delivery (the Target protocol) ------------------------------------------------

    def _offer(self, envelope: Envelope) -> bool:
        """Queue ``envelope`` if there is room and nobody is waiting for it, wake the actor;
        False when the mailbox is full (see :meth:`_overflow`) or the actor stopped."""
        if len(self.queue) < self.limit:
            self.queue.append(envelope)
            if self._parked:
                self._wake()
            return True
        return False

    def _overflow(self, envelope: Envelope) -> bool:
        """Apply a drop policy to a full mailbox: True when a message was dropped (this one
        or the oldest, which makes room for this one), False when the sender must wait
        (backpressure) or be refused (fail)."""
        overflow = self.mailbox.overflow
        if overflow == "drop-newest":
            self._drop(envelope)
            return True
        if overflow == "drop-oldest":
            self._drop(evict(self.queue))
            self.queue.append(envelope)
            return True
        return False

    def _drop(self, envelope: Envelope) -> None:
        """Count a message the overflow policy drops, dead-letter it, fail its ask."""
        msg, sender, reply = envelope
        self.system.stats.mailbox_drops += 1
        self.system.dead_letters.publish(self.ref, msg, sender)
        if reply is not None:
            reply.set(outcome.Error(self._full()))

    def _full(self) -> MailboxFull:
        return MailboxFull(f"mailbox of {self.ref} is full ({self.capacity} messages)")

    def _when_full(self, envelope: Envelope) -> Awaitable[None]:
        """What a sender does when the mailbox is full: wait for room, fail, or drop (and
        yield once, so a loop telling a full mailbox still lets the actor run)."""
        overflow = self.mailbox.overflow
        if overflow == "backpressure":
            return self._wait_for_room(envelope)
        if overflow == "fail":
            self.system.stats.mailbox_drops += 1
            raise self._full()
        self._overflow(envelope)
        return trio.lowlevel.checkpoint()

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        if self.state is not RUNNING:
            self.system.dead_letters.publish(self.ref, msg, sender)
            return trio.lowlevel.checkpoint()  # a loop telling the dead still yields
        envelope = (msg, sender, None)
        return READY if self._offer(envelope) else self._when_full(envelope)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        envelope = (msg, sender, None)
        if self.state is not RUNNING:
            self.system.dead_letters.publish(self.ref, msg, sender)
        elif not (self._offer(envelope) or self._overflow(envelope)):
            if self.mailbox.overflow == "fail":
                self.system.stats.mailbox_drops += 1
            raise self._full()

    async def ask(self, msg: Any, sender: ActorRef | None, timeout: float | None) -> Any:
        if self.state is not RUNNING:
            self.system.dead_letters.publish(self.ref, msg, sender)
            raise ActorStopped(f"{self.ref} is stopped")
        if self._parked:  # then this is not the actor's own task
            if self._direct is not None and not self.queue:
                return await self._ask_directly(msg, sender)
        elif current_task() is self._task:
            raise RuntimeError(f"{self.ref} asked itself: it cannot reply while it waits")
        deadline = None if timeout is None else self.system.now() + timeout
        reply = Reply(self.system.stats, self.ref)
        envelope = (msg, sender, reply)
        if self._offer(envelope):
            pass
        elif deadline is None:
            await self._when_full(envelope)
        else:
            with trio.move_on_at(deadline) as scope:
                await self._when_full(envelope)
            if scope.cancelled_caught:
                raise MailboxFull(f"no room in the mailbox of {self.ref} within {timeout} s")
        if deadline is not None and reply.result is None:  # (not yet answered or dropped)
            self.system.ask_deadlines.add(deadline, reply)
        return await reply.wait()

    def start_ask(
        self, msg: Any, sender: ActorRef | None, timeout: float | None, notify: Notify
    ) -> Reply | None:
        """An ask without a task (:meth:`ActorRef.start_ask`): answered at once by an idle
        plain-``def`` actor, else queued; None when it must wait for room."""
        reply = Reply(self.system.stats, self.ref, notify)
        answer = self.ask_now(msg, sender)
        if answer is not None:
            reply.set(answer)
        elif not self.offer(msg, sender, reply):
            return None
        elif timeout is not None and reply.pending:
            self.system.ask_deadlines.add(self.system.now() + timeout, reply)
        return reply

    def offer(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> bool:
        """Queue a delivery from another node if there is room or the overflow policy
        disposes of it; False when the sender must wait (backpressure).

        To a stopped actor the message is a dead letter and the reply an ActorStopped
        error; a ``fail`` mailbox that is full drops it like ``drop-newest`` (all count
        as delivered: True).
        """
        if self.state is not RUNNING:
            self.system.dead_letters.publish(self.ref, msg, sender)
            if reply is not None:
                reply.set(outcome.Error(ActorStopped(f"{self.ref} is stopped")))
            return True
        envelope = (msg, sender, reply)
        if self._offer(envelope) or self._overflow(envelope):
            return True
        if self.mailbox.overflow == "fail":
            self._drop(envelope)
            return True
        return False

    def queue_all(self, msgs: list[Any], sender: ActorRef | None) -> bool:
        """Queue all of ``msgs`` (a burst of tells from another node) in one step if this
        plain running cell's FIFO mailbox has room for them all; False (nothing queued)
        if not."""
        queue = self.queue
        if type(queue) is not deque or self.limit - len(queue) < len(msgs):
            return False
        queue.extend(zip(msgs, repeat(sender), repeat(None)))
        if self._parked:
            self._wake()
        return True

    def behind(self) -> bool:
        """At least a whole batch (:data:`BUDGET` messages) is queued: whoever feeds this
        actor from the wire should let it run before feeding it more."""
        return len(self.queue) >= BUDGET

    def ask_now(self, msg: Any, sender: ActorRef | None) -> outcome.Outcome[Any] | None:
        """Answer an ask from another node at once if this is an idle actor whose receive
        cannot wait (:func:`_direct_handler`), as a local direct ask does; None when it
        must go through the mailbox (also while the actor's own task, holding a
        connection's read role, is the one reading the ask: :meth:`_loop`)."""
        direct = self._direct
        if (
            direct is None
            or not self._parked
            or self.queue
            or self._holding is not None
            or self.state is not RUNNING
        ):
            return None
        assert self._task is not None
        ctx = self.ctx
        ctx.sender = sender
        try:
            return outcome.Value(self._task.context.run(direct, msg, ctx))
        except Exception as exc:
            self._fail(exc)
            return outcome.Error(ActorFailed.from_exception(exc))
        finally:
            ctx.sender = None

    async def put(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> None:
        """Queue a delivery from another node, waiting while the mailbox is full."""
        if not self.offer(msg, sender, reply):
            await self._wait_for_room((msg, sender, reply))

    async def feed(self, msg: Any) -> None:
        """Queue an item of a stream read into this actor, waiting for room whatever the
        overflow policy (a stream is read no faster than the mailbox takes it)."""
        if self.state is not RUNNING:
            self.system.dead_letters.publish(self.ref, msg, None)
        elif len(self.queue) < self.limit:
            self.queue.append((msg, None, None))
            if self._parked:
                self._wake()
        else:
            await self._wait_for_room((msg, None, None))

    def start_stream(self, stream: StreamFeed | Producer | Pipe, *args: Any) -> None:
        """Run ``stream`` (``args`` to its ``run``; a pipe too) until it ends or this actor
        stops or restarts (an actor that stopped since it answered ends it at once)."""
        if self.state is not RUNNING:
            if isinstance(stream, Producer):
                stream.stop(f"{self.ref} stopped")
            else:
                stream.cancel()
        else:
            if self.streams is None:
                self.streams = set()
            self.streams.add(stream)
        self.system.nursery.start_soon(stream.run, *args)

    def forget_stream(self, stream: StreamFeed | Producer | Pipe) -> None:
        """Stop tracking ``stream`` (it ended): a stop or restart no longer cancels it."""
        if self.streams is not None:
            self.streams.discard(stream)

    def open_stream(
        self, msg: Any, sender: ActorRef | None, window: int, timeout: float | None
    ) -> ReplyStream:
        """A stream request to this actor (``ref.stream``)."""
        return ReplyStream(
            open_local(self, lambda: self.ask(msg, sender, timeout)), window, timeout
        )

    async def _ask_directly(self, msg: Any, sender: ActorRef | None) -> Any:
        """Run a receive that cannot wait (:func:`_direct_handler`) from the asker's task
        (so this is safe), inside the actor task's contextvars so it sees what its own
        task would."""
        assert self._task is not None and self._direct is not None
        ctx = self.ctx
        ctx.sender = sender
        try:
            result = self._task.context.run(self._direct, msg, ctx)
        except Exception as exc:
            self._fail(exc)
            raise ActorFailed.from_exception(exc) from None
        finally:
            ctx.sender = None
        if self.system.spend_direct_budget():
            await trio.lowlevel.checkpoint()
        return result

    async def _wait_for_room(self, envelope: Envelope) -> None:
        task = current_task()
        if task is self._task:  # waiting for itself to make room would never end
            raise MailboxFull(f"{self.ref} told itself a message with its mailbox full")
        waiter = _Waiter(task, envelope)
        if self._waiters is None:
            self._waiters = {}
        waiters = self._waiters
        waiters[waiter] = None
        self.limit = 0

        def abort(raise_cancel: Any) -> trio.lowlevel.Abort:
            del waiters[waiter]
            if not waiters:
                self._reopen()
            return trio.lowlevel.Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def _admit_waiter(self, waiters: dict[_Waiter, None]) -> None:
        """Move the longest-waiting sender's message into the mailbox and release it."""
        waiter = next(iter(waiters))
        del waiters[waiter]
        self.queue.append(waiter.envelope)
        reschedule(waiter.task)
        if not waiters:
            self._reopen()

    def _reopen(self) -> None:
        """No sender waits for room any more: tells queue straight in again (if running)."""
        if self.state is RUNNING:
            self.limit = self.capacity

    def behave(self, behaviours: list[Handler] | None) -> None:
        """Handle messages with the top of ``behaviours`` (None or empty: ``receive``),
        from the next message on (a batch in progress is cut short to pick it up)."""
        self.behaviours = behaviours or None
        self._receive = behaviours[-1] if behaviours else self.instance.receive
        self._sync = (
            _is_sync(self.instance)
            if not behaviours
            else not inspect.iscoroutinefunction(self._receive)
        )
        self.choose_direct()
        self._interrupt = True

    def choose_direct(self) -> None:
        """Answer asks in the asker's task when ``receive`` cannot wait, except while an
        idle timer runs: it must see every message wake the actor."""
        self._direct = (
            None if self.idle_timer is not None else _direct_handler(self._receive, self._sync)
        )

    @property
    def parked(self) -> bool:
        """Whether the actor's task waits for a message (it is idle)."""
        return self._parked

    def add_watcher(self, watcher: Watcher) -> None:
        if self.state is _DEAD:
            watcher.notify_terminated(self.ref, self.reason)
        else:
            if self._watchers is None:
                self._watchers = set()
            self._watchers.add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        if self._watchers is not None:
            self._watchers.discard(watcher)

    # -- signals from other actors and the system --------------------------------------

    def notify_terminated(self, ref: ActorRef, reason: str | None) -> None:
        """A watched actor ``ref`` terminated: handled before the mailbox, as ``Terminated``."""
        self._signal(Signal.TERMINATED, (ref, reason))

    def child_failed(self, error: BaseException) -> None:
        """A child failed with ``error``: this cell's supervision decides, before its mailbox."""
        self._signal(Signal.FAIL, error)

    def request_stop(self) -> None:
        """Stop once the message being handled is done (children and ``on_stop`` first)."""
        if self.state is RUNNING:
            self._stop_requested = self._interrupt = True
            if self._parked:
                self._wake()

    def _signal(self, kind: Signal, arg: Any, *, urgent: bool = False) -> None:
        if self.state is RUNNING:
            if self._signals is None:
                self._signals = deque()
            if urgent:
                self._signals.appendleft((kind, arg))
            else:
                self._signals.append((kind, arg))
            self._interrupt = True
            if self._parked:
                self._wake()

    def _wake(self) -> None:
        self._parked = False
        if self._holding is not None:
            self._holding.kick()
            return
        assert self._task is not None
        reschedule(self._task)

    def _still_parked(self) -> bool:
        return self._parked

    def _abort_park(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    async def wait_stopped(self) -> None:
        """Return once the actor and its children have stopped."""
        if self.state is not _DEAD:
            if self._done is None:
                self._done = trio.Event()
            await self._done.wait()

    # -- the actor's task ----------------------------------------------------------------

    async def run(self) -> None:
        """The actor's task: ``on_start``, then its messages one at a time until it stops."""
        self._task = current_task()
        current_sender.set(self.ref)
        try:
            if type(self.instance).on_start is not Actor.on_start:
                await self._hook(self.instance.on_start, fail=True)
            if self.system.event_hub.active:
                self.system.event_hub.publish(ActorStarted(self.ref))
            await self._loop()
        finally:
            self._finish()

    async def _loop(self) -> None:
        queue = self.queue
        popleft = queue.popleft
        ctx = self.ctx
        abort_park = self._abort_park
        still_parked = self._still_parked
        lent = step_end.lent_reads()
        task = self._task
        assert task is not None
        while True:
            if self._interrupt:
                if await self._handle_interrupt():
                    return
                continue
            if not queue:
                self._parked = True
                if self.idle_timer is not None:
                    self.idle_since = self.system.now()
                if lent and (role := lent.get(task)) is not None:
                    # holding the read role the reader lent for the ask that woke this
                    # actor: read that socket until woken, so the next ask to it is read,
                    # handled and answered in this one task (parked the usual way if the
                    # role goes back to the reader first)
                    self._holding = role
                    try:
                        await role.read_while(still_parked, task)
                    except BaseException:
                        self._parked = False
                        raise
                    finally:
                        self._holding = None
                    if not self._parked:
                        continue
                await wait_task_rescheduled(abort_park)
                continue
            receive = self._receive
            sync = self._sync
            for _ in _BATCH:
                msg, ctx.sender, reply = popleft()
                if self._waiters:
                    self._admit_waiter(self._waiters)
                try:
                    result = receive(msg, ctx) if sync else await receive(msg, ctx)
                except Exception as exc:
                    if reply is not None:
                        reply.set(outcome.Error(ActorFailed.from_exception(exc)))
                    self._fail(exc)
                    break
                if reply is not None:
                    reply.answer(result)
                if not queue or self._interrupt:
                    break
            else:  # a whole batch in a row: let the other tasks run
                await trio.lowlevel.checkpoint()
            ctx.sender = None

    async def _handle_interrupt(self) -> bool:
        """Act on a failure in hand, else a stop request, else the oldest signal (a death
        notice, a sibling's restart or a child's escalation); True when the actor is done."""
        signals = self._signals
        if self._stop_requested and not (signals and signals[0][0] is Signal.FAIL):
            self._signals = None
            await self._stop(None)
            return True
        if not signals:
            self._interrupt = False
            return False
        kind, arg = signals.popleft()
        self._interrupt = bool(signals) or self._stop_requested
        if kind is Signal.TERMINATED:
            ref, reason = arg
            if self.watching is not None and ref in self.watching:
                self.watching.discard(ref)
                await self._deliver_terminated(Terminated(ref, reason))
            return False
        if kind is Signal.RESTART:
            await self._restart(arg)
            return self.state is not RUNNING
        return await self._supervise(arg)

    async def _deliver_terminated(self, notice: Terminated) -> None:
        try:
            if self._sync:
                self._receive(notice, self.ctx)
            else:
                await self._receive(notice, self.ctx)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, error: BaseException) -> None:
        """Count and log a failure of actor code, and queue it for supervision."""
        self.system.stats.failures += 1
        log.warning("%s failed: %s", self.ref, describe(error), exc_info=error)
        self._signal(Signal.FAIL, error, urgent=True)

    # -- supervision -------------------------------------------------------------------

    async def _supervise(self, error: BaseException) -> bool:
        """Apply this actor's strategy to ``error``; True when the actor is done."""
        strategy = self.strategy
        directive = (
            strategy.directive_for(error) if type(strategy) is supervision.ByError else strategy
        )
        if self.system.closing:  # no restarts while the system shuts down
            await self._stop(describe(error))
            return True
        if isinstance(directive, supervision.Resume):
            return False
        if isinstance(directive, supervision.Restart):
            if self._windows is None:
                self._windows = {}
            window = self._windows.get(directive)
            if window is None:
                window = self._windows[directive] = supervision.RestartWindow(
                    directive.max_restarts, directive.within
                )
            if window.allow(trio.current_time()):
                for sibling in self._siblings(directive.scope):
                    sibling._signal(Signal.RESTART, error)
                await self._restart(error)
                return self.state is not RUNNING
            log.warning("%s exceeded %s; escalating", self.ref, directive)
        elif isinstance(directive, supervision.Stop):
            for sibling in self._siblings(directive.scope):
                sibling.request_stop()
            await self._stop(describe(error))
            return True
        self._escalate = error
        await self._stop(describe(error))
        return True

    def _siblings(self, scope: supervision.Scope) -> list[ActorCell]:
        """The siblings a decision of ``scope`` also applies to: none, all, or those
        spawned after this one (``children`` keeps spawn order)."""
        if scope == "one_for_one":
            return []
        siblings = list(self.parent.children.values())
        if scope == "rest_for_one":
            return siblings[siblings.index(self) + 1 :] if self in siblings else []
        return [c for c in siblings if c is not self]

    async def _restart(self, error: BaseException) -> None:
        """Replace the instance with a fresh one from the factory; keep the mailbox."""
        await self._stop_children()
        self._cancel_timers()
        await self._hook(self.instance.on_stop)
        if self._factory is not None:
            try:
                self.instance = self._factory()
            except Exception as exc:
                self.system.stats.failures += 1
                log.error("%s: factory failed on restart: %s", self.ref, describe(exc))
                self._escalate = exc
                self.reason = describe(exc)
                self.state = State.STOPPING
                self.limit = 0
                return
            self.instance._context = self.ctx
        self.behave(None)
        self.system.stats.restarts += 1
        instance = self.instance
        await self._hook(lambda: instance.on_restart(error), fail=True)
        if self.system.event_hub.active:
            self.system.event_hub.publish(ActorRestarted(self.ref, describe(error)))

    async def _hook(self, hook: Callable[[], Awaitable[None]], *, fail: bool = False) -> None:
        """Run a lifecycle hook; with ``fail`` its error is a failure, else just logged."""
        try:
            await hook()
        except Exception as exc:
            if fail:
                self._fail(exc)
            else:
                self.system.stats.failures += 1
                log.warning("%s: on_stop failed: %s", self.ref, describe(exc), exc_info=exc)

    # -- stopping ----------------------------------------------------------------------

    async def _stop(self, reason: str | None) -> None:
        self.state = State.STOPPING
        self.limit = 0
        self.reason = reason
        self._flush()
        await self._stop_children()
        self._cancel_timers()
        if type(self.instance).on_stop is not Actor.on_stop:
            await self._hook(self.instance.on_stop)

    async def _stop_children(self) -> None:
        children = list(self.children.values())
        for child in children:
            child.request_stop()
        for child in children:
            await child.wait_stopped()

    def _cancel_timers(self) -> None:
        """Cancel timers, streams and pipes (on a stop or a restart)."""
        if self.timers:
            for timer in list(self.timers):
                timer.cancel()
        if self.streams:
            streams, self.streams = self.streams, None
            reason = f"{self.ref} {'restarted' if self.state is RUNNING else 'stopped'}"
            for stream in streams:
                if isinstance(stream, Producer):
                    stream.stop(reason)
                else:
                    stream.cancel()

    def _flush(self) -> None:
        """Turn queued and waiting messages into dead letters; fail their asks."""
        publish = self.system.dead_letters.publish
        queue = self.queue
        waiters = self._waiters
        while queue or waiters:
            if queue:
                msg, sender, reply = queue.popleft()
            else:
                assert waiters is not None
                waiter = next(iter(waiters))
                del waiters[waiter]
                reschedule(waiter.task)
                msg, sender, reply = waiter.envelope
            publish(self.ref, msg, sender)
            if reply is not None:
                reply.set(outcome.Error(ActorStopped(f"{self.ref} stopped before replying")))

    def _finish(self) -> None:
        """Final bookkeeping; runs even when the task is cancelled."""
        self.state = State.DEAD
        self.limit = 0
        self._flush()
        self._cancel_timers()
        if self.watching:
            for ref in self.watching:
                ref.target.remove_watcher(self)
            self.watching = None
        if self._watchers:
            watchers, self._watchers = self._watchers, None
            for watcher in watchers:
                watcher.notify_terminated(self.ref, self.reason)
        if self.parent.children.get(self.name) is self:
            del self.parent.children[self.name]
        self.system.actor_finished()
        if self.system.event_hub.active:
            self.system.event_hub.publish(ActorExited(self.ref, self.reason))
        if self._done is not None:
            self._done.set()
        if self._escalate is not None:
            self.parent.child_failed(self._escalate)
