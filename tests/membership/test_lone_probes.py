"""A lone ping or ack from a live member is handled without message objects
(``Swim._answered_at_once``): it must do exactly what the general path does with the same
packet, and it must be the path those packets take."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors import wire
from swimactors.membership import Status, Swim
from swimactors.membership.messages import PROTOCOL_VERSION, Ack, Dead, Left, Ping

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
    core._answered_at_once = lambda source, value: False  # type: ignore[method-assign]
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


def same_on_both_paths(envelope: list[Any], queue_drained: bool) -> None:
    quick, general = formed(queue_drained), general_only(formed(queue_drained))
    assert state(quick) == state(general)
    raw = wire.dumps(envelope)
    quick.receive(later(quick), addr(1), raw)
    general.receive(later(general), addr(1), raw)
    assert state(quick) == state(general)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), queue_drained=st.booleans())
def test_the_quick_path_does_what_the_general_path_does(
    data: st.DataObject, queue_drained: bool
) -> None:
    probe = formed(queue_drained)._probe
    assert probe is not None
    same_on_both_paths(data.draw(packets(probe.seq)), queue_drained)


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
