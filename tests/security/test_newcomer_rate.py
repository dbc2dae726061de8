"""Unknown members a node adds are bounded in rate, not only per packet.

Before: one push/pull could add at most ``push_pull_max_newcomers`` (1,024) unknown
members, but nothing bounded how many push/pulls (or gossip datagrams) did so: 30 forged
push/pulls gave a node 30,723 members, which it then probed in ring order, so it found a
real member's failure only once per ~30,000 probe periods.  Now a token bucket
(``newcomer_rate`` a second after a burst of ``newcomer_burst``) bounds them all."""

from __future__ import annotations

import struct

import pytest
import trio

from swimactors.agent.cluster import open_local_cluster, wait_until
from swimactors.membership.config import Config
from swimactors.membership.core import Swim
from swimactors.membership.messages import (
    Alive,
    MemberState,
    PushPull,
    encode_message,
    encode_packet,
)
from swimactors.membership.types import Status
from tests.security.test_attacks import (
    metric,
    rejected,
    statuses_of,
    suspected,
)

CONFIG = Config.lan()
RATE, BURST = CONFIG.newcomer_rate, CONFIG.newcomer_burst


def made_up(first: int, count: int) -> tuple[MemberState, ...]:
    """``count`` members nobody knows, at addresses where nothing listens."""
    return tuple(
        MemberState.of(
            f"fake-{i}", (f"127.254.{i // 250 % 250}.{1 + i % 250}", 9), 1, Status.UP, b""
        )
        for i in range(first, first + count)
    )


def push_pull(sender: str, members: tuple[MemberState, ...]) -> bytes:
    return encode_packet(
        "", sender, [encode_message(PushPull(False, True, members, {}))], ("10.0.0.9", 7946)
    )


def test_repeated_push_pulls_add_newcomers_at_a_bounded_rate() -> None:
    core = Swim("v", ("10.0.0.1", 7946), CONFIG)
    per_packet = CONFIG.push_pull_max_newcomers
    for i in range(30):  # 30 push/pulls of 1,024 made-up members, 0.1 s apart
        core.receive(
            10.0 + i * 0.1,
            ("10.0.0.9", 40_000 + i),
            push_pull("p1", made_up(i * per_packet, per_packet)),
        )
    added = len(core.members()) - 1
    assert added <= BURST + RATE * 3.0 + 1, added  # before: 30,720
    assert core.counters["rejected_newcomer_rate"] == 30 * per_packet - added
    # gossip naming made-up members draws on the same bucket
    alives = [encode_message(Alive(f"gossip-{i}", ("127.253.0.1", 9), 1)) for i in range(20)]
    core.receive(13.0, ("10.0.0.9", 7946), encode_packet("", "p1", alives))
    assert len(core.members()) - 1 <= added + RATE * 0.1 + 1
    # a quiet spell later a real newcomer is taken again
    joiner = MemberState.of("late", ("10.0.0.7", 7946), 1, Status.UP, b"")
    core.receive(20.0, ("10.0.0.7", 7946), push_pull("late", (joiner,)))
    assert core.member("late") is not None


def test_a_burst_of_newcomers_as_large_as_a_join_or_merge_is_taken_at_once() -> None:
    """A join into a cluster of 4,000 (or two clusters merging): no newcomer refused."""
    core = Swim("v", ("10.0.0.1", 7946), CONFIG)
    for i in range(BURST // 1_000):
        core.receive(10.0, ("10.0.0.9", 40_000 + i), push_pull("p1", made_up(i * 1_000, 1_000)))
    assert len(core.members()) - 1 == BURST // 1_000 * 1_000
    assert core.counters["rejected_newcomer_rate"] == 0


@pytest.mark.network
async def test_a_flood_of_forged_push_pulls_into_an_agent_is_bounded_and_counted() -> None:
    """The same on an agent, its bucket made small (``--set``) to keep the test quick."""
    frames = [push_pull("p1", made_up(i * 128, 128)) for i in range(8)]
    small = ["--set", "newcomer_burst=256", "--set", "newcomer_rate=1.0"]
    with trio.fail_after(60):
        async with open_local_cluster(profile="lan") as cluster:
            victim = await cluster.start("v", extra_args=small)
            peer = await cluster.start("p1", join=[victim.gossip])

            async def formed() -> bool:
                return (await statuses_of(peer)).get("v") == "up"

            assert await wait_until(formed, 15) is not None
            started = trio.current_time()
            stream = await trio.open_tcp_stream(*victim.gossip)  # one connection, 8 frames
            async with stream:
                await stream.send_all(b"".join(struct.pack(">I", len(f)) + f for f in frames))

            async def all_seen() -> bool:
                seen = await statuses_of(victim)
                fakes = sum(1 for name in seen if name.startswith("fake-"))
                return fakes + await metric(victim, rejected("newcomer_rate")) == 8 * 128

            assert await wait_until(all_seen, 10) is not None  # before: 1,024 fakes, none refused
            seen = await statuses_of(victim)
            fakes = sum(1 for name in seen if name.startswith("fake-"))
            elapsed = trio.current_time() - started  # (p1's own join took one token)
            assert 256 - 1 <= fakes <= 256 + elapsed * 1.0 + 1
            assert suspected([peer], "v") == []
