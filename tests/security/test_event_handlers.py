"""Event handler scripts get a received event's or query's name in their environment: a
forged name must neither reach it raw nor take the agent down.

Before: one forged datagram, a user event or query whose name held a NUL byte, made the
agent's handler runner raise (``embedded null byte`` from the environment) and the whole
agent exited, on every agent with a handler for user events or queries."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import trio

from swimactors import wire
from swimactors.agent.cluster import open_local_cluster, wait_until
from swimactors.agent.events import EVENT_CHANNEL, QUERY_CHANNEL
from swimactors.agent.handlers import EventHandlers, parse_handler
from swimactors.agent.http import http_get
from swimactors.membership.messages import UserMessage, encode_message
from tests.security.test_attacks import gossip_with, send_datagram, statuses_of, suspected


@pytest.mark.network
async def test_a_forged_event_or_query_with_an_unprintable_name_is_dropped() -> None:
    with trio.fail_after(60):
        async with open_local_cluster(profile="lan") as cluster:
            handlers = ["--event-handler", "user=true", "--event-handler", "query=echo hi"]
            victim = await cluster.start("v", extra_args=handlers)
            peer = await cluster.start("p1", join=[victim.gossip])

            async def formed() -> bool:
                return (await statuses_of(peer)).get("v") == "up"

            assert await wait_until(formed, 15) is not None
            event = ["p1", 10**12, "de\x00ploy", b"x"]
            query = ["p1", 10**12 + 1, "q\x00", b"", ["p1", "127.0.0.1", 9], [], [], 1.0]
            for channel, value in ((EVENT_CHANNEL, event), (QUERY_CHANNEL, query)):
                forged = encode_message(UserMessage(channel, wire.dumps(value)))
                await trio.to_thread.run_sync(send_datagram, victim.gossip, gossip_with(forged))

            async def dropped() -> bool:
                _, body = await http_get(victim.http, "/v1/info")
                return bool(json.loads(body)["events"]["malformed_dropped"] == 2)

            assert await wait_until(dropped, 5) is not None
            await trio.sleep(1.0)
            assert victim.running
            assert (await statuses_of(peer)).get("v") == "up"
            assert suspected([peer], "v") == []


async def test_a_handler_that_cannot_start_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "swimactors.agent.handlers")
    handlers = EventHandlers([parse_handler("user=true")], "v")
    with trio.fail_after(10):
        answer = await handlers._run(handlers.specs[0], {"NAME": "a\x00b"}, b"", 5.0)
    assert answer == b""
    assert any("could not start" in r.getMessage() for r in caplog.records)


@pytest.mark.network
async def test_a_forged_query_cannot_make_its_answers_break_connections() -> None:
    """A query names where its answers go, ``[node, path, uid]``, and every matching node
    answers there.  A forged query whose uid was -1 or 2**63 had every node send a frame
    its peer refuses, which drops the whole connection (and the asks on it).  Now such a
    query is dropped as malformed."""
    from tests.security.test_attacks import metric

    with trio.fail_after(60):
        async with open_local_cluster(profile="lan") as cluster:
            answer = ["--event-handler", "query=echo hi"]
            victim = await cluster.start("v", extra_args=answer)
            peer = await cluster.start("p1", join=[victim.gossip], extra_args=answer)

            async def formed() -> bool:
                return (await statuses_of(peer)).get("v") == "up"

            assert await wait_until(formed, 15) is not None
            for sequence, uid in ((10**12, -1), (10**12 + 1, 2**63)):
                query = ["p1", sequence, "q", b"", ["v", "/user/x", uid], [], [], 1.0]
                forged = encode_message(UserMessage(QUERY_CHANNEL, wire.dumps(query)))
                await trio.to_thread.run_sync(send_datagram, victim.gossip, gossip_with(forged))

            async def dropped() -> bool:
                _, body = await http_get(victim.http, "/v1/info")
                return bool(json.loads(body)["events"]["malformed_dropped"] == 2)

            assert await wait_until(dropped, 5) is not None
            await trio.sleep(1.5)  # p1 has heard the queries too, and would have answered
            malformed = 'actor_transport_events_total{event="rejected_malformed"}'
            assert await metric(victim, malformed) == 0


@pytest.mark.network
async def test_a_query_is_answered_only_at_its_origin() -> None:
    """A query names where its answers go, ``[node, path, uid]``.  Before, a forged query
    named any actor on any node, and every matching node told that actor a QueryAnswer.
    Now the answer address must be on the query's origin, a member membership knows
    alive: otherwise no node answers, and each counts it (``queries_refused``).  What is
    left in plaintext: an origin is a claim, so a forger can still name a live member
    as the origin and an actor on it (the third query below)."""
    from tests.security.test_attacks import cluster_of_three, metric

    dead_letters = "actor_dead_letters_total"
    with trio.fail_after(60):
        async with cluster_of_three() as (_, victim, (p1, p2)):
            for sequence, origin, to in (
                (10**12, "p1", "p2"),  # answers elsewhere than the origin
                (10**12 + 1, "ghost", "ghost"),  # an origin membership does not know
            ):
                query = [origin, sequence, "q", b"", [to, "/user/x", 1], [], [], 1.0]
                forged = encode_message(UserMessage(QUERY_CHANNEL, wire.dumps(query)))
                await trio.to_thread.run_sync(send_datagram, victim.gossip, gossip_with(forged))

            async def refused_everywhere() -> bool:
                for agent in (victim, p1, p2):
                    _, body = await http_get(agent.http, "/v1/info")
                    if json.loads(body)["events"]["queries_refused"] != 2:
                        return False
                return True

            assert await wait_until(refused_everywhere, 10) is not None
            assert await metric(victim, 'agent_events_total{event="queries_refused"}') == 2
            await trio.sleep(1.0)  # an answer would have reached p2 by now
            assert await metric(p2, dead_letters) == 0

            query = ["p1", 10**12 + 2, "q", b"", ["p1", "/user/x", 1], [], [], 1.0]
            forged = encode_message(UserMessage(QUERY_CHANNEL, wire.dumps(query)))
            await trio.to_thread.run_sync(send_datagram, victim.gossip, gossip_with(forged))

            async def answered() -> bool:
                return await metric(p1, dead_letters) == 3  # v, p1 and p2 answered

            assert await wait_until(answered, 10) is not None


def test_a_member_s_tags_reach_a_handler_s_stdin_as_one_line_of_four_fields() -> None:
    """Member handlers read one ``name<TAB>address<TAB>status<TAB>tags`` line per member:
    a forged member whose tag held a line break and tabs handed them a second member line
    of its making (an address to add to a load balancer, say).  Now tags are escaped."""
    from swimactors.agent.handlers import _member_line
    from swimactors.membership import Member, Status
    from swimactors.membership.meta import encode_meta

    forged = encode_meta({"role": "web\nevil\t10.6.6.6:1\tup\t"})
    line = _member_line(Member("m", ("10.0.0.1", 7946), 1, Status.UP, forged))
    assert line.count("\n") == 1 and line.endswith("\n")
    assert line.rstrip("\n").split("\t") == [
        "m",
        "10.0.0.1:7946",
        "up",
        r"role=web\nevil\t10.6.6.6:1\tup\t",
    ]


@pytest.mark.network
async def test_tags_set_over_the_api_are_printable(tmp_path: Path) -> None:
    """`PUT /v1/tags` took a NUL byte: every handler run after it put the node's tags in
    its environment (`SWIMACTORS_SELF_TAGS`) and could not start."""
    from swimactors.agent.http import http_request

    (tmp_path / "token").write_text("t0ken\n")
    with trio.fail_after(60):
        async with open_local_cluster(profile="lan") as cluster:
            extra = ["--http-token-file", str(tmp_path / "token")]
            agent = await cluster.start("v", extra_args=extra)
            for tags in ({"role": "a\x00b"}, {"\x1b[2J": "x"}, {"role": "line\nbreak"}):
                status, _ = await http_request(
                    agent.http, "PUT", "/v1/tags", {"set": tags}, token="t0ken"
                )
                assert status == 400
            status, _ = await http_request(
                agent.http, "PUT", "/v1/tags", {"set": {"role": "web"}}, token="t0ken"
            )
            assert status == 200
