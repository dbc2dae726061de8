"""Protocol values that cannot be weaponised: incarnations have a maximum (news beyond it
is refused and counted, refutation never overflows), names are printable, and one
push/pull adds a bounded number of unknown members."""

from __future__ import annotations

import cbor2
import pytest

from swimactors.membership import Config, Status
from swimactors.membership.messages import (
    MAX_INCARNATION,
    Alive,
    Dead,
    MemberState,
    PushPull,
    Suspect,
    encode_packet,
)

from .util import addr, deliver, make_core, member, run


def forged(message: list[object], sender: str = "p1") -> bytes:
    """A datagram carrying ``message`` as raw CBOR, past the encoder's validators."""
    return encode_packet("", sender, [cbor2.dumps(message)])


def test_news_beyond_the_maximum_incarnation_is_refused_and_counted() -> None:
    core = make_core()
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1))
    for incarnation in (MAX_INCARNATION + 1, 2**63 - 1):
        core.receive(1.0, addr(2), forged([6, "p1", incarnation, "p2"]))  # Dead
        core.receive(1.0, addr(2), forged([6, "n0", incarnation, "p2"]))  # about us
    assert core.counters["rejected_out_of_range"] == 4
    assert member(core, "p1").status is Status.UP
    assert core.incarnation == 0 and core.counters["refutations"] == 0


@pytest.mark.parametrize("news", [Dead, Suspect])
def test_refuting_news_at_the_maximum_never_overflows(news: type) -> None:
    core = make_core()
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1))
    deliver(core, 1.0, "p1", news("n0", MAX_INCARNATION, "p1"))
    assert core.incarnation == MAX_INCARNATION
    run(core, 30.0)  # ticks and gossip go on: nothing raises
    deliver(core, 31.0, "p1", news("n0", MAX_INCARNATION, "p1"))
    assert core.incarnation == MAX_INCARNATION


def test_a_restarted_member_outbids_forged_news_below_its_new_start() -> None:
    """A node starts at the wall clock in ms: a forged Dead at any incarnation the wire
    accepts below that start is old news to the restarted process."""
    core = make_core()
    deliver(core, 0.0, "c", Alive("c", addr(3), 1_700_000_000_000))
    deliver(core, 1.0, "p1", Dead("c", 1_700_000_000_500, "p1"))
    assert member(core, "c").status is Status.DOWN
    deliver(core, 2.0, "c", Alive("c", addr(3), 1_700_000_100_000), source=addr(3))
    assert member(core, "c").status is Status.UP


def test_names_must_be_printable_at_the_api_and_on_the_wire() -> None:
    with pytest.raises(ValueError, match="printable"):
        make_core(name="n\x1b[31m0")
    core = make_core()
    core.receive(0.0, addr(1), forged([4, "p\x07", ["10.0.0.2", 7001], 1, b""]))
    core.receive(0.0, addr(1), forged([0, 1, ""], sender="p\n1"))
    assert core.counters["rejected_unprintable_name"] == 2
    assert core.member("p\x07") is None


def test_one_push_pull_adds_at_most_the_configured_number_of_unknown_members() -> None:
    core = make_core(Config.lan().replace(push_pull_max_newcomers=100))
    members = tuple(
        MemberState.of(f"fake{i}", ("10.9.0.1", 1 + i), 1, Status.UP, b"") for i in range(300)
    )
    deliver(core, 0.0, "p1", PushPull(False, True, members, {}), reliable=True)
    assert len([m for m in core.members() if m.name.startswith("fake")]) == 100
    assert core.counters["rejected_newcomer_limit"] == 200


def test_the_newcomer_bound_leaves_known_members_alone() -> None:
    core = make_core(Config.lan().replace(push_pull_max_newcomers=1))
    for i in range(1, 4):
        deliver(core, 0.0, f"p{i}", Alive(f"p{i}", addr(i), 1))
    members = tuple(MemberState.of(f"p{i}", addr(i), 2, Status.UP, b"") for i in range(1, 4))
    deliver(core, 1.0, "p1", PushPull(False, True, members, {}), reliable=True)
    assert [member(core, f"p{i}").incarnation for i in range(1, 4)] == [2, 2, 2]
    assert core.counters["rejected_newcomer_limit"] == 0
