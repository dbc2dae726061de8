"""QuorumTracker timing with explicit ``now``: stability, side convergence through
announcements, the unstable limit, the takeover margin, joiners and leavers."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors import wire
from swimactors.membership import Member, Status, encode_meta
from swimactors.quorum import (
    Phase,
    QuorumConfigError,
    QuorumTracker,
    Verdict,
    age_meta,
    describe,
    keep_majority,
    keep_oldest,
    static_quorum,
)

ADDRESS = {name: (f"10.0.0.{i + 1}", 7946) for i, name in enumerate("abcdefg")}


def snapshot(up: str, suspect: str = "", down: str = "", left: str = "") -> list[Member]:
    """Members by status; ``a`` is the oldest, then ``b``, and so on."""
    statuses = (
        [(n, Status.UP) for n in up]
        + [(n, Status.SUSPECT) for n in suspect]
        + [(n, Status.DOWN) for n in down]
        + [(n, Status.LEFT) for n in left]
    )
    return [
        Member(n, ADDRESS[n], 1, status, encode_meta(age_meta("abcdefg".index(n))))
        for n, status in statuses
    ]


def state_of(tracker: QuorumTracker) -> str:
    """The state, read through a call so that mypy does not narrow it across inputs."""
    return tracker.state


def gossip(trackers: dict[str, QuorumTracker], now: float, reach: str | None = None) -> None:
    """Deliver every tracker's announcements to the others (only within ``reach``)."""
    for name, tracker in trackers.items():
        for payload in tracker.take_outgoing():
            for other, peer in trackers.items():
                if other != name and (reach is None or {name, other} <= set(reach)):
                    peer.receive(now, payload)


def advance(
    trackers: dict[str, QuorumTracker], start: float, end: float, reach: str | None = None
) -> None:
    """Tick every tracker and deliver heartbeats every half second over [start, end]."""
    for step in range(int((end - start) * 2) + 1):
        now = start + step / 2
        for tracker in trackers.values():
            tracker.tick(now)
        gossip(trackers, now, reach)


def cluster(names: str = "abc", **options: float | bool) -> dict[str, QuorumTracker]:
    trackers = {n: QuorumTracker(n, keep_majority(), **options) for n in names}
    for tracker in trackers.values():
        tracker.observe(0.0, snapshot(names))
    advance(trackers, 0.0, 7.0)
    assert all(state_of(t) == "ok" for t in trackers.values())
    for tracker in trackers.values():
        tracker.take_decisions()
    return trackers


def test_a_fresh_node_serves_at_once_and_confirms_after_stable_after() -> None:
    tracker = QuorumTracker("a", keep_majority())
    tracker.observe(0.0, snapshot("a"))
    assert state_of(tracker) == "pending" and tracker.serving
    assert tracker.next_deadline() == pytest.approx(1.0)  # the next announcement
    tracker.tick(6.9)
    assert state_of(tracker) == "pending"
    tracker.tick(7.0)
    assert state_of(tracker) == "ok" and tracker.next_deadline() == pytest.approx(7.9)
    assert tracker.singleton_host() == "a"
    assert describe(tracker)["quorum"] == "ok"


def test_static_quorum_below_size_is_lost_until_the_quorum_is_stable() -> None:
    tracker = QuorumTracker("a", static_quorum(2))
    tracker.observe(0.0, snapshot("a"))
    assert state_of(tracker) == "lost" and describe(tracker)["quorum"] == "lost"
    tracker.observe(1.0, snapshot("ab"))
    assert state_of(tracker) == "lost"  # gaining waits for a confirmed view
    tracker.receive(2.0, wire.dumps(["b", tracker.digest(), 1, 1]))
    tracker.tick(7.9)
    assert state_of(tracker) == "lost"
    tracker.tick(8.0)
    assert state_of(tracker) == "ok"


def test_majority_waits_for_stability_and_the_takeover_margin_before_downing() -> None:
    trackers = cluster()
    a, b, c = trackers.values()
    for tracker in (a, b):
        tracker.observe(10.0, snapshot("ab", suspect="c"))
    c.observe(10.5, snapshot("c", suspect="ab"))
    assert [d.verdict for d in c.take_decisions()] == [Verdict.STEP_DOWN]
    assert state_of(c) == "lost" and c.phase is Phase.STOPPED
    assert state_of(a) == "pending" and a.singleton_host() == "a"
    advance(trackers, 10.5, 17.0, reach="ab")
    assert a.take_decisions() == [] and state_of(a) == "pending"  # confirmed, not taken over
    assert a.phase is Phase.TAKING_OVER
    takeover = 10.0 + a.silence_limit + a.takeover_margin  # c could serve until 17.0
    assert takeover == pytest.approx(19.0)
    advance(trackers, 17.5, takeover - 0.5, reach="ab")
    a.tick(takeover - 0.01)
    assert a.take_decisions() == [] and a.singleton_host() == "a"
    a.tick(takeover)
    [decision] = a.take_decisions()
    assert decision.verdict is Verdict.CONFIRMED and decision.down == {"c"}
    assert decision.serving and decision.stable and not decision.downed
    assert state_of(a) == "ok" and [m.name for m in a.members] == ["a", "b"]
    assert a.phase is Phase.SERVING


def test_a_side_member_holding_another_view_blocks_confirmation_then_the_limit_stops() -> None:
    """a alone holds c SUSPECT (a one-way report, see test_a_one_way_report_does_not_count)."""
    trackers = cluster()
    a = trackers["a"]
    a.observe(10.0, snapshot("ab", suspect="c"))  # b still believes c is reachable
    advance(trackers, 10.0, 17.0)
    assert state_of(a) == "pending" and not a.converged()
    advance(trackers, 17.5, 22.0)
    assert a.take_decisions() == []
    a.tick(10.0 + 12.25)  # the unstable limit comes before b's disagreement times out
    [decision] = a.take_decisions()
    assert not decision.serving and not decision.downed and "down-all" in decision.reason
    assert state_of(a) == "lost"


@pytest.mark.parametrize("blip", [5.3, 0.9 * 7.0])
def test_a_healed_blip_restarts_the_unstable_clock(blip: float) -> None:
    """c's packets are lost for a while, so a and b hold it SUSPECT, then UP again: nobody
    may stop (issue 13: a and b gave up 12.25 s after the first change, although
    everything had been reachable for 7 s; and c, whose last agreeing heartbeat came a
    second before a and b changed, was fenced by its lease at 0.9 x stable_after)."""
    trackers = cluster()
    a, b, c = trackers.values()
    advance(trackers, 7.5, 19.5)
    for tracker in (a, b):
        tracker.observe(20.0, snapshot("ab", suspect="c"))
    for step in range(int(blip * 2) + 1):  # c hears a and b; nobody hears c
        for tracker in trackers.values():
            tracker.tick(20.0 + step / 2)
        c.take_outgoing()
        gossip(trackers, 20.0 + step / 2)
    for tracker in (a, b):
        tracker.observe(20.0 + blip, snapshot("abc"))
    gossip(trackers, 20.0 + blip)
    advance(trackers, 20.5 + blip, 60.0)
    for tracker in (a, b):  # before the fix: a "down-all" stop at 32.25
        assert [d.verdict for d in tracker.take_decisions()] == [Verdict.CONFIRMED]
        assert state_of(tracker) == "ok"
    # c heard a and b name a side without it from 20.0 on; their first such heartbeat
    # renewed its lease up to their change (20.0), not just to their last agreeing one
    assert c.take_decisions() == [] and state_of(c) == "ok"


def test_changes_keep_pushing_the_decision_back() -> None:
    trackers = cluster("abcde")
    a = trackers["a"]
    a.observe(10.0, snapshot("abcd", suspect="e"))
    a.observe(13.0, snapshot("abc", suspect="de"))
    assert a.serving
    advance(trackers, 10.0, 17.5, reach="abc")
    assert state_of(a) == "pending"
    deadlines = a.next_deadline()
    assert deadlines is not None and deadlines <= 20.0
    a.observe(14.0, snapshot("ab", suspect="cde"))
    assert state_of(a) == "lost"  # a losing view stops at once


def test_a_serving_node_stops_when_a_side_member_falls_silent() -> None:
    trackers = cluster(down_all_when_unstable=False)
    a = trackers["a"]
    advance(trackers, 7.5, 10.0)
    advance(trackers, 10.5, 16.5, reach="ab")  # c's heartbeats stop reaching a; SWIM is slow
    assert state_of(a) == "ok"
    advance(trackers, 17.0, 17.0, reach="ab")
    [decision] = a.take_decisions()
    assert not decision.serving and not decision.downed and "from c" in decision.reason


def test_a_node_still_stopped_when_it_may_be_taken_over_gives_up_its_seniority() -> None:
    """a, the oldest, is cut off and its SWIM is slow: its lease stops it (a ``STOP``,
    which keeps its seniority); b and c could take it over from 10.0 + 7 + 2 = 19.0 on.
    Still stopped ``takeover_margin`` after its stop and hearing nobody, it gives up its
    seniority then, so that it never comes back as the host of a side that re-created
    its singletons meanwhile."""
    trackers = cluster(down_all_when_unstable=False)
    a = trackers["a"]
    advance(trackers, 7.5, 10.0)
    advance(trackers, 10.5, 17.0, reach="bc")
    [stop] = a.take_decisions()
    assert stop.verdict is Verdict.STOP and not stop.downed and "no agreeing" in stop.reason
    a.tick(18.99)
    assert a.take_decisions() == []
    a.tick(19.0)
    [renounce] = a.take_decisions()
    assert renounce.verdict is Verdict.STEP_DOWN and renounce.downed
    assert not renounce.serving and "minority: 1 of 3" in renounce.reason
    a.tick(30.0)
    assert a.take_decisions() == []  # once


def test_a_node_stopped_on_a_lease_keeps_its_seniority_while_those_it_hears_win() -> None:
    """keep-oldest, a and b cut from c: the oldest's side wins, so a keeps its
    seniority (giving it up would hand the win to the other side); c, alone, gives up
    its own (it would anyway once its SWIM shows it the cut)."""
    trackers = {n: QuorumTracker(n, keep_oldest(), down_all_when_unstable=False) for n in "abc"}
    for tracker in trackers.values():
        tracker.observe(0.0, snapshot("abc"))
    advance(trackers, 0.0, 10.0)
    assert all(state_of(t) == "ok" for t in trackers.values())
    for tracker in trackers.values():
        tracker.take_decisions()
    advance(trackers, 10.5, 25.0, reach="ab")  # SWIM shows nobody the cut
    a, c = trackers["a"], trackers["c"]
    assert [d.verdict for d in a.take_decisions()] == [Verdict.STOP]
    assert [d.verdict for d in c.take_decisions()] == [Verdict.STOP, Verdict.STEP_DOWN]


def test_a_lost_node_regains_only_on_a_stable_converged_view() -> None:
    trackers = cluster()
    c = trackers["c"]
    c.observe(10.0, snapshot("c", down="ab"))
    assert state_of(c) == "lost"
    c.observe(40.0, snapshot("abc"))
    assert state_of(c) == "lost"
    c.tick(47.0)
    assert state_of(c) == "lost"  # a and b have not announced this view since
    for name in "ab":
        c.receive(47.5, wire.dumps([name, c.digest(), "abc".index(name), 99]))
    assert state_of(c) == "ok"


def test_leavers_go_at_once_and_joiners_wait_for_a_clean_view() -> None:
    trackers = cluster()
    a = trackers["a"]
    a.observe(10.0, snapshot("ab", left="c"))
    assert [m.name for m in a.members] == ["a", "b"] and state_of(a) == "pending"
    a.observe(11.0, snapshot("abd", suspect="", down="") + snapshot("", suspect="c"))
    assert "d" in {m.name for m in a.members}
    a.observe(12.0, snapshot("ad", suspect="b") + snapshot("e"))
    assert "e" not in {m.name for m in a.members}  # b is unreachable: no recruiting now


def test_bad_announcements_are_counted_and_dropped() -> None:
    trackers = cluster()
    a = trackers["a"]
    for payload in (
        b"",
        b"\xff\x00",
        wire.dumps(["b", b"short", 1, 1]),
        wire.dumps([1, b"12345678", 1, 1]),
        wire.dumps({"b": 1}),
        wire.dumps(["b", b"12345678", True, 1]),
        wire.dumps(["b", b"12345678", 1]),
        wire.dumps(["b", b"12345678", 1, 1, -5]),  # a negative age
        wire.dumps(["b", b"12345678", 1, 1, 1.5]),
        wire.dumps(["b", b"12345678", 1, 1, 0, 0]),
    ):
        a.receive(1.0, payload)
    assert a.counters["rejected_announcements"] == 10 and state_of(a) == "ok"


def test_only_the_first_heartbeat_of_another_view_renews_up_to_the_change() -> None:
    """The renewal up to the sender's change needs the heartbeat right before it (the
    serial before) to have agreed; after a lost one, the lease runs from the last
    agreeing heartbeat, as before."""
    for lost_first in (False, True):
        trackers = cluster(down_all_when_unstable=False)
        a, c = trackers["a"], trackers["c"]
        advance(trackers, 7.5, 9.5)
        c.tick(10.0)
        gossip(trackers, 10.0)  # c's last agreeing heartbeat, at 10.0
        c.observe(12.0, snapshot("bc", suspect="a"))  # c changes at 12.0 and says so
        if lost_first:
            c.take_outgoing()
        gossip(trackers, 12.0)
        advance(trackers, 12.5, 16.5)
        a.tick(17.0)
        stopped = [d for d in a.take_decisions() if not d.serving]
        assert bool(stopped) is lost_first  # lost: lease from 10.0; else from 12.0
        a.tick(19.0)
        assert state_of(a) == "lost"


def test_a_stale_announcement_does_not_replace_a_newer_one() -> None:
    trackers = cluster()
    a = trackers["a"]
    a.receive(1.0, wire.dumps(["b", b"newer!!!", 1, 10]))
    a.receive(2.0, wire.dumps(["b", a.digest(), 1, 3]))
    a.observe(3.0, snapshot("ab", suspect="c"))
    assert not a.converged()
    a.receive(4.0, wire.dumps(["b", a.digest(), 2, 1]))  # b restarted: a later start time
    assert a.converged()
    restarted = [
        attrs.evolve(m, meta=encode_meta(age_meta(2))) if m.name == "b" else m
        for m in snapshot("ab", suspect="c")
    ]
    a.observe(4.2, restarted)  # its new start time arrives
    a.receive(4.5, wire.dumps(["b", b"oldlife!", 1, 99]))  # a late copy from b's last life
    assert a.converged() and a.counters["announcements_past_epoch"] == 1


def test_tracker_refuses_bad_configuration_and_views_without_itself() -> None:
    for options in (
        {"stable_after": 0.0},
        {"down_all_when_unstable": -1.0},
        {"takeover_margin": float("nan")},
    ):
        with pytest.raises(QuorumConfigError):
            QuorumTracker("a", keep_majority(), **options)
    with pytest.raises(ValueError, match="include this node"):
        QuorumTracker("a", keep_majority()).observe(0.0, snapshot("b"))


def test_takeover_is_timed_from_when_each_downed_member_was_last_reachable() -> None:
    trackers = cluster("abcde")
    a, b, c = trackers["a"], trackers["b"], trackers["c"]
    for tracker in (a, b, c):
        tracker.observe(10.0, snapshot("abcd", suspect="e"))
        tracker.observe(12.0, snapshot("abc", suspect="de"))
    advance(trackers, 12.5, 19.0, reach="abc")
    takeover = 12.0 + 7.0 + 2.0  # d was reachable until 12.0
    advance(trackers, 19.5, takeover - 0.5, reach="abc")
    a.tick(takeover - 0.01)
    assert a.take_decisions() == []
    a.tick(takeover)
    [decision] = a.take_decisions()
    assert decision.down == {"d", "e"} and state_of(a) == "ok"


def test_reports_given_by_the_driver_stop_the_node_they_leave_out_at_once() -> None:
    trackers = cluster("abcde", down_all_when_unstable=False)
    for name, tracker in trackers.items():
        tracker.observe(10.0, snapshot("abcde"), reports=[("d", "e"), ("e", "d")])
        assert state_of(tracker) == ("lost" if name == "e" else "pending")  # e: the youngest
    advance(trackers, 10.5, 19.0)
    a = trackers["a"]
    assert [d.down for d in a.take_decisions()] == [{"e"}]
    assert trackers["e"].take_decisions()[0].downed


def mutual_cut(names: str, cut: str, others: str = "") -> dict[str, list[Member]]:
    """Snapshots where the members of ``cut`` hold each other SUSPECT (each still reaches
    everyone else), so the announcements carry mutual reports."""
    return {
        name: snapshot(
            "".join(n for n in names if n == name or name not in cut or n not in cut),
            suspect="".join(n for n in cut if name in cut and n != name),
        )
        for name in names
    }


@pytest.mark.parametrize(
    ("names", "cut", "kept"),
    [("abc", "ab", "ac"), ("abcde", "abc", "ade")],  # Akka keeps c; d and e
)
def test_mutually_cut_members_are_told_apart_and_the_youngest_downed(
    names: str, cut: str, kept: str
) -> None:
    """{(A,B),C} and {(A,B,C),D,E}: every node learns the reports from the announcements
    (relayed, so a hears b's through c), counts the same side, keeps the most members
    (sparing the oldest), and the rest are fenced: stopped ``stable_after`` after they
    were left out, before the others take over from them."""
    trackers = cluster(names)
    for name, members in mutual_cut(names, cut).items():
        trackers[name].observe(10.0, members)
    advance(trackers, 10.0, 40.0)
    left_out = set(names) - set(kept)
    for name, tracker in trackers.items():
        decisions = tracker.take_decisions()
        if name in left_out:
            [stop] = decisions
            assert stop.verdict is Verdict.STEP_DOWN and "left out" in stop.reason
            assert 10.0 + 7.0 <= stop.time <= 10.5 + 7.0
        else:
            [takeover] = decisions
            assert takeover.verdict is Verdict.CONFIRMED and takeover.down == left_out
            assert takeover.time >= 10.0 + 7.0 + 2.0  # after the fence, with the margin
            assert state_of(tracker) == "ok" and tracker.singleton_host() == "a"


def test_a_downed_member_still_reachable_rejoins_once_its_links_heal() -> None:
    trackers = cluster()
    for name, members in mutual_cut("abc", "ab").items():
        trackers[name].observe(10.0, members)
    advance(trackers, 10.0, 25.0)
    c = trackers["c"]
    assert [m.name for m in c.members] == ["a", "c"]
    advance(trackers, 25.5, 30.0)
    assert [m.name for m in c.members] == ["a", "c"]  # b is UP here, but a and b still cut
    for tracker in trackers.values():
        tracker.observe(30.0, snapshot("abc"))
    advance(trackers, 30.0, 60.0)
    for tracker in trackers.values():
        assert [m.name for m in tracker.members] == ["a", "b", "c"]
        assert state_of(tracker) == "ok"


def test_a_cut_shorter_than_stable_after_stops_nobody() -> None:
    """The fence is lifted when the reports go: a and b could not reach each other for
    6.3 s (0.9 x stable_after)."""
    trackers = cluster()
    for name, members in mutual_cut("abc", "ab").items():
        trackers[name].observe(10.0, members)
    advance(trackers, 10.0, 16.0)
    for tracker in trackers.values():
        tracker.observe(16.3, snapshot("abc"))
    advance(trackers, 16.5, 40.0)
    for tracker in trackers.values():
        assert all(d.serving for d in tracker.take_decisions())
        assert state_of(tracker) == "ok"


def test_a_one_way_report_does_not_count() -> None:
    """A stale view (b still holds c DOWN after a heal, c reaches b) downs nobody."""
    trackers = cluster()
    a, b, c = trackers.values()
    b.observe(10.0, snapshot("ab", down="c"))
    advance(trackers, 10.0, 12.0)
    assert a.view().mutual == frozenset() and a.view().kept == {"a", "b", "c"}
    assert c.view().kept == {"a", "b", "c"}


def test_announcements_list_the_unreachable_within_a_budget() -> None:
    names = [f"member-{i:03}" for i in range(100)]
    tracker = QuorumTracker("me", keep_majority())
    me = Member("me", ("10.0.0.2", 1), 1, Status.UP)
    members = [Member(n, ("10.0.0.1", 7000 + i), 1, Status.UP) for i, n in enumerate(names)]
    tracker.observe(0.0, [me, *members])
    tracker.observe(1.0, [me, *(attrs.evolve(m, status=Status.DOWN) for m in members)])
    payload = wire.loads(tracker.take_outgoing()[-1])
    assert payload[-1] == names[: len(payload[-1])] and 30 <= len(payload[-1]) < 64
    other = QuorumTracker("member-000", keep_majority())
    other.observe(0.0, [Member("me", ("10.0.0.2", 1), 1, Status.UP), *members[:1]])
    other.receive(1.0, wire.dumps(["me", b"12345678", 1, 2, 0, names]))  # too many names
    assert other.counters["rejected_announcements"] == 1


@given(
    st.one_of(
        st.binary(max_size=64),
        st.lists(
            st.one_of(
                st.text(max_size=3), st.binary(max_size=9), st.integers(), st.booleans(), st.none()
            ),
            max_size=5,
        ).map(wire.dumps),
    )
)
def test_any_bytes_on_the_channel_are_counted_or_taken_never_raised(payload: bytes) -> None:
    tracker = QuorumTracker("a", keep_majority())
    tracker.observe(0.0, snapshot("ab"))
    tracker.receive(1.0, payload)
    counted = (
        tracker.counters["rejected_announcements"] + tracker.counters["announcements_received"]
    )
    assert counted == 1 and state_of(tracker) == "pending"


def test_a_trackers_announcement_is_accepted_by_its_peer() -> None:
    trackers = cluster()
    a, b = trackers["a"], trackers["b"]
    a.observe(10.0, snapshot("ab", suspect="c"))
    b.observe(10.0, snapshot("ab", suspect="c"))
    b.receive(10.5, a.take_outgoing()[-1])
    a.receive(10.6, b.take_outgoing()[-1])
    assert b.counters["rejected_announcements"] == a.counters["rejected_announcements"] == 0
    assert a.converged() and b.converged()


def test_heartbeats_naming_another_side_do_not_renew_the_lease() -> None:
    """One-way cut: c stops hearing a (and says so), a still hears c."""
    trackers = cluster(down_all_when_unstable=False)
    a, c = trackers["a"], trackers["c"]
    advance(trackers, 7.5, 10.0)
    c.observe(10.0, snapshot("bc", suspect="a"))
    advance(trackers, 10.5, 17.0)
    # c agreed until its change; the heartbeat saying so (age 0) arrived at 10.5
    assert state_of(a) == "ok"
    advance(trackers, 17.5, 17.5)
    [decision] = a.take_decisions()
    assert not decision.serving and "from c" in decision.reason


def test_a_heartbeat_naming_a_view_this_node_held_lately_renews_the_lease() -> None:
    """d leaves a's membership at 10.0; b and c lag behind and still announce the view a
    held until then.  Their heartbeats renew a's lease for silence_limit (7 s) after a
    left that view, not longer: a stops 7 s after the last of them that could (17.0 ->
    24.0).  Without the rule the lease would run from the last agreeing heartbeat (10.0
    -> 17.0)."""
    trackers = cluster("abcd", down_all_when_unstable=False)
    a = trackers["a"]
    advance(trackers, 7.5, 10.0)
    a.observe(10.0, snapshot("abc", left="d"))  # b, c never see the change
    advance(trackers, 10.5, 23.5, reach="abc")
    assert a.serving and not [d for d in a.take_decisions() if not d.serving]
    advance(trackers, 24.0, 24.0, reach="abc")
    [stop] = a.take_decisions()
    assert not stop.serving and "from b, c" in stop.reason


def test_a_heartbeat_whose_plain_side_holds_this_node_renews_the_lease() -> None:
    """The first end of a mutual cut: b's probe of a fails, so b announces the side
    b-e with a reported, while c, d and e still hold a-e (a one-way report moves nobody)
    and a has not found the cut yet.  b counts c, d and e fully connected, so their
    leases on b hold for as long as it says so (before: they all stopped 7 s after b's
    change, the race in docs/split-brain.md); a's lease on b, which reports a, runs out."""
    trackers = cluster("abcde", down_all_when_unstable=False)
    b = trackers["b"]
    advance(trackers, 7.5, 10.0)
    b.observe(10.0, snapshot("abcde"), unreached="a")
    assert wire.loads(b.take_outgoing()[-1])[-1] == ["a"]
    advance(trackers, 10.5, 40.0)
    for name in "cde":
        assert trackers[name].serving, name
        assert not [d for d in trackers[name].take_decisions() if not d.serving], name
    stops = [d for d in trackers["a"].take_decisions() if not d.serving]
    assert stops and stops[0].time <= 17.5 and "from b" in stops[0].reason


@pytest.mark.parametrize("budget", [512, 3])
def test_a_report_list_cut_by_the_budget_renews_no_lease(budget: int) -> None:
    """b does not reach a or c.  Listed in full, its side (b, d, e) is the one d counts
    from the list, which holds d: d's lease on b holds.  Cut by a budget with room for
    one name, the list says b-e, not the side b announces, so it renews nothing (b may
    count d in, but a cut list cannot prove it) and d stops on its lease on b."""
    trackers = cluster("abcde", down_all_when_unstable=False)
    b, d = trackers["b"], trackers["d"]
    b.report_budget = budget
    advance(trackers, 7.5, 10.0)
    b.observe(10.0, snapshot("abcde"), unreached="ac")
    assert len(wire.loads(b.take_outgoing()[-1])[-1]) == (2 if budget == 512 else 1)
    advance(trackers, 10.5, 25.0)
    stops = [x for x in d.take_decisions() if not x.serving]
    if budget == 512:
        assert not stops
    else:
        assert stops and stops[0].reason == "no agreeing heartbeat from b for 7.0 s"


def test_own_probes_decide_reachability_not_anyones_suspicion() -> None:
    """With ``unreached`` (the core's own probe verdicts), a member SUSPECT on another's
    word counts as reachable while its heartbeats arrive (no change, no step-down) and
    not once they stop for HEARD_WITHIN (2.5 s); one this node's own probe failed is
    unreachable and announced as such, even when it is no longer a member here."""
    trackers = cluster("abc")
    a = trackers["a"]
    advance(trackers, 7.5, 10.0)
    a.observe(10.0, snapshot("ab", suspect="c"), unreached=())
    advance(trackers, 10.5, 12.0)
    assert state_of(a) == "ok" and not a.take_decisions()
    advance(trackers, 12.5, 13.5, reach="ab")  # c's last heartbeat: at 11.5 or 12.0
    assert "c" in a.view().reachable
    advance(trackers, 15.0, 15.0, reach="ab")
    assert "c" not in a.view().reachable and state_of(a) == "pending"
    b = trackers["b"]
    b.observe(16.0, snapshot("abc"), unreached="c")
    assert "c" not in b.view().reachable
    assert wire.loads(b.take_outgoing()[-1])[-1] == ["c"]
    b.observe(17.0, snapshot("ab"), unreached="cd")  # d: not (or no longer) a member here
    assert wire.loads(b.take_outgoing()[-1])[-1] == ["c", "d"]


def test_an_announcement_with_nothing_to_report_has_the_older_five_fields() -> None:
    """Nodes from before the reports accept at most five fields: while a node reaches
    everyone its heartbeats keep that form, so their leases on it hold in a rolling
    upgrade; the sixth field, the unreachable names, comes only with something to
    report, and a later five-field announcement withdraws the report."""
    trackers = cluster("abc")
    a, b = trackers["a"], trackers["b"]
    b.tick(8.0)
    assert len(wire.loads(b.take_outgoing()[-1])) == 5
    b.observe(8.5, snapshot("abc"), unreached="c")
    reporting = b.take_outgoing()[-1]
    assert wire.loads(reporting)[5:] == [["c"]]
    a.receive(8.5, reporting)
    assert ("b", "c") in a.view().observations
    b.observe(9.5, snapshot("abc"), unreached="")
    healed = b.take_outgoing()[-1]
    assert len(wire.loads(healed)) == 5
    a.receive(9.5, healed)
    assert ("b", "c") not in a.view().observations


def test_the_reachability_of_an_indirectly_connected_member_is_no_change() -> None:
    """d and e cannot reach each other; c's own probes of d fail now and then (d is
    on c's side either way, indirectly connected), so c confirms 7 s after the cut was
    known and takes e over at 10 + 7 + 2 = 19 s, not 7 s after d's last flap."""
    trackers = cluster("abcde")
    c = trackers["c"]
    for name, tracker in trackers.items():
        tracker.observe(10.0, snapshot("abcde"), unreached={"d": "e", "e": "d"}.get(name, ""))
    advance(trackers, 10.0, 12.0)
    assert c.view().indirect == {"d", "e"}
    for step in range(5):
        c.observe(12.5 + step, snapshot("abcde"), unreached="d" if step % 2 == 0 else "")
        advance(trackers, 13.0 + step, 13.0 + step)
    advance(trackers, 17.5, 20.0)
    [decision] = c.take_decisions()
    assert decision.verdict is Verdict.CONFIRMED and decision.down == {"e"}
    assert decision.time == 19.0
