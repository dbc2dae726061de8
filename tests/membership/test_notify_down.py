"""``Config.notify_down_members`` (foca's): a member this node's suspicion timer declares
DOWN is told so at once, by one datagram of its own, at most once per probe interval
(shared with telling a DOWN member that speaks); a live member refutes on receipt."""

from __future__ import annotations

from swimactors.membership import Config, MemberDown, Status, Swim
from swimactors.membership.messages import Alive, Dead, Ping

from .util import Sent, acking, add_peers, addr, deliver, make_core, member, run, sent

QUIET = Config.lan().replace(gossip_nodes=0)
"""No gossip: gossip to the recently dead would reach p1 too (with three peers, always)."""
NOTIFY = QUIET.replace(notify_down_members=True)


def declared(config: Config) -> tuple[Swim, float, list[tuple[float, Sent]]]:
    """A core with peers p1..p3 where only p1 never answers: run until p1 is DOWN.
    Returns the core, the time of the declaration and every packet sent."""
    core = make_core(config=config)
    add_peers(core, 3)
    log = run(core, 40.0, acking(lambda name: name != "p1"))
    (down,) = [e for e in core.take_events() if isinstance(e, MemberDown)]
    assert down.member.name == "p1"
    return core, down.time, log


def test_a_member_declared_down_is_told_at_once_in_a_datagram_of_its_own() -> None:
    """foca's declaring_a_member_as_down_notifies_them."""
    core, when, log = declared(NOTIFY)
    incarnation = member(core, "p1").incarnation
    notices = [
        (t, p) for t, p in log if p.destination == addr(1) and p.messages == (
            Dead("p1", incarnation, "n0"),)
    ]  # fmt: skip
    assert [t for t, _ in notices] == [when]
    assert not notices[0][1].reliable
    assert core.counters["notified_down"] == 1


def test_without_the_setting_nothing_is_sent_at_the_declaration() -> None:
    core, when, log = declared(QUIET)
    assert Config.lan().notify_down_members is False
    assert core.counters["notified_down"] == 0
    assert not any(
        t == when and p.destination == addr(1) and p.messages == (Dead("p1", 1, "n0"),)
        for t, p in log
    )


def test_the_notice_and_telling_a_down_member_that_speaks_share_one_limit() -> None:
    core, when, _ = declared(NOTIFY)
    deliver(core, when + 0.5, "p1", Ping(1, "n0"))
    assert not [p for p in sent(core) if p.of(Dead)]
    deliver(core, when + 1.5, "p1", Ping(2, "n0"))
    (told,) = [p for p in sent(core) if p.of(Dead)]
    assert told.destination == addr(1)
    assert core.counters["told_down"] == 1


def test_a_live_member_told_it_is_down_refutes_and_answers_at_once() -> None:
    core = make_core(config=NOTIFY, incarnation=1)
    add_peers(core, 2)
    deliver(core, 1.0, "p1", Dead("n0", 1, "p1"))
    assert core.incarnation == 2
    answers = [p for p in sent(core) if p.destination == addr(1)]
    assert any(Alive("n0", core.address, 2) in p.messages for p in answers)
    assert member(core, "n0").status is Status.UP
