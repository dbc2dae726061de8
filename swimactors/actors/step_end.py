"""Sends made when the running trio task's step ends, by a trio instrument.

A connection with bytes to send registers its flush here instead of waking its writer
task: everything one step queued for a peer (a batch of replies, a burst of tells) goes
out in one non-blocking write as that step ends, with no trip through the scheduler, and
a task that suspends (an ``async def receive`` awaiting) never sits on what it queued.
A task a connection lent its read role to is told here when its step ends (the role
comes back unless the task suspended reading that socket).
One instrument serves every connection in a trio run, installed while any of them is up
(a system without connections to other nodes pays nothing per task step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import trio

from ..logs import logger

__all__ = ["ReadRole", "StepEnd", "installed", "lent_reads", "pending_flushes", "run_flushes"]

log = logger("swimactors.actors.step_end")

Flushes = dict[Callable[[], None], None]


class ReadRole(Protocol):
    """A connection's read role as lent to a task (see ``Connection`` in :mod:`.transport`)."""

    def step_ended(self) -> None:
        """A step of the holder ended: the role comes back unless it waits on the socket."""

    def kick(self) -> None:
        """Wake the holder if it waits on the socket (something else wants it)."""

    async def read_while(self, waiting: Callable[[], bool], holder: trio.lowlevel.Task) -> None:
        """Read the socket in the holder's task (the calling task, ``holder``) while
        ``waiting()`` holds and the role is still lent to it."""


LentReads = dict[trio.lowlevel.Task, ReadRole]


class StepEnd(trio.abc.Instrument):
    """Runs the flushes queued during a task step once that step ends, and tells a
    connection when the step of the task holding its read role ends."""

    def __init__(self) -> None:
        self.pending: Flushes = {}
        """The flushes to run, each once (a dict: no duplicates)."""
        self.lent: LentReads = {}
        """Tasks holding a connection's read role, each with what to call as a step of
        theirs ends."""
        self.holders = 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.pending:
            run_flushes(self.pending)
        if self.lent:
            role = self.lent.get(task)
            if role is not None:
                role.step_ended()


def run_flushes(flushes: Flushes) -> None:
    """Run and remove every queued flush (one that queues another runs it too): at the
    end of a step, or earlier by a task about to wait on a socket, so that what it queued
    goes out before it spends time registering the wait."""
    while flushes:
        flush, _ = flushes.popitem()
        try:
            flush()
        except Exception:  # a bug must cost one send, never the instrument running it
            log.exception("a send at the end of a task step failed")


_STEP_END: trio.lowlevel.RunVar[StepEnd] = trio.lowlevel.RunVar("swimactors_step_end")


def _current() -> StepEnd:
    try:
        return _STEP_END.get()
    except LookupError:
        step_end = StepEnd()
        _STEP_END.set(step_end)
        return step_end


def pending_flushes() -> Flushes:
    """This trio run's queue of flushes (run at each step's end while :func:`installed`)."""
    return _current().pending


def lent_reads() -> LentReads:
    """This trio run's tasks holding a connection's read role (see :class:`StepEnd`)."""
    return _current().lent


@contextmanager
def installed() -> Iterator[None]:
    """Run the queued flushes at the end of every task step for the life of the block
    (blocks nest: the instrument stays while any is open, and runs what is left when the
    last one closes)."""
    step_end = _current()
    if not step_end.holders:
        trio.lowlevel.add_instrument(step_end)
    step_end.holders += 1
    try:
        yield
    finally:
        step_end.holders -= 1
        if not step_end.holders:
            trio.lowlevel.remove_instrument(step_end)
            run_flushes(step_end.pending)
