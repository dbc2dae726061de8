"""Event fan-out: every subscriber sees every event unless it falls behind, and then it
loses the oldest ones and is told how many."""

from __future__ import annotations

import gc

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from swimactors.membership.events import EventHub, EventsDropped
from swimactors.membership.types import Member, MemberEvent, MemberUp, Status


def event(i: int) -> MemberEvent:
    return MemberUp(Member(f"n{i}", ("127.0.0.1", 1000 + i), i, Status.UP), float(i))


async def test_every_subscriber_gets_every_event_in_order() -> None:
    hub = EventHub()
    first, second = hub.subscribe(), hub.subscribe()
    for i in range(5):
        hub.publish(event(i))
    hub.close()
    assert [e async for e in first] == [event(i) for i in range(5)]
    assert [e async for e in second] == [event(i) for i in range(5)]


async def test_a_slow_subscriber_loses_the_oldest_and_is_told() -> None:
    hub = EventHub()
    slow = hub.subscribe(buffer=3)
    fast = hub.subscribe(buffer=100)
    for i in range(10):
        hub.publish(event(i))
    hub.close()
    assert [e async for e in slow] == [EventsDropped(7), event(7), event(8), event(9)]
    assert slow.dropped == 7
    assert hub.dropped == 7
    assert len([e async for e in fast]) == 10


async def test_iteration_waits_for_events_and_ends_on_close() -> None:
    hub = EventHub()
    received: list[object] = []

    async def consume() -> None:
        with hub.subscribe() as subscription:
            async for item in subscription:
                received.append(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        hub.publish(event(1))
        await trio.testing.wait_all_tasks_blocked()
        assert received == [event(1)]
        hub.close()
    assert received == [event(1)]


async def test_closing_a_subscription_unsubscribes_it() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    subscription.close()
    hub.publish(event(1))
    assert [e async for e in subscription] == []


def test_abandoned_subscriptions_are_forgotten() -> None:
    hub = EventHub()
    hub.subscribe()
    gc.collect()
    assert len(hub._subscribers) == 0


async def test_subscribing_after_close_yields_nothing() -> None:
    hub = EventHub()
    hub.close()
    assert [e async for e in hub.subscribe()] == []


@given(
    buffer=st.integers(1, 8),
    steps=st.lists(st.one_of(st.just("publish"), st.integers(1, 5)), max_size=60),
)
def test_received_plus_dropped_equals_published(buffer: int, steps: list[object]) -> None:
    """Whatever the interleaving of publishing and reading, nothing is lost silently and
    what arrives is in publication order."""

    async def scenario() -> None:
        hub = EventHub()
        subscription = hub.subscribe(buffer)
        published = 0
        got: list[int] = []
        dropped = 0

        async def read(n: int) -> None:
            nonlocal dropped
            for _ in range(n):
                if subscription._buffer.empty:
                    return
                item = await subscription.__anext__()
                if isinstance(item, EventsDropped):
                    dropped += item.count
                else:
                    got.append(item.member.incarnation)

        for step in steps:
            if step == "publish":
                hub.publish(event(published))
                published += 1
            else:
                assert isinstance(step, int)
                await read(step)
        hub.close()
        async for item in subscription:
            if isinstance(item, EventsDropped):
                dropped += item.count
            else:
                got.append(item.member.incarnation)
        assert got == sorted(got)
        assert len(got) + dropped == published
        assert dropped == subscription.dropped

    trio.run(scenario)
