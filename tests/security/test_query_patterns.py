"""Query tag patterns travel to every node and are matched on its loop: only patterns whose
match cost is bounded are sent or accepted.

Before: one forged query datagram with the 8-character pattern ``(.*.*)*X`` for a tag of
15 characters held the loop of every agent that heard it for 16 s and more (Python's ``re``
backtracks exponentially), so the whole cluster was suspected at once.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors import wire
from swimactors.agent.cluster import open_local_cluster, wait_until
from swimactors.agent.events import (
    MAX_PATTERN,
    QUERY_CHANNEL,
    EventError,
    check_pattern,
)
from swimactors.agent.http import http_get
from swimactors.membership.messages import UserMessage, encode_message
from tests.security.test_attacks import (
    cpu_seconds,
    gossip_with,
    send_datagram,
    statuses_of,
    suspected,
)

SUBJECTS = ("a" * 300, "a" * 299 + "!", "ab" * 150, "127.0.0.1:41377" * 20)


@pytest.mark.parametrize(
    "pattern", ["(.*.*)*X", "(a+)+$", "(a|aa)*b", ".*.*.*X", "a?" * 30 + "a" * 30, r"(a)\1"]
)
def test_patterns_that_can_backtrack_for_ever_are_refused(pattern: str) -> None:
    with pytest.raises(EventError):
        check_pattern(pattern)


@pytest.mark.parametrize("pattern", ["web", "web|db", "web.*", "(eu|us)-[a-z]+-\\d", "^db\\d?$"])
def test_ordinary_patterns_pass(pattern: str) -> None:
    check_pattern(pattern)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="a.*+?|()[]{},1^$\\!", max_size=40))
def test_any_accepted_pattern_matches_a_long_tag_quickly(pattern: str) -> None:
    """Whatever passes the check costs at most the square of the tag's length: well
    under a second on 300 characters, worst subjects included."""
    try:
        check_pattern(pattern)
    except EventError:
        return
    for subject in SUBJECTS:
        started = time.process_time()
        re.fullmatch(pattern, subject)
        assert time.process_time() - started < 0.5, (pattern, subject)


def test_a_pattern_over_the_length_limit_is_refused() -> None:
    with pytest.raises(EventError):
        check_pattern("a" * (MAX_PATTERN + 1))


@pytest.mark.network
async def test_a_forged_query_with_a_backtracking_pattern_is_dropped() -> None:
    tag = "x" * 40
    with trio.fail_after(60):
        async with open_local_cluster(profile="lan") as cluster:
            victim = await cluster.start("v", meta={"role": tag})
            peer = await cluster.start("p1", join=[victim.gossip], meta={"role": tag})

            async def formed() -> bool:
                seen = await statuses_of(peer)
                return sorted(n for n, s in seen.items() if s == "up") == ["p1", "v"]

            assert await wait_until(formed, 15) is not None
            query = ["p1", 1, "q", b"", ["p1", "/user/x", 1], [], [["role", "(.*.*)*X"]], 5]
            forged = encode_message(UserMessage(QUERY_CHANNEL, wire.dumps(query)))
            cpu = cpu_seconds(victim)
            await trio.to_thread.run_sync(send_datagram, victim.gossip, gossip_with(forged))

            async def dropped() -> bool:
                _, body = await http_get(victim.http, "/v1/info")
                return bool(json.loads(body)["events"]["malformed_dropped"] == 1)

            assert await wait_until(dropped, 5) is not None
            await trio.sleep(1.0)
            assert cpu_seconds(victim) - cpu < 0.5
            assert suspected([peer], "v") == []
