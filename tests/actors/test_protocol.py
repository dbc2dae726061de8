"""The actor peer protocol without sockets: two sessions driven against each other.

As h11's tests do, each test moves the bytes one session queues into the other by hand,
so the handshake, credit, correlation and death watch are checked with no trio, socket
or clock involved.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import swimactors
from swimactors import ActorFailed, ActorStopped, MailboxFull, Unsendable, wire
from swimactors.actors.protocol import (
    MAX_STREAM_WINDOW,
    MAX_STREAMS,
    OLDEST_VERSION,
    RUN_WIDTH,
    TELL_VALUES,
    VERSION,
    Answered,
    Ask,
    Credit,
    Dropped,
    ErrorReply,
    Hello,
    Kind,
    PeerSession,
    ProtocolViolation,
    Reply,
    StreamCancel,
    StreamEnd,
    StreamItem,
    StreamMore,
    StreamOpen,
    Tell,
    TellRun,
    Terminated,
    Unwatch,
    Watch,
    address,
    ask_frame,
    decode_error,
    decode_run,
    decode_stream_end,
    decode_value,
    decode_values,
    encode,
    encode_stream,
    encode_value,
    flat_encoder,
    parse,
    run_address,
    run_values,
    value_bytes,
    wire_address,
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
    data = bytes(source.take())
    sink.receive_data(data, now)
    events = []
    while (event := sink.next_event()) is not None:
        events.append(event)
    return events


def tell(session: PeerSession[str], path: str, value: Any) -> bool:
    return session.try_tell(address(path, 1, None), value_bytes(value))


def tell_run(session: PeerSession[str], path: str, msg: Any) -> bool:
    """A tell of an all-scalar message, in a RUN frame as a remote ref sends it."""
    flat = flat_encoder(type(msg))
    assert flat is not None
    tag, width, fields = flat
    return session.try_tell(run_address(address(path, 1, None), tag, width), fields(msg), width)


def ask(session: PeerSession[str], corr: int, value: Any) -> bool:
    session.expect(corr, f"token{corr}")
    return session.try_request(ask_frame(corr, address("echo", 1, None), value_bytes(value)))


def hello(node: str, incarnation: int, window: int) -> Hello:
    """The HELLO this version sends (with its versions)."""
    return Hello(node, incarnation, window, VERSION, OLDEST_VERSION)


def handshake(a: PeerSession[str], b: PeerSession[str]) -> None:
    assert pump(a, b) == [hello("a", 11, a.window)]
    assert pump(b, a) == [hello("b", 22, b.window)]


def test_the_dialler_says_hello_and_the_accepter_answers_once_it_learns_its_peer() -> None:
    a, b = pair()
    assert b.peer is None and not b.outgoing  # nothing before the dialler's HELLO
    assert pump(a, b, now=5.0) == [hello("a", 11, 8)]
    assert b.peer == "a" and b.last_active == 5.0
    assert pump(b, a) == [hello("b", 22, 8)]
    assert a.peer == "b"
    assert a.runs and b.runs and a.peer_version == b.peer_version == VERSION


def test_an_inbound_peer_must_say_hello_first() -> None:
    a, b = pair()
    a.outgoing.clear()  # a peer that skips its HELLO
    tell(a, "x", 1)
    with pytest.raises(ProtocolViolation, match="first frame must be HELLO") as info:
        pump(a, b)
    assert info.value.counter == "rejected_malformed"


def test_a_hello_naming_another_node_breaks_the_connection() -> None:
    a, b = pair()
    impostor = PeerSession[str]("mallory", 1, 8, MAX_FRAME, peer="a")
    with pytest.raises(ProtocolViolation, match="HELLO from 'mallory'"):
        pump(impostor, a)
    assert pump(a, b) == [hello("a", 11, 8)]


def test_a_peer_window_is_clamped() -> None:
    big = PeerSession[str]("big", 1, 10**9, MAX_FRAME, peer="small")
    small = PeerSession[str]("small", 1, 8, MAX_FRAME)
    pump(big, small)
    assert small.peer_window == 65536


def test_a_dialler_without_versions_is_answered_in_kind_and_sent_no_run() -> None:
    """Code from before versions reads a four-item HELLO only, and maybe no RUN."""
    old = PeerSession[str]("old", 1, 8, MAX_FRAME, peer="b", versioned=False)
    b = PeerSession[str]("b", 22, 8, MAX_FRAME)
    assert len(wire.loads(bytes(old.outgoing)[4:])) == 4
    assert pump(old, b) == [Hello("old", 1, 8)]
    answer = bytes(b.outgoing)
    assert wire.loads(answer[4:]) == [Kind.HELLO, "b", 22, 8]
    assert not b.runs and b.peer_version == 1
    assert pump(b, old) == [Hello("b", 22, 8)]
    assert not old.runs


def test_a_dialler_answered_without_versions_knows_its_hello_is_refused() -> None:
    a = PeerSession[str]("a", 11, 8, MAX_FRAME, peer="old")
    old_answer = encode(Hello("old", 1, 8))  # what code before versions sends at once
    a.receive_data(old_answer, 0.0)
    with pytest.raises(ProtocolViolation, match="from before versions") as info:
        a.next_event()
    assert info.value.counter == "rejected_unversioned"


def test_a_dialler_refused_for_its_versions_greets_again_with_all_it_had_sent() -> None:
    """Code from before versions reads nothing after our versioned HELLO: the session
    queues again, behind a HELLO without versions, every frame it had handed the driver
    (some sent, some taken) or still queued; asks stay pending and credit stays spent."""
    a = PeerSession[str]("a", 11, 8, MAX_FRAME, peer="old")
    assert ask(a, 1, "first")
    assert tell(a, "x", Mark(1))
    a.sent(len(a.outgoing) - 3)  # the socket took most of it
    rest = bytes(a.take())
    assert ask(a, 2, "second")
    old = PeerSession[str]("old", 1, 8, MAX_FRAME, versioned=False)
    a.receive_data(encode(Hello("old", 1, 8)), 0.0)
    with pytest.raises(ProtocolViolation, match="from before versions"):
        a.next_event()
    assert rest and a.credit == 5 and set(a.pending) == {1, 2}
    a.redial_unversioned()
    old.receive_data(a.take(), 0.0)
    events = []
    while (event := old.next_event()) is not None:
        events.append(event)
    hello_a, first, told, second = events
    assert hello_a == Hello("a", 11, 8)  # four items: what that code reads
    assert isinstance(first, Ask) and decode_value(first.value) == "first"
    assert isinstance(told, Tell) and decode_values(told.values) == [Mark(1)]
    assert isinstance(second, Ask) and decode_value(second.value) == "second"
    assert pump(old, a) == [Hello("old", 1, 8)]
    assert not a.runs and a.credit == 5 and set(a.pending) == {1, 2}


def test_a_peer_with_no_version_in_common_is_refused_after_our_hello() -> None:
    b = PeerSession[str]("b", 22, 8, MAX_FRAME)
    future = wire.encode_frame(wire.dumps([Kind.HELLO, "future", 1, 8, VERSION + 3, VERSION + 1]))
    b.receive_data(future, 0.0)
    with pytest.raises(ProtocolViolation, match="versions 3 to 5, this node 1 to 2") as info:
        b.next_event()
    assert info.value.counter == "rejected_version"
    assert parse(bytes(b.outgoing)[4:]) == hello("b", 22, 8)  # the peer can say why too
    dialler = PeerSession[str]("c", 33, 8, MAX_FRAME, peer="future")  # and the other way
    dialler.receive_data(future, 0.0)
    with pytest.raises(ProtocolViolation) as info:
        dialler.next_event()
    assert info.value.counter == "rejected_version"


def test_a_newer_peer_is_spoken_to_in_this_version_and_its_later_hello_items_ignored() -> None:
    b = PeerSession[str]("b", 22, 8, MAX_FRAME)
    newer = [Kind.HELLO, "newer", 1, 8, VERSION + 1, 1, "a later field", [1, 2]]
    b.receive_data(wire.encode_frame(wire.dumps(newer)), 0.0)
    assert b.next_event() == Hello("newer", 1, 8, VERSION + 1, 1)
    assert b.runs and b.peer_version == VERSION + 1


@pytest.mark.parametrize(
    "items",
    [
        [Kind.HELLO, "x", 1, 8, 2],  # a version without its oldest
        [Kind.HELLO, "x", 1, 8, 2, 3],  # oldest past newest
        [Kind.HELLO, "x", 1, 8, 2, 0],
        [Kind.HELLO, "x", 1, 8, "2", 1],
    ],
)
def test_a_hello_with_versions_that_make_no_sense_is_malformed(items: list[Any]) -> None:
    with pytest.raises(wire.WireError):
        parse(wire.dumps(items))


def test_a_second_hello_breaks_the_connection() -> None:
    a, b = pair()
    handshake(a, b)
    a.outgoing += encode(hello("a", 11, 8))
    with pytest.raises(ProtocolViolation, match="a second HELLO"):
        pump(a, b)


def test_credit_runs_out_and_comes_back_as_the_peer_delivers() -> None:
    a, b = pair(window=4)
    handshake(a, b)
    assert [tell(a, "x", n) for n in range(5)] == [True] * 4 + [False]
    assert pump(a, b) == [Tell("x", 1, None, [encode_value(n) for n in range(4)])]
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


def test_an_ask_is_one_frame_each_way_and_credit_comes_at_half_the_window() -> None:
    a, b = pair(window=4)
    handshake(a, b)
    for corr, credit in [(1, []), (2, [Credit(2)]), (3, []), (4, [Credit(2)])]:
        assert ask(a, corr, "x")
        assert [type(event) for event in pump(a, b)] == [Ask]
        b.delivered()
        b.return_credit()  # queued once half the window is owed, kept until then
        b.reply(corr, "y")
        events = pump(b, a)
        assert [type(event) for event in events] == [*map(type, credit), Answered]
        assert events[:-1] == credit
    assert a.credit == 4


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


def test_a_peer_sending_a_run_past_its_window_breaks_the_connection() -> None:
    a, b = pair(window=2)
    handshake(a, b)
    for n in range(3):  # one RUN frame of three messages: each counts
        a.credit = 1
        tell_run(a, "x", Mark(n))
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
    assert pump(b, a) == [Dropped("replies_stray")]  # and counted


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


# -- streams ---------------------------------------------------------------------------


def send_item(session: PeerSession[str], sid: int, value: Any) -> bool:
    return session.send_items(sid, [value_bytes(value)])


def open_stream(a: PeerSession[str], sid: int, window: int) -> bool:
    """``a`` asks ``echo`` for a stream ``sid`` granting ``window`` items."""
    a.open_stream(sid, window)
    return a.try_request(encode_stream(sid, "echo", 1, None, encode_value("go"), window))


def test_a_stream_opens_as_a_request_and_flows_on_its_own_credit() -> None:
    a, b = pair(window=2)
    handshake(a, b)
    assert open_stream(a, 7, 3)
    (opened,) = pump(a, b)
    assert opened == StreamOpen(7, "echo", 1, None, encode_value("go"), 3)
    assert b.undelivered == 1 and list(b.producing) == [7]
    b.delivered()
    sent = [send_item(b, 7, n) for n in range(3)]
    assert sent == [True] * 3
    (items,) = pump(b, a)  # a burst of items is one frame
    assert isinstance(items, StreamItem)
    assert [decode_value(v) for v in items.values] == [0, 1, 2]
    assert a.consuming == {7: 0}
    a.grant(7, 2)
    assert pump(a, b) == [StreamMore(7, 2)]
    send_item(b, 7, 3)
    b.end_stream(7, None)
    b.return_credit()
    events = pump(b, a)
    assert [type(e) for e in events] == [StreamItem, StreamEnd, Credit]
    assert decode_stream_end(events[1]) is None
    assert a.is_idle() and not b.producing


def test_an_item_beyond_the_streams_credit_breaks_the_connection() -> None:
    a, b = pair()
    handshake(a, b)
    open_stream(a, 1, 1)
    pump(a, b)
    send_item(b, 1, "ok")
    send_item(b, 1, "one too many")
    with pytest.raises(ProtocolViolation, match="beyond its credit"):
        pump(b, a)


def test_items_of_one_stream_are_one_frame_until_its_limits_or_another_frame() -> None:
    a, b = pair()
    handshake(a, b)
    open_stream(a, 1, 1000)
    open_stream(a, 2, 10)
    pump(a, b)
    for n in range(300):  # one frame holds at most 253 items (its one-byte count)
        send_item(b, 1, n)
    send_item(b, 2, "other")  # another stream: a frame of its own
    send_item(b, 1, "after")
    b.end_stream(1, None)
    events = pump(b, a)
    assert [(type(e).__name__, e.sid) for e in events] == [
        ("StreamItem", 1),
        ("StreamItem", 1),
        ("StreamItem", 2),
        ("StreamItem", 1),
        ("StreamEnd", 1),
    ]
    assert [len(e.values) for e in events[:4]] == [253, 47, 1, 1]
    items = [decode_value(v) for e in events[:4] if e.sid == 1 for v in e.values]
    assert items == [*range(300), "after"]
    assert a.consuming == {2: 9}


def test_items_sent_together_go_in_frames_within_their_limits_in_order() -> None:
    """``send_items`` (a producer's step at once) keeps each frame within its count and
    ``max_frame``; a chunk that does not fit the frame being grown starts the next."""
    a, b = pair()
    handshake(a, b)
    open_stream(a, 1, 1000)
    pump(a, b)
    send_item(b, 1, "first")
    big = "b" * (MAX_FRAME // 3)
    values = [*map(value_bytes, range(300)), *[value_bytes(big)] * 5, value_bytes("last")]
    assert b.send_items(1, values)
    events = pump(b, a)  # a's limit is MAX_FRAME: a longer frame would be refused
    assert [len(e.values) for e in events] == [1, 253, 49, 2, 2]
    items = [decode_value(v) for e in events for v in e.values]
    assert items == ["first", *range(300), *[big] * 5, "last"]
    a.cancel_stream(1)
    pump(a, b)
    assert not b.send_items(1, [value_bytes("late")]) and not b.outgoing


def test_a_stream_error_crosses_as_the_typed_error_of_an_ask() -> None:
    a, b = pair()
    handshake(a, b)
    open_stream(a, 1, 4)
    open_stream(a, 2, 4)
    pump(a, b)
    b.end_stream(1, ValueError("boom"))
    b.end_stream(2, ActorStopped("gone"))
    one, two = pump(b, a)
    failed = decode_stream_end(one)
    assert isinstance(failed, ActorFailed) and failed.type_name == "ValueError"
    assert isinstance(decode_stream_end(two), ActorStopped)


def test_frames_for_a_stream_that_is_over_are_dropped_and_counted() -> None:
    a, b = pair()
    handshake(a, b)
    open_stream(a, 1, 4)
    pump(a, b)
    send_item(b, 1, "in flight")
    a.cancel_stream(1)
    assert pump(b, a) == [Dropped("stream_frames_stray")]  # the item raced the CANCEL
    assert pump(a, b) == [StreamCancel(1)]
    assert not b.producing and not send_item(b, 1, "late")
    a.outgoing += encode(StreamMore(1, 1))  # a grant racing the stream's end
    assert pump(a, b) == [Dropped("stream_frames_stray")]
    a.grant(1, 1)  # granting a stream that is over sends nothing
    assert a.outgoing == bytearray()


def test_a_peer_opening_too_many_streams_gets_them_ended_as_full() -> None:
    a, b = pair(window=MAX_STREAMS + 2)
    handshake(a, b)
    for sid in range(MAX_STREAMS + 1):
        open_stream(a, sid, 1)
    events = pump(a, b)
    assert len(b.producing) == MAX_STREAMS
    assert events[-1] == Dropped("streams_refused")
    (end,) = [e for e in pump(b, a) if isinstance(e, StreamEnd)]
    assert end.sid == MAX_STREAMS and isinstance(decode_stream_end(end), MailboxFull)
    assert b.undelivered == MAX_STREAMS  # the refused one was counted as delivered


def test_a_stream_opened_twice_breaks_the_connection() -> None:
    a, b = pair()
    handshake(a, b)
    open_stream(a, 1, 1)
    a.try_request(encode_stream(1, "echo", 1, None, encode_value("again"), 1))
    with pytest.raises(ProtocolViolation, match="opened twice"):
        pump(a, b)


def test_closing_forgets_every_stream() -> None:
    a, b = pair()
    handshake(a, b)
    open_stream(a, 1, 4)
    pump(a, b)
    a.close()
    b.close()
    assert not a.consuming and not b.producing
    assert not send_item(b, 1, "x")


nodes = st.text(min_size=1, max_size=8).filter(str.isprintable)
"""Node names as membership has them (printable)."""

stream_frames = st.one_of(
    st.builds(
        StreamOpen,
        st.integers(0, 2**63 - 1),
        st.text(max_size=20),
        st.integers(0, 2**63 - 1),
        st.none() | st.tuples(nodes, st.text(max_size=8), st.integers(0, 9)).map(list),
        st.integers(-5, 5).map(encode_value),
        st.integers(1, MAX_STREAM_WINDOW),
    ),
    st.builds(
        StreamItem,
        st.integers(0, 2**63 - 1),
        st.lists(st.text(max_size=10).map(encode_value), min_size=1, max_size=4),
    ),
    st.builds(StreamMore, st.integers(0, 2**63 - 1), st.integers(1, MAX_STREAM_WINDOW)),
    st.builds(
        StreamEnd,
        st.integers(0, 2**63 - 1),
        st.none() | st.lists(st.text(max_size=8), min_size=4, max_size=4),
    ),
    st.builds(StreamCancel, st.integers(0, 2**63 - 1)),
)


@given(stream_frames)
def test_stream_frames_round_trip(frame: Any) -> None:
    data = encode(frame)
    assert parse(data[4:]) == frame


@given(
    st.sampled_from([Kind.STREAM, Kind.ITEM, Kind.MORE, Kind.END, Kind.CANCEL]),
    st.lists(
        st.one_of(
            st.integers(-(2**64), 2**64),
            st.text(max_size=4),
            st.none(),
            st.lists(st.text(max_size=2), max_size=5),
        ),
        max_size=8,
    ),
)
def test_a_malformed_stream_frame_is_refused_before_any_object_is_built(
    kind: int, fields: list[Any]
) -> None:
    """Either the layout holds and the frame is built, or WireError: nothing else; a
    window or grant is never outside 1..MAX_STREAM_WINDOW."""
    try:
        frame = parse(wire.dumps([kind, *fields]))
    except wire.WireError:
        return
    if isinstance(frame, StreamOpen):
        assert 1 <= frame.window <= MAX_STREAM_WINDOW
    if isinstance(frame, StreamMore):
        assert 1 <= frame.n <= MAX_STREAM_WINDOW


@swimactors.message("test.protocol.Point")
class Point:
    x: int
    y: int = 0
    label: str = ""


@swimactors.message("test.protocol.Mark")
class Mark:
    n: int


@swimactors.message("test.protocol.Empty")
class Empty:
    pass


@swimactors.message("test.protocol.Shaped")
class Shaped:
    """Nested fields of each kind: all go in RUN frames, each one CBOR item."""

    n: int
    items: list[int]
    inner: Point | None = None
    meta: dict[str, int] = attrs.field(factory=dict)
    names: tuple[str, ...] = ()


values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=30),
    st.lists(st.integers(min_value=0, max_value=2**40), max_size=30),
    st.builds(
        Point,
        st.integers(min_value=-(2**40), max_value=2**40),
        st.integers(-(2**64), 2**64 - 1),
        st.text(),
    ),
    st.builds(Mark, st.integers(min_value=0, max_value=2**63 - 1)),
    st.just(Empty()),
)


@given(st.integers(min_value=0, max_value=2**64 - 1), values)
def test_the_hot_frames_are_what_encode_makes(corr: int, value: Any) -> None:
    """Frames built from cached heads equal the generic encoding, byte for byte."""
    where = address("echo", 7, None)
    assert ask_frame(corr, where, value_bytes(value)) == encode(
        Ask(corr, "echo", 7, None, encode_value(value))
    )
    session = PeerSession[str]("a", 1, 8, MAX_FRAME)
    session.take()
    session.try_tell(where, value_bytes(value))
    generic = encode(Tell("echo", 7, None, [encode_value(value)]))[4:]
    assert generic[0] == 0x85  # a TELL's head in its one-byte form; try_tell's is two bytes
    assert bytes(session.take()) == (len(generic) + 1).to_bytes(4, "big") + (
        b"\x98\x05" + generic[1:]
    )
    session.reply(corr, value)
    assert bytes(session.outgoing) == encode(Reply(corr, encode_value(value)))


def test_tells_of_an_all_scalar_class_go_in_a_run_frame_of_their_fields() -> None:
    a, b = pair(window=256)
    handshake(a, b)
    for n in range(3):
        tell_run(a, "x", Mark(n))
    tell_run(a, "x", Point(1, 2, "p"))  # another class: a RUN of its own
    tell(a, "x", 7)  # a TELL between runs: the order on the wire holds
    tell_run(a, "x", Mark(3))
    events = pump(a, b)
    assert events == [
        TellRun("x", 1, None, "test.protocol.Mark", 1, [0, 1, 2]),
        TellRun("x", 1, None, "test.protocol.Point", 3, [1, 2, "p"]),
        Tell("x", 1, None, [encode_value(7)]),
        TellRun("x", 1, None, "test.protocol.Mark", 1, [3]),
    ]
    assert b.undelivered == 6  # a message of a run is one request, as a tell is
    assert decode_run(events[0]) == [Mark(0), Mark(1), Mark(2)]
    assert run_values(events[1]) == [encode_value(Point(1, 2, "p"))]
    for _ in range((255 - 6) // 3 + 1):  # a run frame holds as many as its count byte
        tell_run(a, "y", Point(0))
    assert [len(event.fields) // 3 for event in pump(a, b)] == [83, 1]


def test_only_registered_positional_classes_of_a_few_fields_go_in_runs() -> None:
    @swimactors.message("test.protocol.Wide")
    class Wide:
        x0: int = 0
        x1: int = 0
        x2: int = 0
        x3: int = 0
        x4: int = 0
        x5: int = 0
        x6: int = 0
        x7: int = 0
        x8: int = 0
        x9: int = 0
        x10: int = 0
        x11: int = 0
        x12: int = 0
        x13: int = 0
        x14: int = 0
        x15: int = 0
        x16: int = 0

    @swimactors.message("test.protocol.Listed")
    class Listed:
        points: list[int]

    @swimactors.message("test.protocol.Named")
    class Named:
        n: int = attrs.field(kw_only=True)

    assert flat_encoder(Mark) is not None
    assert flat_encoder(Listed) is not None  # a nested field is one CBOR item too
    assert flat_encoder(Wide) is None  # more than RUN_WIDTH fields
    assert len(attrs.fields(Wide)) == RUN_WIDTH + 1
    assert flat_encoder(Named) is None  # not built positionally
    assert flat_encoder(Empty) is None  # nothing to lay flat: a TELL
    assert flat_encoder(int) is None and flat_encoder(dict) is None


@pytest.mark.parametrize(
    "fields",
    [
        ["x", 1, None, "test.protocol.Mark", 0, 1],  # width 0
        ["x", 1, None, "test.protocol.Mark", 2, 1, 2, 3],  # not whole messages
        ["x", 1, None, "test.protocol.Mark", 1],  # no message at all
        ["x", 1, None, "test.protocol.Mark", RUN_WIDTH + 1, *range(RUN_WIDTH + 1)],
        ["x", 1, None, 1.5, 1, 1],  # a tag is an int or a str
        ["x", 1, None, "test.protocol.Mark", True, 1],  # a width is an int
        ["x", -1, None, "test.protocol.Mark", 1, 1],
    ],
)
def test_a_malformed_run_is_refused(fields: list[Any]) -> None:
    with pytest.raises(wire.WireError):
        parse(wire.dumps([Kind.RUN, *fields]))


nested_fields = st.recursive(
    st.integers(-3, 3) | st.text(max_size=3) | st.none() | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=2), inner, max_size=2)
        | st.tuples(st.just("test.protocol.Point"), inner, inner, inner).map(list)
    ),
    max_leaves=6,
)


@given(
    st.sampled_from(
        [
            ("test.protocol.Mark", 1),
            ("test.protocol.Point", 3),
            ("nobody", 1),
            ("test.protocol.Shaped", 5),
        ]
    ),
    st.lists(nested_fields, max_size=12),
)
def test_a_run_builds_as_its_values_decode_one_by_one_up_to_the_first_refused(
    kind: tuple[str, int], fields: list[Any]
) -> None:
    tag, width = kind
    frame = TellRun("x", 1, None, tag, width, fields[: len(fields) - len(fields) % width])
    expected = []
    for value in run_values(frame):
        try:
            expected.append(decode_value(value))
        except wire.WireError:
            break
    assert decode_run(frame) == expected
    assert len(run_values(frame)) == len(frame.fields) // width


@given(
    st.lists(
        st.builds(
            Point,
            st.integers(-(2**63), 2**63 - 1),
            st.integers(-(2**64), 2**64 - 1),
            st.text(),
        )
    )
)
def test_a_run_carries_each_message_as_encode_value_would(points: list[Point]) -> None:
    a, b = pair(window=4096)
    handshake(a, b)
    for point in points:
        assert tell_run(a, "x", point)
    events = pump(a, b)
    assert [m for event in events for m in decode_run(event)] == points
    assert [v for event in events for v in run_values(event)] == list(map(encode_value, points))
    assert all(parse(encode(event)[4:]) == event for event in events)


wire_int = st.integers(-(2**64), 2**64 - 1)
shapes = st.builds(
    Shaped,
    wire_int,
    st.lists(wire_int, max_size=5),
    st.none() | st.builds(Point, wire_int, wire_int, st.text(max_size=4)),
    st.dictionaries(st.text(max_size=4), wire_int, max_size=3),
    st.lists(st.text(max_size=3), max_size=3).map(tuple),
)


@given(shapes)
def test_a_nested_message_encodes_as_its_generic_encoding(msg: Shaped) -> None:
    assert value_bytes(msg) == wire.dumps(encode_value(msg))
    assert decode_value(wire.loads(value_bytes(msg))) == msg


@given(st.lists(shapes, max_size=20))
def test_messages_with_nested_fields_round_trip_in_runs(messages: list[Shaped]) -> None:
    """Each nested field is one CBOR item laid in the run; the receiver builds the same
    messages straight from them, and a TELL of each carries the same fields."""
    a, b = pair(window=4096)
    handshake(a, b)
    for msg in messages:
        assert tell_run(a, "x", msg)
    events = pump(a, b)
    assert all(isinstance(event, TellRun) and event.width == 5 for event in events)
    assert [m for event in events for m in decode_run(event)] == messages
    runs = [value for event in events for value in run_values(event)]
    assert runs == [encode_value(msg) for msg in messages]


@pytest.mark.parametrize(
    "msg",
    [Shaped(0, [2**64]), Shaped(0, [], Point(2**64)), Shaped(0, [], None, {"k": -(2**64) - 1})],
    ids=["in a list", "in a nested message", "in a map"],
)
def test_a_nested_field_the_wire_refuses_is_refused_before_it_is_sent(msg: Shaped) -> None:
    flat = flat_encoder(Shaped)
    assert flat is not None
    with pytest.raises(wire.WireError):
        flat[2](msg)
    with pytest.raises(Unsendable):
        value_bytes(msg)


wire_values = st.one_of(
    values.map(encode_value),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=12), st.none()), max_size=4).map(
        lambda fields: [1, fields]  # message-like values, mostly refused
    ),
    st.builds(
        lambda tag, n: [1, [tag, n]],
        st.sampled_from(["test.protocol.Mark", "test.protocol.Point"]),
        st.integers(-2, 2),
    ),
)


@given(st.lists(wire_values, max_size=8))
def test_a_burst_decodes_as_its_values_one_by_one_up_to_the_first_refused(
    burst: list[Any],
) -> None:
    expected = []
    for value in burst:
        try:
            expected.append(decode_value(value))
        except wire.WireError:
            break
    assert decode_values(burst) == expected


def test_a_burst_of_tells_to_one_actor_is_one_frame_until_something_else_goes_out() -> None:
    a, b = pair(window=64)
    handshake(a, b)
    for n in range(3):
        tell(a, "x", n)
    tell(a, "y", 3)  # another actor: a frame of its own
    sender = swimactors.ActorRef("a", "me", 2, None)  # type: ignore[arg-type]
    assert a.try_tell(address("y", 1, sender), value_bytes(4))  # another sender
    ask(a, 1, "q")
    tell(a, "y", 5)  # after the ask: a new frame, so the order on the wire holds
    tell(a, "y", 6)
    assert pump(a, b) == [
        Tell("x", 1, None, [encode_value(n) for n in range(3)]),
        Tell("y", 1, None, [encode_value(3)]),
        Tell("y", 1, ["a", "me", 2], [encode_value(4)]),
        Ask(1, "echo", 1, None, encode_value("q")),
        Tell("y", 1, None, [encode_value(5), encode_value(6)]),
    ]
    assert b.undelivered == 8


def test_a_tell_after_a_send_starts_a_new_frame() -> None:
    a, b = pair()
    handshake(a, b)
    tell(a, "x", 1)
    head = bytes(a.outgoing[:3])
    a.sent(3)  # part of the frame went out: the rest cannot grow any more
    tell(a, "x", 2)
    b.receive_data(head + bytes(a.take()), 0.0)
    assert [b.next_event(), b.next_event()] == [
        Tell("x", 1, None, [encode_value(1)]),
        Tell("x", 1, None, [encode_value(2)]),
    ]


def test_a_tell_frame_stops_taking_values_at_its_limits() -> None:
    a, b = pair(window=1024)
    handshake(a, b)
    for n in range(TELL_VALUES + 1):
        tell(a, "x", n)
    big = "b" * (MAX_FRAME // 3)  # MAX_FRAME < TELL_BYTES: frames stay within MAX_FRAME
    for _ in range(6):
        tell(a, "x", big)
    events = pump(a, b)  # b's limit is MAX_FRAME too: a longer frame would be refused
    assert [len(event.values) for event in events] == [TELL_VALUES, 3, 2, 2]
    assert [v for event in events for v in event.values] == [
        *map(encode_value, range(TELL_VALUES + 1)),
        *[encode_value(big)] * 6,
    ]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("tell"), st.sampled_from(["x", "y"]), st.integers(0, 2**40)),
            st.tuples(st.just("run"), st.sampled_from(["x", "y"]), st.integers(0, 2**40)),
            st.tuples(st.just("ask"), st.just("echo"), st.integers(0, 2**40)),
            st.tuples(st.just("send"), st.just(""), st.integers(0, 64)),
        ),
        max_size=60,
    )
)
def test_tells_bursts_asks_and_partial_sends_arrive_in_order(ops: list[Any]) -> None:
    """Whatever mix of tells (to two actors, in TELL and RUN frames), asks and partial
    sends, the peer gets every request once, in the order it was made."""
    a, b = pair(window=1024)
    handshake(a, b)
    wire_bytes = bytearray()
    made = []
    for corr, (op, path, n) in enumerate(ops, 1):
        if op == "tell":
            assert tell(a, path, n)
            made.append((path, n))
        elif op == "run":
            assert tell_run(a, path, Mark(n))
            made.append((path, Mark(n)))
        elif op == "ask":
            assert ask(a, corr, n)
            made.append(("echo", n))
        else:
            taken = bytes(a.outgoing[:n])
            a.sent(len(taken))
            wire_bytes += taken
    wire_bytes += a.take()
    b.receive_data(bytes(wire_bytes), 0.0)
    got = []
    while (event := b.next_event()) is not None:
        if isinstance(event, TellRun):
            got.extend((event.path, msg) for msg in decode_run(event))
            continue
        values = event.values if isinstance(event, Tell) else [event.value]
        got.extend((event.path, decode_value(value)) for value in values)
    assert got == made


# -- asks in a row, taken straight (lone_reply, lone_ask) ---------------------------------

_SHAPES = [
    "whole",
    "two frames",
    "cut short",
    "after a partial frame",
    "behind a frame not yet taken",
    "another corr",
]


def _twins() -> tuple[PeerSession[str], PeerSession[str]]:
    """Two sessions in the same state: one for the straight path, one for the usual."""
    sessions = []
    for _ in range(2):
        a, b = pair()
        handshake(a, b)
        sessions.append(a)
    return sessions[0], sessions[1]


def _shaped(frame: bytes, shape: str, other: bytes) -> tuple[bytes, bytes]:
    """What is fed before the read and the read itself, for each :data:`_SHAPES`."""
    if shape == "two frames":
        return b"", frame + frame
    if shape == "cut short":
        return b"", frame[:-1]
    if shape == "after a partial frame":
        return frame[:2], frame
    if shape == "behind a frame not yet taken":
        return encode(Credit(1)), frame
    if shape == "another corr":
        return b"", other
    return b"", frame


def _usual(session: PeerSession[str], data: bytes) -> list[Any] | str:
    session.receive_data(data, 1.0)
    try:
        return pump_events(session)
    except ProtocolViolation as exc:
        return exc.counter


def pump_events(session: PeerSession[str]) -> list[Any]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


@given(st.integers(0, 2**63 - 1), wire_values | st.binary(max_size=9), st.sampled_from(_SHAPES))
def test_a_lone_reply_is_what_the_usual_path_makes_of_it_and_anything_else_is_left_to_it(
    corr: int, value: Any, shape: str
) -> None:
    """The REPLY an asker awaits, read alone, is the event the session would have made of
    it; any other read (or a value that does not load) is left untouched to the usual path."""
    straight, usual = _twins()
    for session in (straight, usual):
        session.expect(corr, "token")
    body = [Kind.REPLY, corr, value] if type(value) is not bytes else None
    frame = wire.encode_frame(wire.dumps(body)) if body else _reply_head(corr) + value
    before, data = _shaped(frame, shape, wire.encode_frame(wire.dumps([Kind.REPLY, corr ^ 1, 0])))
    straight.receive_data(before, 0.0)
    events = _usual(usual, before + data)
    answered = straight.lone_reply(data, corr, 1.0)
    if answered is None:
        assert "token" in straight.pending.values() and straight.last_active == 0.0
        assert shape != "whole" or body is None  # (bytes that do not load)
        return
    assert shape == "whole" and events == [Answered("token", Reply(corr, answered[1]))]
    assert answered[0] == "token" and straight.pending == usual.pending == {}
    assert straight.last_active == 1.0


def _reply_head(corr: int) -> bytes:
    """A REPLY frame's head whose value is whatever follows (for bytes that do not load)."""
    head = wire.dumps([Kind.REPLY, corr, 0])[:-1]
    return head


@given(
    st.integers(0, 2**64 - 1),
    st.text(max_size=12),
    st.integers(0, 2**63 - 1),
    st.none() | st.tuples(nodes, st.text(max_size=8), st.integers(0, 9)).map(list),
    wire_values,
    st.sampled_from([*_SHAPES[:-1], "traced", "another actor"]),
)
def test_a_lone_ask_is_what_the_usual_path_makes_of_it_and_anything_else_is_left_to_it(
    corr: int, path: str, uid: int, sender: list[Any] | None, value: Any, shape: str
) -> None:
    """An untraced ASK to the address of the request before, read alone, is the ASK the
    session would have handed on (counted against the window the same); anything else
    is left untouched to the usual path."""
    straight, usual = _twins()
    address = wire_address(path, uid, sender)
    frame = wire.encode_frame(wire.dumps([Kind.ASK, corr, path, uid, sender, value]))
    other = frame
    if shape == "traced":
        other = wire.encode_frame(wire.dumps([Kind.ASK, corr, path, uid, sender, value, "t"]))
    elif shape == "another actor":
        other = wire.encode_frame(wire.dumps([Kind.ASK, corr, path + "x", uid, sender, value]))
    shape = "another corr" if shape in ("traced", "another actor") else shape
    before, data = _shaped(frame, shape, other)
    straight.receive_data(before, 0.0)
    events = _usual(usual, before + data)
    ask = straight.lone_ask(data, address, 1.0)
    if ask is None:
        assert straight.undelivered == 0 and straight.last_active == 0.0
        assert shape != "whole" or corr >= 2**63  # (a malformed ASK, for the usual path)
        return
    assert shape == "whole" and events == [Ask(corr, path, uid, sender, value)]
    assert ask == (corr, value) and straight.undelivered == usual.undelivered == 1


def test_a_lone_ask_past_the_window_breaks_the_connection() -> None:
    a, b = pair(window=2)
    handshake(a, b)
    frame = ask_frame(1, address("echo", 1, None), value_bytes("x"))
    assert b.lone_ask(frame, address("echo", 1, None), 0.0) is not None
    assert b.lone_ask(frame, address("echo", 1, None), 0.0) is not None
    with pytest.raises(ProtocolViolation, match="more requests than its window"):
        b.lone_ask(frame, address("echo", 1, None), 0.0)


def test_nothing_is_taken_straight_before_the_hello() -> None:
    a, b = pair()
    frame = ask_frame(1, address("echo", 1, None), value_bytes("x"))
    assert b.lone_ask(frame, address("echo", 1, None), 0.0) is None
    a.expect(1, "token")
    assert a.lone_reply(wire.encode_frame(wire.dumps([Kind.REPLY, 1, [0, 1]])), 1, 0.0) is None


@given(st.binary(max_size=64), st.integers(0, 300))
def test_taking_straight_is_total_on_arbitrary_bytes(data: bytes, corr: int) -> None:
    a, b = pair()
    handshake(a, b)
    a.expect(corr, "token")
    a.lone_reply(data, corr, 0.0)
    a.lone_reply(_reply_head(corr) + data, corr, 0.0)
    b.lone_ask(data, address("echo", 1, None), 0.0)
    b.lone_ask(b"\0\0\0\0" + ask_frame(corr, b"", b"")[4:6] + data, b"", 0.0)
