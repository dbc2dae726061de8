"""Forged protocol values an outsider can send to a plaintext cluster: no value it picks
keeps a member's real news out for good (issue 12, "protocol values that cannot be
weaponised").  Sans-IO: the protocol cores with explicit time."""

from __future__ import annotations

from swimactors import wire
from swimactors.quorum import QuorumTracker, Verdict
from swimactors.quorum.tracker import MAX_STAMP
from tests.quorum.test_tracker import advance, cluster, snapshot


def forged_announcement(name: str, digest: bytes, epoch: int, serial: int) -> bytes:
    return wire.dumps([name, digest, epoch, serial, 0, []])


def stops(tracker: QuorumTracker) -> list[str]:
    return [d.reason for d in tracker.take_decisions() if d.verdict is not Verdict.CONFIRMED]


def test_a_forged_serial_does_not_hide_a_member_s_real_announcements() -> None:
    """One forged announcement for b at the largest serial (or a later epoch) made every
    node ignore b's real heartbeats until b restarted: their leases on b ran out and the
    whole cluster stopped serving for good.  Now an epoch or serial past the maximum is
    dropped and counted, and one within it holds b's news back for half a lease at most:
    nobody stops, and b's later view counts."""
    trackers = cluster("abc")
    a, b, c = trackers.values()
    for tracker in (a, c):
        digest = tracker.digest()
        tracker.receive(7.2, forged_announcement("b", digest, 1, 2**63 - 1))
        tracker.receive(7.2, forged_announcement("b", digest, 2**62, 1))
        assert tracker.counters["rejected_announcements"] == 2
        tracker.receive(7.2, forged_announcement("b", digest, MAX_STAMP, MAX_STAMP))
    advance(trackers, 7.5, 30.0)
    assert [t.state for t in trackers.values()] == ["ok", "ok", "ok"]
    assert stops(a) == stops(c) == []
    assert a.counters["announcement_order_reset"] == 1
    # b's own news counts again: a change it announces is heard
    b.observe(30.5, snapshot("ab", suspect="c"))
    advance(trackers, 30.5, 31.0)
    assert a._seen["b"][0] == b.digest() != c.digest()
