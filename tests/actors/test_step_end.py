"""Sends queued during a trio task step run when that step ends (swimactors.actors.step_end)."""

from __future__ import annotations

import pytest
import trio

from swimactors.actors import step_end


async def test_a_flush_runs_once_when_the_queuing_step_ends() -> None:
    ran: list[str] = []
    with step_end.installed():
        flushes = step_end.pending_flushes()
        flush = lambda: ran.append("sent")  # noqa: E731
        flushes[flush] = None
        flushes[flush] = None  # queued twice in one step: sent once
        assert ran == []  # not before this step ends
        await trio.lowlevel.checkpoint()
        assert ran == ["sent"]
        await trio.lowlevel.checkpoint()
        assert ran == ["sent"]


async def test_blocks_nest_and_the_last_one_out_runs_what_is_left() -> None:
    ran: list[int] = []
    with step_end.installed():
        with step_end.installed():
            pass
        step_end.pending_flushes()[lambda: ran.append(1)] = None
        await trio.lowlevel.checkpoint()  # still installed after the inner block
        assert ran == [1]
        step_end.pending_flushes()[lambda: ran.append(2)] = None
    assert ran == [1, 2]  # run as the last block closed


async def test_a_failing_flush_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("a bug")

    with step_end.installed():
        flushes = step_end.pending_flushes()
        flushes[broken] = None
        flushes[lambda: ran.append("sent")] = None
        await trio.lowlevel.checkpoint()
        flushes[lambda: ran.append("again")] = None
        await trio.lowlevel.checkpoint()
    assert ran == ["sent", "again"]
    assert "a send at the end of a task step failed" in caplog.text
