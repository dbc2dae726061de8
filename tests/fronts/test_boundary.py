"""The thread boundary's small parts: a gap reported to a hub reaches every subscriber, a
loop thread's calls settle (with a None resource too) or report that it stopped, the
mirror's crossings fail safely, and the mirror offers what the registry asks of a node."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from swimactors.loop_thread import LoopThread, ThreadClosed
from swimactors.membership import Status, open_node
from swimactors.membership.events import EventHub, EventsDropped
from swimactors.membership.mirror import MirroredNode, open_mirrored_node
from swimactors.registry.delegate import Gossip

from .timing import CONFIG


async def test_a_gap_reported_to_the_hub_reaches_every_subscriber() -> None:
    hub = EventHub()
    first, second = hub.subscribe(), hub.subscribe()
    hub.lost(3)
    hub.close()
    assert [e async for e in first] == [EventsDropped(3)]
    assert [e async for e in second] == [EventsDropped(3)]
    assert hub.dropped == 3


@asynccontextmanager
async def nothing() -> AsyncIterator[None]:
    yield None


def test_a_loop_thread_answers_calls_then_reports_it_stopped() -> None:
    thread: LoopThread[None] = LoopThread("test-loop", nothing)
    thread.start(10)
    assert thread.running
    assert thread.call(lambda resource: resource is None) is True
    with pytest.raises(ZeroDivisionError):
        thread.call(lambda resource: 1 // 0)
    assert thread.stop(10)
    assert not thread.running
    with pytest.raises(ThreadClosed):
        thread.call(lambda resource: None)


async def test_a_failing_crossing_is_counted_and_calls_after_stop_are_dropped() -> None:
    """A hook that raises on the program's loop must not reach trio's scheduler (it would
    crash the run), and a broadcast racing the node's stop is dropped, not raised."""
    with trio.fail_after(30):
        async with open_mirrored_node(name="a", bind="127.0.0.1:0", config=CONFIG) as node:
            await trio.to_thread.run_sync(node._to_program, lambda: 1 // 0)
            while node.counters["membership_thread_errors"] == 0:
                await trio.sleep(0.01)
            assert node.member("a") is not None
        node.broadcast("test", b"late")
        assert node.counters["membership_thread_closed_drops"] == 1


async def test_the_mirror_is_pushed_changes_only_and_forgets_what_the_node_reaped() -> None:
    """Nothing crosses to the program while the cluster is quiet (no timer wakes the
    mirror); a member's departure arrives as its event, and its record goes from the
    mirror when the node reaps it, which no event announces."""
    config = CONFIG.replace(reap_time=0.5)
    with trio.fail_after(30):
        async with open_mirrored_node(name="a", bind="127.0.0.1:0", config=config) as a:
            crossed: list[str] = []
            to_program = a._to_program

            def counting(fn: Callable[..., None], *args: Any) -> None:
                crossed.append(getattr(fn, "__name__", repr(fn)))
                to_program(fn, *args)

            async with open_node(
                name="b", bind="127.0.0.1:0", seeds=[a.address], config=config
            ) as b:
                while a.member("b") is None or b.member("a") is None:
                    await trio.sleep(0.02)
                a._to_program = counting  # type: ignore[method-assign]
                await trio.sleep(4 * config.probe_interval)  # probes and gossip both ways
                # only what the node's own work changed (a slow probe under load may move
                # health or a status); the old mirror sent a snapshot every second here
                assert set(crossed) <= {"_apply_health", "_publish"}
                assert a.counters["packets_received"] > 0  # read from the node when asked
                await b.leave()
            while (member := a.member("b")) is not None and member.status is Status.UP:
                await trio.sleep(0.02)
            assert member is not None and member.status is Status.LEFT
            while a.member("b") is not None:
                await trio.sleep(0.02)
            assert "_forget" in crossed


def test_a_mirrored_node_offers_everything_the_registry_asks_of_a_node() -> None:
    """``System(membership_thread=True)`` hands the registry a mirrored node."""
    wanted = {name for name in vars(Gossip) if not name.startswith("_")}
    assert wanted and all(hasattr(MirroredNode, name) for name in wanted)


async def test_a_mirrored_node_swaps_full_states_at_once_when_asked() -> None:
    """The registry asks for a push/pull when a false DOWN dropped its names; with a
    long push/pull period only that request can start one within the test."""
    config = CONFIG.replace(push_pull_interval=600.0)
    with trio.fail_after(30):
        async with (
            open_mirrored_node(name="a", bind="127.0.0.1:0", config=config) as a,
            open_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=config) as b,
        ):
            while a.member("b") is None or b.member("a") is None:
                await trio.sleep(0.02)
            before = a.counters["push_pulls"]
            a.sync_soon()
            while a.counters["push_pulls"] == before:
                await trio.sleep(0.02)
