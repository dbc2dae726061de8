"""A real network partition: four agents in their own network namespaces, two per bridge,
the bridges joined by one veth link.  Cutting that link splits the cluster 2|2; each side
must mark the other DOWN; restoring it must re-form the cluster.

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); skipped with the reason where namespaces cannot
be created (see :mod:`tests.network.netns`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import trio

from swimactors.agent.cluster import AgentProcess, open_local_cluster, wait_until

from .fast import CONFIG, OVERRIDES
from .netns import Topology, open_topology

pytestmark = [pytest.mark.network, pytest.mark.netns]

HOSTS = 4
PORT = 7946
DOWN_BOUND = CONFIG.suspicion_timeouts(HOSTS)[1] + 3 * CONFIG.probe_interval + 1.0
HEAL_TIMEOUT = 4 * CONFIG.reconnect_interval + 2 * CONFIG.push_pull_interval + 10.0
_EVENT = re.compile(r"\] (UP|SUSPECT|ALIVE|DOWN|LEFT|UPDATED)\s+(\S+) ")
_STATUS = {"UP": "up", "ALIVE": "up", "UPDATED": "up", "SUSPECT": "suspect", "DOWN": "down"}


@pytest.fixture
def topology() -> Iterator[Topology]:
    with open_topology(HOSTS, 2) as topo:
        yield topo


def last_status(agent: AgentProcess, member: str) -> str | None:
    """The status of ``member`` in ``agent``'s view, from the agent's own event lines."""
    for line in reversed(agent.lines):
        match = _EVENT.search(line)
        if match and match.group(2) == member:
            return _STATUS.get(match.group(1), match.group(1).lower())
    return None


def outputs(agents: list[AgentProcess]) -> str:
    return "\n".join(a.output() for a in agents)


def sees(agents: list[AgentProcess], members: list[str], status: str) -> bool:
    return all(last_status(a, m) == status for a in agents for m in members)


async def confirm_via_api(agents: list[AgentProcess], members: list[str], status: str) -> None:
    """Double-check the event-line view against each agent's /v1/members."""
    for agent in agents:
        statuses = await agent.statuses()
        assert statuses is not None, f"{agent.name} did not answer"
        assert all(statuses.get(m) == status for m in members), (agent.name, statuses)


async def test_a_partition_splits_the_cluster_and_healing_reforms_it(topology: Topology) -> None:
    with trio.fail_after(180):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            agents: list[AgentProcess] = []
            seed = (topology.address(0), PORT)
            for index, ns in enumerate(topology.hosts):
                agents.append(
                    await cluster.start(
                        f"h{index + 1}",
                        host=topology.address(index),
                        port=PORT,
                        join=[seed] if index else [],
                        command_prefix=["ip", "netns", "exec", ns],
                    )
                )
            names = [a.name for a in agents]

            async def all_up() -> bool:
                return all(sees([a], [n for n in names if n != a.name], "up") for a in agents)

            assert await wait_until(all_up, HEAL_TIMEOUT) is not None, outputs(agents)
            left, right = agents[:2], agents[2:]

            topology.cut()

            async def split() -> bool:
                return sees(left, ["h3", "h4"], "down") and sees(right, ["h1", "h2"], "down")

            took = await wait_until(split, DOWN_BOUND + 15, interval=0.1)
            assert took is not None, outputs(agents)
            assert took <= DOWN_BOUND, f"{took:.2f} s > {DOWN_BOUND:.2f} s"
            await confirm_via_api(left, ["h3", "h4"], "down")
            await confirm_via_api(right, ["h1", "h2"], "down")
            assert last_status(left[0], "h2") == "up" and last_status(right[0], "h4") == "up"

            topology.cut(up=True)
            healed = await wait_until(all_up, HEAL_TIMEOUT, interval=0.1)
            assert healed is not None, outputs(agents)
            for agent in agents:
                await confirm_via_api([agent], [n for n in names if n != agent.name], "up")
