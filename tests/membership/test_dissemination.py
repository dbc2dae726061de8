"""Mechanism 5: dissemination.  A transmit-limited queue piggybacks each update at most
``retransmit_mult * ceil(log10(n + 1))`` times, newer news about a member replaces older,
least-sent first, within the datagram budget; gossip goes to ``gossip_nodes`` members
every ``gossip_interval``, recently DOWN ones included for ``gossip_to_the_dead_time``."""

from __future__ import annotations

import collections

import pytest

from swimactors.membership import Config
from swimactors.membership.broadcasts import BroadcastQueue
from swimactors.membership.messages import Ack, Alive, Dead, Ping, PingReq, Suspect, UserMessage

from .util import CONFIG, Sent, acking, add_peers, addr, deliver, make_core, messages, run

LOCAL = Config.local()


@pytest.mark.parametrize(
    ("config", "n", "limit"),
    [(CONFIG, 1, 4), (CONFIG, 9, 4), (CONFIG, 10, 8), (CONFIG, 99, 8), (CONFIG, 100, 12),
     (LOCAL, 10, 4), (LOCAL, 1000, 8)],
)  # fmt: skip
def test_retransmit_limit_formula(config: Config, n: int, limit: int) -> None:
    assert config.retransmit_limit(n) == limit


def datagrams(log: list[tuple[float, Sent]]) -> list[Sent]:
    return [p for _, p in log if not p.reliable]


def test_an_update_is_piggybacked_exactly_retransmit_limit_times() -> None:
    core = make_core()
    add_peers(core, 5)
    respond = acking()
    run(core, 10.0, respond)  # the introductions have been spread and retired
    deliver(core, 10.0, "p1", Alive("x", addr(9), 1))
    log = datagrams(run(core, 40.0, respond))
    limit = CONFIG.retransmit_limit(core.alive_count())
    assert limit == 4
    assert messages(log, Alive).count(Alive("x", addr(9), 1)) == limit


def test_newer_news_about_a_member_replaces_the_older() -> None:
    core = make_core()
    add_peers(core, 5)
    deliver(core, 0.0, "p1", Alive("x", addr(9), 1))
    deliver(core, 0.0, "p2", Suspect("x", 1, "p2"))
    log = datagrams(run(core, 10.0, acking()))
    assert Suspect("x", 1, "p2") in messages(log, Suspect)
    assert not [m for m in messages(log, Alive) if m.name == "x"]


def test_least_sent_updates_go_first() -> None:
    core = make_core(config=CONFIG.replace(packet_budget=256))
    add_peers(core, 5)
    respond = acking()
    run(core, 10.0, respond)
    payloads = [bytes([i]) * 100 for i in range(10)]
    for payload in payloads:
        core.broadcast("chan", payload)
    order = [m.payload for p in datagrams(run(core, 30.0, respond)) for m in p.of(UserMessage)]
    limit = CONFIG.retransmit_limit(6)
    assert collections.Counter(order) == {p: limit for p in payloads}
    sends: collections.Counter[bytes] = collections.Counter()
    for payload in order:  # nothing is sent again while another is less sent
        assert sends[payload] == min(sends[p] for p in payloads)
        sends[payload] += 1


def test_every_datagram_stays_within_the_packet_budget() -> None:
    for budget in (256, 600, 1400):
        core = make_core(config=CONFIG.replace(packet_budget=budget))
        respond = acking(lambda name: int(name[1:]) % 3 != 0)
        for i in range(1, 300):  # far more news than a datagram can carry
            deliver(core, 0.0, f"p{i}", Alive(f"p{i}", addr(i), 1, b"m" * (i % 50)))
        core.broadcast("chan", b"x" * core.max_broadcast_size)
        log = datagrams(run(core, 30.0, respond))
        assert len(log) > 100
        assert max(p.size for p in log) <= budget
        assert max(p.size for p in log) > budget - 120  # packets are actually filled


def pure_gossip(log: list[tuple[float, Sent]]) -> list[tuple[float, Sent]]:
    """Packets carrying only piggybacked news (no probe traffic of their own)."""
    probe_kinds = (Ping, Ack, PingReq)
    return [(t, p) for t, p in log if not p.reliable and not any(p.of(k) for k in probe_kinds)]


def test_gossip_goes_to_gossip_nodes_distinct_members_each_round() -> None:
    core = make_core()
    add_peers(core, 10)
    respond = acking()
    run(core, 10.0, respond)
    core.broadcast("chan", b"news")
    rounds: dict[float, list[Sent]] = collections.defaultdict(list)
    for t, p in pure_gossip(run(core, 10.5, respond)):
        rounds[t].append(p)
    assert len(rounds) >= 2
    *full, last = [rounds[t] for t in sorted(rounds)]
    for packets in full:  # the last round may run out of transmissions part-way
        destinations = [p.destination for p in packets]
        assert len(set(destinations)) == len(destinations) == CONFIG.gossip_nodes
        assert all(p.of(UserMessage) for p in packets)
    assert 0 < len({p.destination for p in last}) == len(last) <= CONFIG.gossip_nodes


def test_no_gossip_when_there_is_no_news() -> None:
    core = make_core()
    add_peers(core, 5)
    respond = acking()
    run(core, 20.0, respond)
    assert not pure_gossip(run(core, 40.0, respond))


def test_recently_down_members_get_gossip_until_gossip_to_the_dead_time() -> None:
    core = make_core()
    add_peers(core, 3)
    respond = acking(lambda name: name != "p3")
    deliver(core, 0.0, "p1", Dead("p3", 1, "p1"))
    dead_address = addr(3)
    to_dead: list[float] = []
    for second in range(70):  # keep news flowing so that gossip rounds happen
        core.broadcast("chan", second.to_bytes(2, "big"))
        to_dead += [t for t, p in pure_gossip(run(core, second + 1.0, respond))
                    if p.destination == dead_address]  # fmt: skip
    assert to_dead, "a recently DOWN member must still get gossip"
    assert max(to_dead) <= CONFIG.gossip_to_the_dead_time
    assert not [t for t in to_dead if t > CONFIG.gossip_to_the_dead_time]


def test_the_broadcast_queue_is_bounded_and_drops_the_most_sent() -> None:
    queue = BroadcastQueue(max_items=4)
    for key in "abcd":
        queue.push(key, "k", key.encode() * 10)
    queue.take(25, limit=10)  # sends two of them once
    sent_once = {k for k in "abcd" if queue.transmits(k) == 1}
    queue.push("e", "k", b"e")
    assert len(queue) == 4 and queue.dropped == 1
    assert len(sent_once - {k for k in "abcd" if k in queue}) == 1


def test_news_worth_a_packet_goes_out_at_once_and_the_rounds_keep_their_beat() -> None:
    """Urgent news (a suspicion) is gossiped when it arrives, and the rounds after it stay
    on the beat drawn at start: restarted at the news, every node that heard it in one
    burst would gossip in step, and a node the burst missed would wait a whole interval
    (issue 13: the last node of 100 marked a crash DOWN one round late in a third of runs)."""
    core = make_core()
    add_peers(core, 10)
    respond = acking()
    beat = min(t for t, _ in pure_gossip(run(core, 10.0, respond)))
    news_at = 10.0 + beat + CONFIG.gossip_interval / 3  # between two beats
    run(core, news_at, respond)
    deliver(core, news_at, "p2", Suspect("p3", 1, "p2"))
    rounds = sorted({t for t, _ in pure_gossip(run(core, news_at + 1.0, respond))})
    assert rounds[0] == news_at and len(rounds) > 2
    offsets = [(t - beat) / CONFIG.gossip_interval for t in rounds[1:]]
    assert all(abs(k - round(k)) < 1e-6 for k in offsets), offsets
