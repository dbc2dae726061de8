"""A lone ping or ack from a live member is read from its bytes and handled without
message objects (``Swim._answered_at_once``, ``probe_exchange``): it must do exactly what
the general path does with the same packet, and it must be the path those packets take."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors import wire
from swimactors.membership import Config, Status, Swim
from swimactors.membership.messages import (
    PROTOCOL_VERSION,
    Ack,
    Alive,
    Dead,
    Left,
    Ping,
    ack_item,
    datagram_head,
    kind_and_bytes,
    ping_item,
    probe_exchange,
)

from .util import acking, add_peers, addr, deliver, make_core, member, next_deadline, run

NOW = 30.0


def formed(queue_drained: bool) -> Swim:
    """n0 with four live peers, p5 LEFT and p6 DOWN, a probe of its own in progress (its ping
    taken), news still queued unless ``queue_drained``, and p3 unreached and not heard
    from directly (as a lost ack and a member only gossip told of leave one)."""
    core = make_core()
    add_peers(core, 6)
    deliver(core, 0.1, "p1", Dead("p6", 1, "p1"))
    deliver(core, 0.1, "p5", Left("p5", 1))
    run(core, NOW if queue_drained else 0.5, acking(lambda name: name not in ("p5", "p6")))
    at = next_deadline(core)
    while core._probe is None or core._probe.acked:  # on to the next probe's ping
        core.tick(at)
        at = next_deadline(core)
    core.take_outgoing()
    core._heard.discard("p3")
    core._unreached.add("p3")
    return core


def later(core: Swim) -> float:
    """A time after the core's last tick, before its next deadline."""
    return next_deadline(core) - 0.001


def state(core: Swim) -> tuple[Any, ...]:
    probe = core._probe
    return (
        core.take_outgoing(),
        core.take_events(),
        dict(core.counters),
        core.awareness,
        core.unreached(),
        None if probe is None else (probe.seq, probe.acked, probe.failed),
        sorted(core._heard),
    )


def general_only(core: Swim) -> Swim:
    core._answered_at_once = lambda source, data: False  # type: ignore[method-assign]
    return core


senders = st.sampled_from(["p1", "p2", "p3", "p3", "p5", "p6", "n0", "stranger"])
EDGE_SEQS = [2**63 - 1, 2**63, -1, True, False, 1.0, "1"]
seqs = st.one_of(st.integers(min_value=0, max_value=12), st.sampled_from(EDGE_SEQS))
targets = st.sampled_from(["", "n0", "n0", "p2", "n0\x00", 5])
shapes = st.sampled_from(
    ["ping", "ping", "ack", "ack", "ping+extra", "ack+extra", "two", "bool-tag"]
)


@st.composite
def packets(draw: st.DrawFn, probe_seq: int) -> Any:
    sender, shape = draw(senders), draw(shapes)
    seq = draw(st.one_of(seqs, st.just(probe_seq)))
    message: list[Any]
    if shape.startswith("ping"):
        message = [0, seq, draw(targets)]
    elif shape.startswith("ack"):
        message = [1, seq]
    elif shape == "bool-tag":
        message = [draw(st.booleans()), seq]
    else:
        message = [1, seq]
    if shape.endswith("+extra"):
        message.append(0)
    messages = [message, [1, seq]] if shape == "two" else [message]
    version = draw(st.sampled_from([PROTOCOL_VERSION] * 3 + [PROTOCOL_VERSION + 1]))
    label = draw(st.sampled_from(["", "", "", "other"]))
    envelope: list[Any] = [version, label, sender, messages]
    if draw(st.booleans()) and draw(st.booleans()):
        envelope.append(list(addr(9)))  # a reliable-channel packet
    return envelope


def same_on_both_paths(envelope: list[Any] | bytes, queue_drained: bool) -> None:
    quick, general = formed(queue_drained), general_only(formed(queue_drained))
    assert state(quick) == state(general)
    raw = envelope if isinstance(envelope, bytes) else wire.dumps(envelope)
    assert quick.receive(later(quick), addr(1), raw) == general.receive(
        later(general), addr(1), raw
    )
    assert state(quick) == state(general)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), queue_drained=st.booleans(), mangled=st.booleans())
def test_the_quick_path_does_what_the_general_path_does(
    data: st.DataObject, queue_drained: bool, mangled: bool
) -> None:
    probe = formed(queue_drained)._probe
    assert probe is not None
    envelope = data.draw(packets(probe.seq))
    if mangled:  # the same packet truncated, extended or with one byte changed
        envelope = data.draw(mangle(wire.dumps(envelope)))
    same_on_both_paths(envelope, queue_drained)


def mangle(raw: bytes) -> st.SearchStrategy[bytes]:
    at = st.integers(min_value=0, max_value=len(raw) - 1)
    return st.one_of(
        at.map(lambda i: raw[:i]),
        st.binary(min_size=1, max_size=3).map(lambda extra: raw + extra),
        st.tuples(at, st.integers(0, 255)).map(
            lambda c: raw[: c[0]] + bytes([c[1]]) + raw[c[0] + 1 :]
        ),
    )


# -- probe_exchange reads what the CBOR decoder reads ---------------------------------------

LABEL, ME = "lab", "n0-é"


def lone_probe_in(value: Any) -> tuple[str, int, bool] | None:
    """The rule, on the decoded value: ``[version, label, sender, [message]]`` with a
    string sender and one ``[PING, seq, target]`` (target empty or ours) or ``[ACK, seq]``,
    ``0 <= seq < 2**63``, every number an int."""
    if type(value) is not list or len(value) != 4:
        return None
    version, label, sender, messages = value
    if version != PROTOCOL_VERSION or label != LABEL or type(sender) is not str:
        return None
    if type(messages) is not list or len(messages) != 1 or type(messages[0]) is not list:
        return None
    message = messages[0]
    if not all(type(item) is int for item in message[:2]) or len(message) < 2:
        return None
    if not 0 <= message[1] < 2**63:
        return None
    if message[0] == 1 and len(message) == 2:
        return sender, message[1], False
    if message[0] == 0 and len(message) == 3 and message[2] in ("", ME):
        return sender, message[1], True
    return None


def uint(value: int, width: int) -> bytes:
    """``value`` as a CBOR unsigned integer, its argument ``width`` bytes wide (0: in the
    initial byte), minimal or not."""
    if width == 0:
        return bytes([value])
    return bytes([{1: 24, 2: 25, 4: 26, 8: 27}[width]]) + value.to_bytes(width, "big")


def text(value: str | bytes, one_byte_length: bool) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if one_byte_length or len(raw) >= 24:
        return b"\x78" + bytes([len(raw)]) + raw
    return bytes([0x60 + len(raw)]) + raw


@st.composite
def lone_probe_bytes(draw: st.DrawFn) -> bytes:
    """A lone ping or ack, or something close to one, encoded minimally or not."""
    head = draw(
        st.sampled_from(
            [datagram_head(LABEL)] * 6 + [datagram_head("other"), datagram_head(LABEL)[:-1]]
        )
    )
    sender = draw(
        st.one_of(
            st.text(max_size=30),
            st.binary(max_size=30),  # (not always UTF-8)
            st.sampled_from(["p1", "x" * 23, "x" * 24, "é" * 40]),
        )
    )
    seq = draw(st.sampled_from([0, 23, 24, 255, 256, 2**32, 2**63 - 1, 2**63, 2**64 - 1]))
    fits = [w for w in (0, 1, 2, 4, 8) if (seq < 24 if w == 0 else seq < 2 ** (8 * w))]
    encoded_seq = uint(seq, draw(st.sampled_from(fits)))
    encoded_seq = draw(
        st.sampled_from([encoded_seq] * 5 + [b"\x20", b"\x1c", b"\xf5", b"\xf9\x00\x00"])
    )
    shape = draw(st.sampled_from(["ping", "ping", "ack", "ack", "ping-no-target", "ack+1"]))
    if shape.startswith("ping"):
        message = b"\x83\x00" if shape == "ping" else b"\x82\x00"
        message += encoded_seq
        if shape == "ping":
            target = draw(st.sampled_from(["", ME, "other", ME + "x"]))
            message += text(target, draw(st.booleans()))
    else:
        message = (b"\x82\x01" if shape == "ack" else b"\x83\x01") + encoded_seq
        if shape == "ack+1":
            message += b"\x00"
    data = (
        head + text(sender, draw(st.booleans())) + draw(st.sampled_from([b"\x81"] * 4 + [b"\x82"]))
    )
    data += message
    return data + draw(st.sampled_from([b""] * 4 + [b"\x00", b"\x81"]))


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(lone_probe_bytes(), lone_probe_bytes().flatmap(mangle)))
def test_probe_exchange_reads_what_the_decoder_reads(data: bytes) -> None:
    read = probe_exchange(data, datagram_head(LABEL), wire.dumps(ME))
    try:
        value = wire.loads(data)
    except wire.WireError:
        assert read is None
        return
    assert read is None or read == lone_probe_in(value)
    if wire.dumps(value) == data:  # encoded as a sender encodes it: no general path
        assert read == lone_probe_in(value)


def test_lone_items_are_the_messages_encoded() -> None:
    for seq in (0, 23, 24, 2**32, 2**63 - 1):
        assert ack_item(seq) == kind_and_bytes(Ack(seq))
        for target in ("", "n1", "é" * 30):
            assert ping_item(seq, target) == kind_and_bytes(Ping(seq, target))


def test_an_oversized_lone_ping_is_refused_on_both_paths() -> None:
    config = Config.lan().replace(packet_budget=256)
    long = "p" + "9" * 127  # the longest name, ping for the longest name: over 256 bytes
    for core in (
        make_core(config, name="n" * 128),
        general_only(make_core(config, name="n" * 128)),
    ):
        deliver(core, 0.1, long, Alive(long, addr(9), 1), source=addr(9), reliable=True)
        assert member(core, long).status is Status.UP  # (told by a stream: no budget)
        core.take_outgoing()
        raw = wire.dumps([PROTOCOL_VERSION, "", long, [[0, 5, "n" * 128]]])
        assert len(raw) > 256
        assert core.receive(0.2, addr(9), raw) == "oversized"
        assert core.take_outgoing() == [] and core.counters["received_ping"] == 0


def test_receive_says_why_a_packet_was_refused() -> None:
    core = formed(queue_drained=True)
    assert (
        core.receive(later(core), addr(2), wire.dumps([PROTOCOL_VERSION, "", "p2", [[0, 1, ""]]]))
        is None
    )
    assert (
        core.receive(later(core), addr(2), wire.dumps([PROTOCOL_VERSION, "x", "p2", []])) == "label"
    )
    assert (
        core.receive(later(core), addr(2), wire.dumps([PROTOCOL_VERSION + 1, "", "p2", []]))
        == "version"
    )
    assert core.receive(later(core), addr(2), b"\xff") == "malformed"


@pytest.mark.parametrize("seq", EDGE_SEQS)
@pytest.mark.parametrize("kind", [0, 1])
def test_out_of_range_sequence_numbers_on_both_paths(seq: Any, kind: int) -> None:
    message = [kind, seq, "n0"] if kind == 0 else [kind, seq]
    same_on_both_paths([PROTOCOL_VERSION, "", "p3", [message]], queue_drained=True)


def test_lone_pings_and_acks_from_members_take_the_quick_path() -> None:
    core = formed(queue_drained=True)
    answered: list[bool] = []
    quick = core._answered_at_once

    def spy(source: Any, value: Any) -> bool:
        answered.append(quick(source, value))
        return answered[-1]

    core._answered_at_once = spy  # type: ignore[method-assign]
    probe = core._probe
    assert probe is not None
    deliver(core, later(core), "p2", Ping(7, "n0"))
    deliver(core, later(core), probe.target, Ack(probe.seq))
    deliver(core, later(core), "p3", Ping(8, ""))
    assert answered == [True, True, True]
    assert probe.acked
    acks = [p for p in core.take_outgoing()]
    assert [p.destination for p in acks] == [addr(2), addr(3)]
    assert core.counters["received_ping"] >= 2 and core.counters["received_ack"] >= 1
    # not quick: members held DOWN and LEFT (told so), a late ack, a misdirected ping
    deliver(core, later(core), "p6", Ping(9, "n0"))
    deliver(core, later(core), "p5", Ping(9, "n0"))
    deliver(core, later(core), probe.target, Ack(probe.seq))
    deliver(core, later(core), "p2", Ping(10, "p3"))
    assert answered[3:] == [False, False, False, False]
    assert [member(core, name).status for name in ("p5", "p6")] == [Status.LEFT, Status.DOWN]
