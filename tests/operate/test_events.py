"""User events and queries: total decoding, round trips, filters, sizes and rates."""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from swimactors import membership, wire
from swimactors.agent.events import (
    MAX_PAYLOAD,
    MAX_PER_SECOND,
    EventChannel,
    EventError,
    Query,
    UserEvent,
    _decode_event,
    _decode_query,
    _encode_event,
    _encode_query,
    matches,
)
from swimactors.agent.handlers import HandlerSpec, parse_handler

names = st.text(min_size=1, max_size=64).filter(str.isprintable)
nodes = st.text(min_size=1, max_size=32).filter(str.isprintable)
"""Node names, as an answer address holds them: 32 characters are at most 128 bytes
(filtering 64-character names by their bytes failed hypothesis's filter health check)."""
payloads = st.binary(max_size=MAX_PAYLOAD)
events = st.builds(UserEvent, names, st.integers(0, 2**63 - 1), names, payloads)
queries = st.builds(
    Query,
    names,
    st.integers(0, 2**63 - 1),
    names,
    payloads,
    st.tuples(nodes, names, st.integers(0, 2**31)),
    st.lists(names, max_size=4).map(tuple),
    st.lists(st.tuples(names, st.just(".*")), max_size=3).map(tuple),
    st.floats(0.1, 30),
)


@given(events)
def test_events_round_trip(event: UserEvent) -> None:
    assert _decode_event(_encode_event(event)) == event


@given(queries)
def test_queries_round_trip(query: Query) -> None:
    assert _decode_query(_encode_query(query)) == query


@given(st.binary(max_size=200))
def test_decoders_are_total(data: bytes) -> None:
    for decode in (_decode_event, _decode_query):
        with contextlib.suppress(wire.WireError, ValueError):
            decode(data)


def test_oversized_payloads_are_refused_on_decode() -> None:
    data = wire.dumps(["a", 1, "n", b"x" * (MAX_PAYLOAD + 1)])
    with pytest.raises(wire.WireError):
        _decode_event(data)


def test_query_filters() -> None:
    query = Query("a", 1, "q", b"", ("a", "p", 1), ("b", "c"), (("role", "web|db"),))
    assert matches(query, "b", {"role": "web"})
    assert not matches(query, "b", {"role": "cache"})
    assert not matches(query, "a", {"role": "web"})
    assert not matches(query, "c", {})


def test_handler_specs() -> None:
    assert parse_handler("echo a=b") == HandlerSpec("echo a=b")
    spec = parse_handler("member-join,user:deploy=./on-event.sh")
    assert spec == HandlerSpec("./on-event.sh", ("member-join", "user:deploy"))
    assert spec.wants("user", "deploy") and not spec.wants("user", "other")
    assert spec.wants("member-join") and not spec.wants("member-failed")
    with pytest.raises(ValueError, match="unknown event filter"):
        parse_handler("member-joined=x")


async def test_events_are_rate_limited(autojump_clock: trio.testing.MockClock) -> None:
    received: list[UserEvent] = []
    async with membership.open_node(name="solo", bind="127.0.0.1:0") as node:
        channel = EventChannel(node, on_event=received.append, on_query=lambda q: None)
        for _ in range(int(MAX_PER_SECOND)):
            channel.send_event("tick", b"")
        with pytest.raises(EventError, match="per second"):
            channel.send_event("tick", b"")
        await trio.sleep(1.0)
        channel.send_event("tick", b"")  # the bucket refilled
        with pytest.raises(EventError, match="at most 512 bytes"):
            channel.send_event("tick", b"x" * (MAX_PAYLOAD + 1))
    assert len(received) == MAX_PER_SECOND + 1  # the sender's own events are delivered too
