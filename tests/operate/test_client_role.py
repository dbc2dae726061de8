"""The client role across OS processes: an example client that quits is forgotten by the
agents soon after (it announces a short reap), while an agent that left stays listed as
``left`` for their ``reap_time``."""

from __future__ import annotations

import sys

import pytest
import trio

from swimactors.agent.cluster import AgentProcess, open_local_cluster, wait_until
from swimactors.membership.types import format_address
from tests.network.fast import CONFIG, OVERRIDES

pytestmark = pytest.mark.network
FORGOTTEN_BOUND = 2 * CONFIG.push_pull_interval + 3 * CONFIG.reconnect_interval + 5.0
"""Peers keep a client's record two push/pull periods, and reap every reconnect interval."""


async def status_of(agent: AgentProcess, name: str) -> str | None:
    statuses = await agent.statuses()
    assert statuses is not None, f"{agent.name} does not answer"
    return statuses.get(name)


async def test_a_client_that_quits_is_forgotten_soon_and_a_left_agent_is_kept() -> None:
    with trio.fail_after(90):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a")
            await cluster.start("c", join=[a.gossip])
            await cluster.stop("c")  # leaves gracefully: the control
            assert await wait_until(lambda: _is(a, "c", "left"), 20) is not None
            client = await trio.run_process(
                [sys.executable, "-m", "examples.kv", "--join", format_address(a.gossip)],
                stdin=b"members\nquit\n",
                capture_stdout=True,
                capture_stderr=True,
            )
            assert b"kv-client" in client.stdout, client.stderr  # it was a member
            assert await wait_until(lambda: _is(a, "kv-client", "left"), 20) is not None
            gone = await wait_until(lambda: _is(a, "kv-client", None), FORGOTTEN_BOUND)
            assert gone is not None, "the client is still listed"
            assert gone >= CONFIG.push_pull_interval  # not before the departure spread
            assert await status_of(a, "c") == "left"


async def _is(agent: AgentProcess, name: str, status: str | None) -> bool:
    return await status_of(agent, name) == status
