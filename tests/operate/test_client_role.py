"""The client role across OS processes: an example client that quits is forgotten by the
agents soon after (it announces a short reap), while an agent that left stays listed for
their ``reap_time``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import trio

from swimactors.agent.cluster import AgentProcess, open_local_cluster, wait_until
from swimactors.membership.types import format_address
from tests.network.fast import CONFIG, OVERRIDES

pytestmark = pytest.mark.network
FORGOTTEN_BOUND = 2 * CONFIG.push_pull_interval + 3 * CONFIG.reconnect_interval + 5.0
"""Peers keep a client's record two push/pull periods, and reap every reconnect interval."""
GONE = ("left", "down")


async def test_a_client_that_quits_is_forgotten_soon_and_a_left_agent_is_kept() -> None:
    with trio.fail_after(120):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a")
            await cluster.start("c", join=[a.gossip])
            assert await wait_until(lambda: _is(a, "c", ("up",)), 20) is not None
            await cluster.stop("c")  # leaves: the control, kept for reap_time
            assert await wait_until(lambda: _is(a, "c", GONE), 30) is not None
            client = await trio.lowlevel.open_process(
                [sys.executable, "-m", "examples.kv", "--join", format_address(a.gossip)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            assert client.stdin is not None
            try:
                assert await wait_until(lambda: _is(a, "kv-client", ("up",)), 20) is not None
                await client.stdin.send_all(b"quit\n")
                assert await client.wait() == 0
            finally:
                client.kill()
                await client.wait()
            assert await wait_until(lambda: _is(a, "kv-client", GONE), 20) is not None
            gone = await wait_until(lambda: _is(a, "kv-client", (None,)), FORGOTTEN_BOUND)
            assert gone is not None, "the client is still listed"
            assert gone >= CONFIG.push_pull_interval  # not before its departure spread
            assert await _is(a, "c", GONE)


async def _is(agent: AgentProcess, name: str, statuses: tuple[str | None, ...]) -> bool:
    view = await agent.statuses()
    assert view is not None, f"{agent.name} does not answer"
    return view.get(name) in statuses
