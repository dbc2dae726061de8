"""The actor peer protocol without sockets: two sessions driven against each other.

As h11's tests do, each test moves the bytes one session queues into the other by hand,
so the handshake, credit, correlation and death watch are checked with no trio, socket
or clock involved.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors import ActorStopped, wire
from swimactors.actors.protocol import (
    Answered,
    Ask,
    Credit,
    ErrorReply,
    Hello,
    PeerSession,
    ProtocolViolation,
    Reply,
    Tell,
    Terminated,
    Unwatch,
    Watch,
    decode_error,
    decode_value,
    encode,
    encode_ask,
    encode_value,
    tell_frame,
    tell_prefix,
)

MAX_FRAME = 4096


def pair(window: int = 8) -> tuple[PeerSession[str], PeerSession[str]]:
    """``a`` dialled ``b``: ``a`` knows its peer, ``b`` learns it from the HELLO."""
    return (
        PeerSession("a", 11, window, MAX_FRAME, peer="b"),
        PeerSession("b", 22, window, MAX_FRAME),
    )


def pump(source: PeerSession[str], sink: PeerSession[str], now: float = 0.0) -> list[Any]:
    """Move everything ``source`` queued into ``sink``; the events ``sink`` hands back."""
    data, source.outgoing = bytes(source.outgoing), bytearray()
    sink.receive_data(data, now)
    events = []
    while (event := sink.next_event()) is not None:
        events.append(event)
    return events


def tell(session: PeerSession[str], path: str, value: Any) -> bool:
    return session.try_request(tell_frame(tell_prefix(path, 1, None), value))


def ask(session: PeerSession[str], corr: int, value: Any) -> bool:
    session.expect(corr, f"token{corr}")
    return session.try_request(encode_ask(corr, "echo", 1, None, encode_value(value)))


def handshake(a: PeerSession[str], b: PeerSession[str]) -> None:
    assert pump(a, b) == [Hello("a", 11, a.window)]
    assert pump(b, a) == [Hello("b", 22, b.window)]


def test_each_side_opens_with_hello_and_the_inbound_side_learns_its_peer() -> None:
    a, b = pair()
    assert b.peer is None
    assert pump(a, b, now=5.0) == [Hello("a", 11, 8)]
    assert b.peer == "a" and b.last_active == 5.0
    assert pump(b, a) == [Hello("b", 22, 8)]
    assert a.peer == "b"


def test_an_inbound_peer_must_say_hello_first() -> None:
    a, b = pair()
    a.outgoing.clear()  # a peer that skips its HELLO
    tell(a, "x", 1)
    with pytest.raises(ProtocolViolation, match="first frame must be HELLO") as info:
        pump(a, b)
    assert info.value.counter == "rejected_malformed"


def test_a_hello_naming_another_node_breaks_the_connection() -> None:
    a, b = pair()
    impostor = PeerSession[str]("mallory", 1, 8, MAX_FRAME)
    with pytest.raises(ProtocolViolation, match="HELLO from 'mallory'"):
        pump(impostor, a)
    assert pump(a, b) == [Hello("a", 11, 8)]


def test_a_peer_window_is_clamped() -> None:
    big = PeerSession[str]("big", 1, 10**9, MAX_FRAME)
    small = PeerSession[str]("small", 1, 8, MAX_FRAME, peer="big")
    pump(big, small)
    assert small.peer_window == 65536


def test_credit_runs_out_and_comes_back_as_the_peer_delivers() -> None:
    a, b = pair(window=4)
    handshake(a, b)
    assert [tell(a, "x", n) for n in range(5)] == [True] * 4 + [False]
    events = pump(a, b)
    assert [event.value for event in events] == [encode_value(n) for n in range(4)]
    assert all(isinstance(event, Tell) for event in events)
    assert b.undelivered == 4
    b.return_credit()  # nothing delivered yet: nothing to return
    assert pump(b, a) == []
    b.delivered()
    b.return_credit()  # one of a window of 4, and nothing going out: kept
    assert pump(b, a) == []
    b.delivered()
    b.return_credit()  # half the window: returned in a frame of its own
    assert pump(b, a) == [Credit(2)]
    assert a.credit == 2 and tell(a, "x", 4) and tell(a, "x", 5) and not tell(a, "x", 6)
    for _ in range(2):
        b.delivered()
    b.return_credit()
    assert pump(b, a) == [Credit(2)]
    assert a.credit == 2


def test_credit_rides_on_the_reply_so_an_ask_is_one_write_each_way() -> None:
    a, b = pair(window=8)
    handshake(a, b)
    assert ask(a, 1, "x")
    assert [type(event) for event in pump(a, b)] == [Ask]
    b.delivered()
    b.return_credit()  # the ask is in a mailbox: its credit waits for the reply
    assert b.outgoing == bytearray()
    b.reply(1, "y")
    events = pump(b, a)
    assert [type(event) for event in events] == [Answered, Credit]
    assert events[1] == Credit(1) and a.credit == 8


def test_credit_never_exceeds_the_window() -> None:
    a, b = pair(window=2)
    handshake(a, b)
    b.owed = 10  # a confused peer returning more than it was sent
    b.return_credit()
    pump(b, a)
    assert a.credit == 2


def test_a_peer_sending_past_its_window_breaks_the_connection() -> None:
    a, b = pair(window=2)
    handshake(a, b)
    for _ in range(3):  # the third ignores the credit it does not have
        a.credit = 1
        tell(a, "x", 0)
    with pytest.raises(ProtocolViolation, match="more requests than its window"):
        pump(a, b)


def test_replies_find_their_asks_in_any_order() -> None:
    a, b = pair()
    handshake(a, b)
    assert ask(a, 7, "seven") and ask(a, 8, "eight")
    asks = pump(a, b)
    assert [(event.corr, decode_value(event.value)) for event in asks] == [
        (7, "seven"),
        (8, "eight"),
    ]
    assert all(isinstance(event, Ask) for event in asks)
    b.reply(8, "EIGHT")
    b.fail(7, ActorStopped("gone"))
    answers = pump(b, a)
    assert [event.token for event in answers] == ["token8", "token7"]
    reply, error = answers[0].frame, answers[1].frame
    assert isinstance(reply, Reply) and decode_value(reply.value) == "EIGHT"
    assert isinstance(error, ErrorReply)
    assert type(decode_error(error)) is ActorStopped
    assert a.pending == {}


def test_a_reply_nobody_waits_for_is_dropped() -> None:
    a, b = pair()
    handshake(a, b)
    ask(a, 1, "x")
    pump(a, b)
    a.forget(1)  # the asker gave up
    b.reply(1, "late")
    assert pump(b, a) == []


def test_an_unsendable_reply_becomes_an_error_reply() -> None:
    a, b = pair()
    handshake(a, b)
    ask(a, 1, "x")
    pump(a, b)
    b.reply(1, {1, 2})  # a set has no wire form
    [answered] = pump(b, a)
    assert isinstance(answered, Answered) and isinstance(answered.frame, ErrorReply)
    assert "cannot go to another node" in decode_error(answered.frame).args[0]


def test_watch_and_terminated_cross_as_they_are() -> None:
    a, b = pair()
    handshake(a, b)
    a.send(Watch("worker", 3))
    a.send(Unwatch("other", 4))
    assert pump(a, b) == [Watch("worker", 3), Unwatch("other", 4)]
    b.send(Terminated("worker", 3, "ValueError: boom"))
    assert pump(b, a) == [Terminated("worker", 3, "ValueError: boom")]


def test_a_malformed_frame_fails_after_the_frames_before_it() -> None:
    a, b = pair()
    handshake(a, b)
    tell(a, "x", 1)
    a.outgoing += wire.encode_frame(wire.dumps([1, "x"]))  # a TELL without its fields
    b.receive_data(bytes(a.outgoing), 0.0)
    assert isinstance(b.next_event(), Tell)
    with pytest.raises(ProtocolViolation, match="malformed actor frame") as info:
        b.next_event()
    assert info.value.counter == "rejected_malformed"


def test_an_oversized_frame_fails_before_it_is_buffered() -> None:
    a, b = pair()
    handshake(a, b)
    b.receive_data((MAX_FRAME + 1).to_bytes(4, "big") + b"x", 0.0)
    with pytest.raises(ProtocolViolation) as info:
        b.next_event()
    assert info.value.counter == "rejected_oversized"


def test_frames_split_anywhere_arrive_whole() -> None:
    a, b = pair()
    ask(a, 1, "hello")
    data = bytes(a.outgoing)
    events: list[Any] = []
    for byte in data:
        b.receive_data(bytes([byte]), 0.0)
        while (event := b.next_event()) is not None:
            events.append(event)
    assert [type(event) for event in events] == [Hello, Ask]


def test_closing_hands_back_the_asks_still_waiting() -> None:
    a, b = pair()
    handshake(a, b)
    ask(a, 1, "x")
    ask(a, 2, "y")
    assert sorted(a.close()) == ["token1", "token2"]
    assert a.closed and a.pending == {}
    queued = bytes(a.outgoing)
    a.reply(5, "ignored")  # nothing more is queued on a closed session
    a.fail(6, ActorStopped("ignored"))
    assert a.outgoing == queued


def test_idle_means_nothing_pending_either_way() -> None:
    a, b = pair()
    handshake(a, b)
    assert a.is_idle() and b.is_idle()
    ask(a, 1, "x")
    assert not a.is_idle()
    pump(a, b)
    assert not b.is_idle()
    b.delivered()
    b.reply(1, "y")
    pump(b, a)
    assert a.is_idle() and b.is_idle()


def test_every_frame_encodes_to_what_it_parses_from() -> None:
    a, b = pair()
    frames = [Credit(3), Watch("p", 1), Unwatch("p", 1), Terminated("p", 1, None)]
    handshake(a, b)
    for frame in frames:
        a.outgoing += encode(frame)
    assert pump(a, b) == frames


@given(st.binary(max_size=300))
def test_a_session_is_total_on_arbitrary_bytes(data: bytes) -> None:
    """Whatever arrives, the session hands back events or a ProtocolViolation: nothing
    else is raised, and it never holds more than one frame's worth of bytes."""
    session = PeerSession[str]("b", 1, 4, 256)
    session.receive_data(data, 0.0)
    try:
        while session.next_event() is not None:
            pass
    except ProtocolViolation:
        pass
