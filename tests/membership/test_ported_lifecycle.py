"""Scenarios other SWIM implementations' own suites assert, run against our core: news
about members nobody knows, a ping-req naming its own helper, leaving then rejoining
under the same name, cluster labels refused in both directions, joining through seeds
that are malformed or never answer, and keyring edge cases."""

from __future__ import annotations

import pytest

from swimactors.membership import Config, Status
from swimactors.membership.messages import (
    Ack,
    Alive,
    Dead,
    Left,
    Nack,
    Ping,
    PingReq,
    PushPull,
    Suspect,
)
from swimactors.security.keyring import MAX_KEYS, Keyring, KeyringError, generate_key

from .loop import Loop
from .util import HOME, add_peers, addr, deliver, make_core, member, messages, run, sent

UP, LEFT = Status.UP, Status.LEFT


# -- news about members ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "news", [Suspect("ghost", 3, "p1"), Dead("ghost", 3, "p1"), Left("ghost", 3)]
)
def test_news_of_the_failure_of_an_unknown_member_is_ignored(
    news: Suspect | Dead | Left,
) -> None:
    core = make_core()
    add_peers(core, 3)
    core.take_events()
    deliver(core, 1.0, "p1", news)
    assert core.member("ghost") is None and core.take_events() == []
    spread = [m for _, p in run(core, 5.0) for m in p.messages]
    assert not [m for m in spread if getattr(m, "name", None) == "ghost"]
    deliver(core, 6.0, "p2", Alive("ghost", addr(9), 1))  # it was never held DOWN or LEFT
    assert member(core, "ghost").status is UP


def test_a_ping_req_naming_us_as_its_target_is_acked_directly() -> None:
    """We are the member asked about, and alive: the requester hears so at once, not a
    nack after our ping to ourselves goes unanswered."""
    core = make_core()
    add_peers(core, 3)
    sent(core)
    deliver(core, 1.0, "p1", PingReq(5, "n0", HOME))
    out = sent(core)
    assert [(p.destination, p.of(Ack)) for p in out] == [(addr(1), [Ack(5)])]
    assert not messages(out, Ping)
    assert not messages([p for _, p in run(core, 2.0 * core.config.probe_interval)], Nack)


# -- leave, then rejoin under the same name ----------------------------------------------------


def test_a_node_that_left_rejoins_under_the_same_name_and_outbids_its_leave() -> None:
    loop = Loop(Config.lan(), seed=3)
    for i in range(4):
        loop.add(f"n{i}")
    loop.run_until(20.0, until=lambda: all(len(v) == 4 for v in loop.views(UP).values()))
    leaver = loop.by_name("n3")
    leaver.leave(loop.now)
    loop.run_until(loop.now + 10.0, until=lambda: leaver.leave_finished)
    loop.stop("n3")
    loop.run_until(loop.now + 5.0, until=lambda: loop.all_see("n3", LEFT))
    assert loop.all_see("n3", LEFT)
    left_at = member(loop.by_name("n0"), "n3").incarnation
    back = loop.restart("n3", incarnation=0)  # a fresh process: it knows nothing of the leave
    loop.run_until(loop.now + 30.0, until=lambda: loop.all_see("n3", UP))
    assert back.incarnation > left_at
    for core in loop.cores.values():
        assert member(core, "n3").status is UP
        assert member(core, "n3").incarnation == back.incarnation
    assert {m.name for m in back.members() if m.status is UP} == {"n0", "n1", "n2", "n3"}


# -- cluster labels ----------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), [("", "blue"), ("blue", ""), ("blue", "red")])
def test_a_label_mismatch_is_refused_in_either_direction(ours: str, theirs: str) -> None:
    core = make_core(config=Config.lan().replace(label=ours))
    deliver(core, 0.0, "p1", Alive("p1", addr(1), 1), label=theirs)
    deliver(core, 0.0, "p2", PushPull(True, False, ()), reliable=True, label=theirs)
    assert [m.name for m in core.members()] == ["n0"]
    assert core.counters["rejected_label"] == 2 and sent(core) == []


# -- joining ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [("10.0.0.2", 0), ("10.0.0.2", 70000), ("bad host!", 7000)])
def test_joining_through_a_malformed_seed_address_is_a_clear_error(
    seed: tuple[str, int],
) -> None:
    core = make_core()
    with pytest.raises(ValueError, match="address must be"):
        core.join([seed], 0.0)


def test_seeds_that_never_answer_leave_the_node_alone_and_retrying() -> None:
    """No error: agents may start in any order, so the join is retried until one answers."""
    core = make_core()
    core.join([addr(1), addr(2)], 0.0)
    log = run(core, 100.0)
    assert [m.name for m in core.members()] == ["n0"]
    tried = {p.destination for _, p in log if p.of(PushPull)}
    assert tried == {addr(1), addr(2)}
    assert core.next_deadline() is not None


# -- keyring edge cases --------------------------------------------------------------------------

K1, K2, K3 = (generate_key() for _ in range(3))


def test_a_keyring_holding_only_its_primary_lists_one_key() -> None:
    ring = Keyring(K1, [K1])
    assert ring.keys == [ring.primary] and len(ring.keys) == 1


def test_install_use_remove_edge_cases() -> None:
    ring = Keyring(K1)
    with pytest.raises(KeyringError):
        ring.use(K2)  # not installed
    assert ring.install(K2) and not ring.install(K2)  # installing twice is a no-op
    assert ring.keys[0] == ring.primary != ring.keys[1]
    assert ring.use(K2) and not ring.use(K2)
    with pytest.raises(KeyringError):
        ring.remove(K2)  # the primary
    assert ring.remove(K1) and not ring.remove(K1)
    assert not ring.remove(K3)  # never installed: nothing to do
    assert len(ring.keys) == 1


def test_a_keyring_is_bounded() -> None:
    ring = Keyring(K1)
    for _ in range(MAX_KEYS - 1):
        ring.install(generate_key())
    with pytest.raises(KeyringError, match="at most"):
        ring.install(K2)
    assert len(ring.keys) == MAX_KEYS
