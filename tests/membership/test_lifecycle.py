"""Mechanisms 7 and 8: graceful leave, reaping, restarts (higher incarnation or new
address), name conflicts, partitions outlasting the gossip-to-the-dead time, and the
cluster label."""

from __future__ import annotations

import pytest

from swimactors.membership import (
    Config,
    Member,
    MemberConflict,
    MemberLeft,
    MemberUp,
    Packet,
    Status,
)
from swimactors.membership.messages import (
    Alive,
    Dead,
    LabelMismatch,
    Left,
    Ping,
    PushPull,
    decode_packet,
)
from swimactors.membership.meta import REAP_KEY, encode_meta
from swimactors.membership.types import Address

from .loop import Loop
from .util import HOME, acking, add_peers, addr, deliver, make_core, member, messages, run, sent

UP, DOWN, LEFT = Status.UP, Status.DOWN, Status.LEFT


def converged(n: int, seed: int = 0, config: Config | None = None) -> Loop:
    loop = Loop(config or Config.lan(), seed=seed)
    for i in range(n):
        loop.add(f"n{i}")
    names = {f"n{i}" for i in range(n)}
    loop.run_until(30.0, until=lambda: all(v == names for v in loop.views(UP).values()))
    assert all(v == names for v in loop.views(UP).values())
    return loop


# -- graceful leave ------------------------------------------------------------------------


def test_a_leaving_node_spreads_left_and_finishes() -> None:
    loop = converged(5, seed=2)
    leaver = loop.by_name("n2")
    leaver.leave(loop.now)
    assert not leaver.leave_finished
    assert member(leaver, "n2").status is LEFT
    loop.run_until(loop.now + 10.0, until=lambda: leaver.leave_finished)
    assert leaver.leave_finished
    loop.stop("n2")
    loop.run_until(loop.now + 2.0)
    assert loop.all_see("n2", LEFT)
    lefts = [(name, e) for name, e in loop.events if isinstance(e, MemberLeft)]
    assert sorted(name for name, _ in lefts) == ["n0", "n1", "n3", "n4"]
    loop.run_until(loop.now + 60.0)  # LEFT is final: nobody suspects or downs it
    assert loop.all_see("n2", LEFT)


def test_a_leaving_node_stops_probing_and_does_not_refute_its_leave() -> None:
    core = make_core()
    add_peers(core, 3)
    run(core, 5.0, acking())
    core.leave(5.0)
    log = run(core, 30.0)
    assert not [m for _, p in log for m in p.of(Ping)]
    assert Left("n0", 0) in messages([p for _, p in log], Left)
    deliver(core, 30.0, "p1", Left("n0", 0))
    deliver(core, 30.0, "p1", Dead("n0", 0, "p1"))
    assert core.incarnation == 0 and member(core, "n0").status is LEFT
    assert core.leave_finished


def test_leave_with_nobody_to_tell_is_finished_at_once() -> None:
    core = make_core()
    core.leave(0.0)
    assert core.leave_finished


# -- reaping -------------------------------------------------------------------------------


@pytest.mark.parametrize("gone", [Dead("p1", 1, "p2"), Left("p1", 1)])
def test_down_and_left_members_are_reaped_after_reap_time(gone: Dead | Left) -> None:
    config = Config.lan().replace(reap_time=100.0, reconnect_interval=10.0)
    core = make_core(config=config)
    add_peers(core, 2)
    deliver(core, 1.0, "p2", gone)
    respond = acking(lambda name: name != "p1")
    run(core, 100.0, respond)
    assert core.member("p1") is not None
    run(core, 101.0 + 2 * config.reconnect_interval, respond)
    assert core.member("p1") is None
    assert member(core, "p2").status is UP


@pytest.mark.parametrize(
    ("announced", "forgotten_after"),
    [("0", 2 * 5.0), ("20", 20.0), ("1000", 100.0), ("soon", 100.0)],
)
def test_a_member_announcing_a_short_reap_is_forgotten_sooner(
    announced: str, forgotten_after: float
) -> None:
    """A client announces its own reap time in its metadata; peers keep its record at
    least two push/pull periods (so no exchange brings it back) and at most reap_time."""
    config = Config.lan().replace(reap_time=100.0, reconnect_interval=1.0, push_pull_interval=5.0)
    core = make_core(config=config)
    add_peers(core, 2)
    meta = encode_meta({REAP_KEY: announced})
    deliver(core, 0.5, "p3", Alive("p3", addr(3), 1, meta))
    deliver(core, 1.0, "p3", Left("p3", 1))
    respond = acking(lambda name: name != "p3")
    run(core, 1.0 + forgotten_after - 0.5, respond)
    assert member(core, "p3").status is LEFT
    run(core, 1.0 + forgotten_after + 2 * config.reconnect_interval, respond)
    assert core.member("p3") is None
    assert member(core, "p2").status is UP


# -- restarts ------------------------------------------------------------------------------


@pytest.mark.parametrize("new_address", [False, True])
def test_a_crashed_node_restarts_with_a_fresh_state_and_rejoins(new_address: bool) -> None:
    loop = converged(6, seed=5)
    loop.stop("n4")
    loop.run_until(loop.now + 60.0, until=lambda: loop.all_see("n4", DOWN))
    assert loop.all_see("n4", DOWN)
    down_at = member(loop.by_name("n0"), "n4").incarnation
    reborn = loop.restart("n4", incarnation=0, new_address=new_address)

    def reborn_everywhere() -> bool:
        return all(
            (seen := core.member("n4")) is not None
            and seen.status is UP
            and seen.incarnation == reborn.incarnation
            for core in loop.cores.values()
        )

    loop.run_until(loop.now + 30.0, until=reborn_everywhere)
    assert loop.all_see("n4", UP)
    for core in loop.cores.values():
        seen = member(core, "n4")
        assert seen.address == reborn.address
        assert seen.incarnation == reborn.incarnation > down_at  # it refuted its death
    ups = [e for name, e in loop.events if isinstance(e, MemberUp) and e.member.name == "n4"]
    assert ups and all(e.member.address == reborn.address for e in ups[-5:])


def test_a_restart_before_anyone_noticed_outbids_its_old_life() -> None:
    loop = converged(4, seed=6)
    old = loop.by_name("n3")
    old.set_meta(b"v1", loop.now)  # incarnation 1 is known everywhere
    loop.run_until(loop.now + 5.0)
    loop.stop("n3")
    reborn = loop.restart("n3", incarnation=0)
    loop.run_until(loop.now + 20.0)
    assert reborn.incarnation > 1
    assert all(member(c, "n3").incarnation == reborn.incarnation for c in loop.cores.values())
    assert all(member(c, "n3").meta == b"" for c in loop.cores.values())
    assert loop.all_see("n3", UP)


# -- conflicts -----------------------------------------------------------------------------


def test_a_live_members_name_claimed_from_another_address_is_refused() -> None:
    core = make_core()
    add_peers(core, 2)
    core.take_events()
    deliver(core, 1.0, "p2", Alive("p1", addr(9), 7))
    assert member(core, "p1") == Member("p1", addr(1), 1, UP)
    (event,) = core.take_events()
    assert isinstance(event, MemberConflict)
    assert event.member == member(core, "p1") and event.other == addr(9) and event.time == 1.0
    assert core.counters["name_conflicts"] == 1
    spread = messages([p for _, p in run(core, 5.0)], Alive)
    assert Alive("p1", addr(9), 7) not in spread  # the claim is not passed on


def test_our_own_name_claimed_from_another_address_is_reported_and_refuted() -> None:
    core = make_core()
    add_peers(core, 1)
    core.take_events()
    deliver(core, 1.0, "p1", Alive("n0", addr(9), 3))
    (event,) = core.take_events()
    assert isinstance(event, MemberConflict) and event.other == addr(9)
    assert member(core, "n0").address == HOME
    assert core.incarnation == 4  # our own Alive outbids the impostor's
    assert Alive("n0", HOME, 4) in messages([p for _, p in run(core, 3.0)], Alive)


def test_a_packet_claiming_to_come_from_us_is_dropped() -> None:
    core = make_core()
    deliver(core, 0.0, "n0", Ping(1, "n0"), source=addr(9))
    assert sent(core) == [] and core.counters["rejected_own_name"] == 1


# -- partitions ----------------------------------------------------------------------------


def test_a_partition_longer_than_gossip_to_the_dead_time_heals() -> None:
    config = Config.lan()
    loop = converged(6, seed=7, config=config)
    left = {a for a, c in loop.cores.items() if c.name in {"n0", "n1", "n2"}}

    def cut(src: Address, packet: Packet) -> bool:
        return (src in left) != (packet.destination in left)

    loop.drop = cut
    split = loop.now
    outlast = config.gossip_to_the_dead_time + config.suspicion_timeouts(6)[1] + 20.0
    loop.run_until(split + outlast)
    views = loop.views(DOWN)
    assert views["n0"] == {"n3", "n4", "n5"} and views["n5"] == {"n0", "n1", "n2"}
    loop.drop = lambda src, packet: False
    healed = loop.run_until(
        loop.now + 4 * config.reconnect_interval,
        until=lambda: all(len(v) == 6 for v in loop.views(UP).values()),
    )
    assert all(len(v) == 6 for v in loop.views(UP).values()), loop.views(UP)
    assert healed - (split + outlast) <= 2 * config.reconnect_interval


# -- cluster label -------------------------------------------------------------------------


def test_packets_from_another_cluster_are_dropped_and_counted() -> None:
    core = make_core(config=Config.lan().replace(label="blue"))
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1), label="red")
    deliver(core, 0.0, "p2", Alive("p2", addr(2), 1))  # no label at all
    assert [m.name for m in core.members()] == ["n0"]
    assert core.counters["rejected_label"] == 2
    deliver(core, 0.0, "p3", Alive("p3", addr(3), 1), label="blue")
    assert member(core, "p3").status is UP


def test_outgoing_packets_carry_the_label() -> None:
    core = make_core(config=Config.lan().replace(label="blue"))
    core.join([addr(1)], 0.0)
    (p,) = core.take_outgoing()
    assert decode_packet(p.data, "blue").sender == "n0"
    with pytest.raises(LabelMismatch):
        decode_packet(p.data, "")


def test_two_clusters_with_different_labels_never_merge() -> None:
    loop = Loop(Config.lan().replace(label="a"), seed=8)
    a = loop.add("a0")
    loop.add("a1")
    loop.config = Config.lan().replace(label="b")
    loop.add("b0", seeds=2)  # seeds a0 and a1, but speaks another label
    loop.run_until(60.0)
    assert {m.name for m in a.members()} == {"a0", "a1"}
    assert {m.name for m in loop.by_name("b0").members()} == {"b0"}
    assert a.counters["rejected_label"] > 0


def test_leaving_while_a_join_retry_is_pending_does_not_stall_the_deadline() -> None:
    """A node whose seeds never answered shuts down: its deadline must stay in the future,
    or a driver would spin on tick()."""
    core = make_core()
    core.join([addr(1)], now=0.0)
    core.leave(0.5)
    core.join([addr(2)], now=0.6)  # a late join call while leaving changes nothing
    for now in (1.0, 2.0, 5.0):
        core.tick(now)
        deadline = core.next_deadline()
        assert deadline is not None and deadline > now


def test_a_restart_at_a_new_address_before_detection_wins_once_the_old_one_is_down() -> None:
    """The old address still holds the name (a conflict: refused) until it is declared
    DOWN; then the new incarnation at the new address takes over everywhere."""
    config = Config.lan()
    loop = converged(6, seed=11)
    old_address = loop.by_name("n4").address
    loop.stop("n4")
    reborn = loop.restart("n4", new_address=True)
    loop.run_until(loop.now + 5.0)
    conflicts = {(name, e.other) for name, e in loop.events if isinstance(e, MemberConflict)}
    # the others refuse the new address; the newcomer hears of its old life's address
    assert ("n0", reborn.address) in conflicts and ("n4", old_address) in conflicts
    assert all(other == (old_address if name == "n4" else reborn.address)
               for name, other in conflicts)  # fmt: skip
    bound = config.suspicion_timeouts(6)[1] + 2 * config.push_pull_interval + 10.0
    loop.run_until(loop.now + bound, until=lambda: loop.all_see("n4", UP) and all(
        member(c, "n4").address == reborn.address for c in loop.cores.values()))  # fmt: skip
    assert all(member(c, "n4").address == reborn.address for c in loop.cores.values())
    assert loop.all_see("n4", UP)


def test_reconnect_pushes_to_down_members_but_never_to_left_ones() -> None:
    config = Config.lan().replace(reconnect_interval=10.0)
    core = make_core(config=config)
    add_peers(core, 3)
    deliver(core, 0.0, "p2", Dead("p1", 1, "p2"))
    deliver(core, 0.0, "p3", Left("p3", 1))
    log = run(core, 100.0, acking(lambda name: name == "p2"))
    pushes = [(t, p.destination) for t, p in log for m in p.of(PushPull)]
    to_down = [t for t, d in pushes if d == addr(1)]
    assert len(to_down) >= 8  # one DOWN member: re-contacted every reconnect interval
    assert not [t for t, d in pushes if d == addr(3)]


def test_set_meta_while_leaving_does_not_undo_the_leave() -> None:
    """An Alive at a higher incarnation beats Left: announcing new metadata after leave()
    would bring the node back to life in every view."""
    core = make_core()
    add_peers(core, 3)
    core.leave(1.0)
    core.set_meta(b"draining", 1.1)
    log = run(core, 10.0)
    assert Left("n0", 0) in messages([p for _, p in log], Left)
    assert not [m for m in messages([p for _, p in log], Alive) if m.name == "n0"]
    assert member(core, "n0").status is LEFT and core.leave_finished


def test_leave_twice_is_harmless() -> None:
    core = make_core()
    add_peers(core, 1)
    core.leave(1.0)
    first = sent(core)
    core.leave(2.0)
    assert sent(core) == [] and first
