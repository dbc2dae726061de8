"""A push/pull request is answered with the node's whole state, sent to the address the
request names: small requests must buy a bounded number of answers.

Before: every request was answered.  2,000 requests of 20 bytes in one TCP write to a node
holding 10,000 members took 3 s of its CPU, stalled its API 5 s and grew it by 72 MB;
a request in a datagram, with a made-up source or reply address, had any host sent the
state, again and again."""

from __future__ import annotations

import struct

import pytest
import trio

from swimactors.membership.config import Config
from swimactors.membership.core import Swim
from swimactors.membership.messages import (
    MemberState,
    PushPull,
    encode_message,
    encode_packet,
)
from swimactors.membership.types import Status
from tests.security.test_actor_port import raw_connection
from tests.security.test_attacks import (
    assert_harmless,
    cluster_of_three,
    metric,
    send_frame,
    suspected,
    under_attack,
)


def request(reply_to: tuple[str, int] | None = None) -> bytes:
    return encode_packet("", "mallory", [encode_message(PushPull(False, False, (), {}))], reply_to)


def test_push_pull_requests_buy_a_bounded_number_of_answers() -> None:
    core = Swim("v", ("10.0.0.1", 7946), Config.lan())
    for i in range(1_000):
        core.receive(5.0, ("10.0.0.9", 40_000 + i), request(("10.9.9.9", 80)))
    answered = core.counters["sent_pushpull"]
    assert answered == Config.lan().push_pull_max_replies
    assert core.counters["push_pull_replies_refused"] == 1_000 - answered
    core.receive(5.5, ("10.0.0.9", 39_999), request())  # half a second: half the budget back
    core.receive(5.5, ("10.0.0.9", 39_998), request())
    assert core.counters["sent_pushpull"] == answered + 2


@pytest.mark.network
async def test_a_stream_of_push_pull_requests_is_cheap_for_a_node_with_many_members() -> None:
    with trio.fail_after(120):
        async with cluster_of_three() as (_cluster, victim, peers):
            members = tuple(
                MemberState.of(
                    f"fake-{i}", (f"127.254.{i // 250}.{1 + i % 250}", 9), 1, Status.UP, b""
                )
                for i in range(1_024)
            )
            fill = encode_message(PushPull(False, True, members, {}))
            await send_frame(victim.gossip, encode_packet("", "p1", [fill], ("127.0.0.1", 9)))
            frame = request(("127.254.0.1", 9))
            burst = (struct.pack(">I", len(frame)) + frame) * 2_000

            async def requests() -> None:
                stream = await raw_connection(victim.gossip)
                async with stream:
                    await stream.send_all(burst)
                    await trio.sleep(0.5)

            assert_harmless(await under_attack(victim, requests), "2,000 push/pull requests")
            assert await metric(victim, "push_pull_replies_refused_total") >= 2_000 - 2 * 128
            assert suspected(peers, "v") == []
