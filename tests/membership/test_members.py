"""Mechanism 1: members (name, address, incarnation, status, metadata <= 512 bytes,
metadata changes re-announced under a new incarnation)."""

from __future__ import annotations

import pytest

from swimactors.membership import Member, MemberUp, MemberUpdated, Status, Swim
from swimactors.membership import core as core_module
from swimactors.membership.messages import SWIM, Alive, encode_packet
from swimactors.wire import dumps

from .util import HOME, addr, deliver, make_core, member, messages, run, sent


def test_a_new_core_sees_only_itself_up() -> None:
    core = make_core(meta=b"role=x", incarnation=3)
    assert core.members() == [Member("n0", HOME, 3, Status.UP, b"role=x")]
    assert core.member("n0") == core.members()[0]
    assert core.member("nobody") is None
    assert core.next_deadline() is None  # nothing to do before join / tick / receive


@pytest.mark.parametrize(
    ("name", "address", "meta"),
    [
        ("", HOME, b""),
        ("x" * 129, HOME, b""),
        ("n0", ("10.0.0.1", 0), b""),
        ("n0", ("10.0.0.1", 70000), b""),
        ("n0", ("", 7000), b""),
        ("n0", HOME, b"m" * 513),
    ],
)
def test_bad_identity_is_refused_at_construction(
    name: str, address: tuple[str, int], meta: bytes
) -> None:
    with pytest.raises(ValueError):
        Swim(name, address, meta=meta)


def test_meta_at_the_limit_is_accepted_and_one_byte_more_refused() -> None:
    core = make_core(meta=b"m" * 512)
    with pytest.raises(ValueError, match="512"):
        core.set_meta(b"m" * 513, now=0.0)
    assert member(core, "n0").meta == b"m" * 512
    with pytest.raises(TypeError):
        core.set_meta("text", now=0.0)  # type: ignore[arg-type]


def test_config_max_meta_size_lowers_the_limit() -> None:
    core = make_core(config=make_core().config.replace(max_meta_size=8))
    core.set_meta(b"12345678", now=0.0)
    with pytest.raises(ValueError):
        core.set_meta(b"123456789", now=0.0)


def test_set_meta_bumps_incarnation_and_is_reannounced() -> None:
    core = make_core()
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1))
    core.take_events()
    sent(core)
    core.set_meta(b"v2", now=1.0)
    assert core.incarnation == 1
    assert core.member("n0") == Member("n0", HOME, 1, Status.UP, b"v2")
    events = core.take_events()
    assert [type(e) for e in events] == [MemberUpdated]
    assert events[0].member.meta == b"v2" and events[0].time == 1.0
    alive = messages([p for _, p in run(core, 5.0)], Alive)
    assert Alive("n0", HOME, 1, b"v2") in alive


def test_a_peers_new_meta_at_a_higher_incarnation_updates_it() -> None:
    core = make_core()
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1, b"a"))
    assert [type(e) for e in core.take_events()] == [MemberUp]
    deliver(core, 1.0, "p1", Alive("p1", addr(1), 1, b"b"))  # same incarnation: ignored
    assert member(core, "p1").meta == b"a"
    deliver(core, 2.0, "p1", Alive("p1", addr(1), 2, b"b"))
    assert core.member("p1") == Member("p1", addr(1), 2, Status.UP, b"b")
    events = core.take_events()
    assert [type(e) for e in events] == [MemberUpdated]
    assert events[0].time == 2.0


def test_oversized_meta_on_the_wire_is_rejected_and_counted() -> None:
    core = make_core()
    # hand-encode an Alive whose meta exceeds 512 bytes (the constructor would refuse it)

    tag = SWIM.tag_of(Alive)
    raw = dumps([tag, "p1", list(addr(1)), 1, b"m" * 513])
    core.receive(0.0, addr(1), encode_packet("", "p1", [raw]))
    assert core.member("p1") is None
    assert core.counters["rejected_malformed"] == 1


def test_members_are_sorted_and_include_self() -> None:
    core = make_core()
    for i in (3, 1, 2):
        deliver(core, 0.0, f"p{i}", Alive(f"p{i}", addr(i), 1))
    assert [m.name for m in core.members()] == ["n0", "p1", "p2", "p3"]
    assert core.alive_count() == 4


def test_members_beyond_the_limit_are_refused_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bound against forged Alive floods."""
    monkeypatch.setattr(core_module, "MAX_MEMBERS", 10)
    core = make_core()
    for i in range(1, 20):
        deliver(core, 0.0, "p1", Alive(f"x{i}", addr(i), 1))
    assert len(core.members()) == 10
    assert core.counters["rejected_member_limit"] == 10
