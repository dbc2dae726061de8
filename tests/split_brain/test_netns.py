"""The issue's real-network test: five agents on network namespaces with
``--split-brain keep-majority``, the demo's counter a singleton on h5; the bridge is cut
3|2.  The minority's ``/v1/health`` must say ``"quorum": "lost"`` within the bound, the
majority must re-create and serve the counter, and after the link is restored every
agent must see one counter, on the same node.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from swimactors.agent.cluster import AgentProcess, LocalCluster, open_local_cluster, wait_until
from swimactors.quorum import stable_after_for
from tests.cluster.cluster_helpers import PROBES
from tests.network.fast import OVERRIDES
from tests.network.netns import Topology, open_topology

from .app import HOLDER

pytestmark = [pytest.mark.network, pytest.mark.netns]

STABLE_AFTER = stable_after_for(5)
"""The default for five members (7 s).  At 3 s, on a loaded 2-core box an agent now and
then ran nothing for 3 s before the cut (``quorum lost (no agreeing heartbeat from h1 for
3.0 s)``, then ``quorum ok`` 0.1 s later, once it read the heartbeats waiting for it):
when that was h5 its counter stopped and never came back (docs/split-brain.md, "What the
System does not yet do": the host forgets a singleton it saw go while it reached its
holder), and the cluster never settled with the counter on h5 (1 in 2-3 loaded full
runs)."""
TIMING = OVERRIDES | PROBES
"""Probes every 0.5 s with 0.25 s timeouts, as the other failover tests with a
split-brain rule: with 0.1 s timeouts, late answers under load made members flap SUSPECT,
each flap restarting the rule's stability window, and at 7 s the view was then not
confirmed within 40 s before the cut (2 of 6 loaded runs)."""
LOST_BOUND = STABLE_AFTER + 1.0 + 1.0
"""stable_after, one announcement interval (1 s) of heartbeats in flight, 1 s of slack."""
PORT = 7946
_SERVE = """
import sys, trio
from swimactors.agent.http import http_get
address = (sys.argv[1], int(sys.argv[2]))
for line in sys.stdin:
    try:
        reply = trio.run(http_get, address, line.strip())[1].decode()
    except Exception:
        reply = "null"
    sys.stdout.write(" ".join(reply.splitlines()) + "\\n")
    sys.stdout.flush()
"""


class NamespaceClient:
    """GETs from inside one agent's namespace through one long-lived interpreter there:
    starting an interpreter per request (ten per poll) kept a core busy and starved the
    agents' 0.2 s probes, which made this test flaky."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""
        self._late = 0
        """Replies still to come for requests that timed out: skipped when they arrive."""

    @classmethod
    async def start(cls, namespace: str, agent: AgentProcess) -> NamespaceClient:
        command = [
            "ip",
            "netns",
            "exec",
            namespace,
            sys.executable,
            "-c",
            _SERVE,
            agent.http[0],
            str(agent.http[1]),
        ]
        return cls(
            await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        )

    async def _line(self) -> bytes | None:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    async def get(self, path: str) -> Any:
        """The JSON at ``path`` (None if the agent does not answer within 10 s)."""
        assert self.process.stdin is not None
        with trio.move_on_after(10):
            while self._late:
                await self._line()
                self._late -= 1
            await self.process.stdin.send_all(path.encode() + b"\n")
            line = await self._line()
            return None if line is None else json.loads(line)
        self._late += 1
        return None

    async def aclose(self) -> None:
        self.process.kill()
        with trio.CancelScope(shield=True):
            await self.process.wait()


class NamespaceClients:
    """One :class:`NamespaceClient` per agent, started at its first GET."""

    def __init__(self) -> None:
        self._clients: dict[int, NamespaceClient] = {}

    def getter(
        self, topology: Topology, agents: list[AgentProcess]
    ) -> Callable[[int, str], Awaitable[Any]]:
        """``get_json(index, path)``: the JSON at ``path`` of agent ``index``."""

        async def get_json(index: int, path: str) -> Any:
            if index not in self._clients:
                self._clients[index] = await NamespaceClient.start(
                    topology.hosts[index], agents[index]
                )
            return await self._clients[index].get(path)

        return get_json

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


async def _start_agents(
    cluster: LocalCluster, topology: Topology, stable_after: float
) -> list[AgentProcess]:
    """h1..h5, one per namespace, each joining h1, under keep-majority."""
    agents: list[AgentProcess] = []
    for index, ns in enumerate(topology.hosts):
        agents.append(
            await cluster.start(
                f"h{index + 1}",
                host=topology.address(index),
                port=PORT,
                join=[(topology.address(0), PORT)] if index else [],
                command_prefix=["ip", "netns", "exec", ns],
                app="tests.split_brain.app:setup",
                extra_args=["--split-brain", "keep-majority", "--stable-after", str(stable_after)],
            )
        )
    return agents


async def test_a_3_2_cut_leaves_the_counter_on_the_majority_only() -> None:
    seen: dict[tuple[str, str], float] = {}
    """The first time each agent logged each marker after the cut: a flap before it (a
    SUSPECT under load) must not count, or the minority would look lost while still ok."""
    cut: float | None = None

    def on_line(agent: AgentProcess, line: str) -> None:
        for marker in ("quorum lost", "re-created singleton"):
            if marker in line and cut is not None:
                seen.setdefault((agent.name, marker), trio.current_time())

    clients = NamespaceClients()
    with open_topology(5, 3) as topology, trio.fail_after(120):
        try:
            async with open_local_cluster(overrides=TIMING, on_line=on_line) as cluster:
                agents = await _start_agents(cluster, topology, STABLE_AFTER)
                get_json = clients.getter(topology, agents)

                async def health(index: int) -> dict[str, Any]:
                    return await get_json(index, "/v1/health") or {}

                async def counters(index: int) -> list[str]:
                    entries = await get_json(index, "/v1/actors") or []
                    return [e["node"] for e in entries if e["name"] == "counter"]

                async def settled(indexes: range, holder: str | None) -> bool:
                    """Every agent of ``indexes`` serves and sees one counter, on ``holder``
                    (None: on any one node, the same for all)."""
                    seen_on = set()
                    for index in indexes:
                        state = (await health(index)).get("split_brain", {}).get("state")
                        found = await counters(index)
                        if state != "ok" or len(found) != 1 or found[0] != (holder or found[0]):
                            return False
                        seen_on.add(found[0])
                    return len(seen_on) == 1

                output = "\n".join
                assert await wait_until(lambda: settled(range(5), HOLDER), 40, 0.2) is not None, (
                    output(a.output() for a in agents)
                )

                cut = trio.current_time()
                topology.cut()
                minority = range(3, 5)

                async def minority_lost() -> bool:
                    return all((f"h{i + 1}", "quorum lost") in seen for i in minority)

                assert await wait_until(minority_lost, LOST_BOUND + 10) is not None
                lost_after = max(seen[(f"h{i + 1}", "quorum lost")] for i in minority) - cut
                for index in minority:
                    assert (await health(index))["quorum"] == "lost"
                assert lost_after <= LOST_BOUND, f"{lost_after:.2f} s > {LOST_BOUND} s"

                assert await wait_until(lambda: settled(range(3), "h1"), 30, 0.2) is not None
                failover_after = seen[("h1", "re-created singleton")] - cut
                for index in range(3):
                    assert (await health(index))["quorum"] == "ok"

                topology.cut(up=True)  # one counter again; on h1 unless a stall at the heal
                # made h1 lose quorum for a moment and give up its seniority (seen under load)
                healed = await wait_until(lambda: settled(range(5), None), 40, 0.2)
                assert healed is not None, output(a.output() for a in agents)
                print(
                    f"\nnetns 3|2: minority lost after {lost_after:.2f} s, singleton failed "
                    f"over after {failover_after:.2f} s, one counter everywhere {healed:.2f} s "
                    "after the heal"
                )
        finally:
            await clients.aclose()


INDIRECT_CUTS = ((0, 1), (0, 3), (0, 4), (1, 2))
"""h1 reaches only h3, h2 only h4 and h5: h1 and h2 share no helper (SWIM probes go
through one), h3, h4 and h5 reach everyone (sims.scenarios.indirect_split, for real)."""
INDIRECT_HOLD = 30.0
INDIRECT_STABLE = 7.0
"""The default for five members.  h2's heartbeats name another side from its first
failed probe of h1 until h1's own first failed probe of h2 is announced, which came up
to 8.9 s later (awareness stretches h1's periods).  The others' leases on h2 used to run
out then and they all stopped: 2 of 16 runs at 7 s, 2 of 3 full-suite runs at 10 s.
Now h2's side holds them fully connected and renews their leases (docs/split-brain.md,
rule 3)."""
INDIRECT_PROFILE = "lan"
INDIRECT_OVERRIDES = {"push_pull_interval": 5.0, "reconnect_interval": 2.0}
"""The simulator's settings (LAN).  The ``local`` profile (memberlist's DefaultLocalConfig)
asks one random helper, so h1's probes of h4 and h5 go through h2 or the other two times
in three and fail, and its short suspicion has h1 DOWN before its refutation gets out:
nobody's view settles (docs/split-brain.md, "Limits")."""


async def test_indirectly_connected_agents_leave_the_fully_connected_ones_serving() -> None:
    """Issue 13 item 4 on real processes: with h1 and h2 cut from each other, the fully
    connected h3, h4 and h5 never lose quorum and keep the counter on h5; the younger of
    h1 and h2 (h2) stops, whichever end finds the cut first."""
    lost: list[tuple[str, float, str]] = []
    """(agent, when, why) of each ``quorum lost`` line."""

    def on_line(agent: AgentProcess, line: str) -> None:
        if "quorum lost (" in line:
            why = line.split("quorum lost (", 1)[1]
            lost.append((agent.name, trio.current_time(), why))

    clients = NamespaceClients()
    with open_topology(5, 4) as topology, trio.fail_after(100):
        try:
            async with open_local_cluster(
                profile=INDIRECT_PROFILE, overrides=INDIRECT_OVERRIDES, on_line=on_line
            ) as cluster:
                agents = await _start_agents(cluster, topology, INDIRECT_STABLE)
                get_json = clients.getter(topology, agents)

                async def serving(indexes: range, key: str) -> dict[str, tuple[str, list[str]]]:
                    """Each agent's quorum ("ok" or "lost"; with ``key`` "state": "ok",
                    "pending" or "lost") and where it sees the counter."""
                    seen = {}
                    for index in indexes:
                        health = (await get_json(index, "/v1/health")) or {}
                        entries = (await get_json(index, "/v1/actors")) or []
                        found = [e["node"] for e in entries if e["name"] == "counter"]
                        state = health.get("split_brain", {}) if key == "state" else health
                        seen[f"h{index + 1}"] = (state.get(key, "?"), found)
                    return seen

                async def settled() -> bool:
                    seen = await serving(range(5), "state")
                    return all(v == ("ok", [HOLDER]) for v in seen.values())

                output = "\n".join
                assert await wait_until(settled, 40, 0.2), output(a.output() for a in agents)
                cut = trio.current_time()
                for first, second in INDIRECT_CUTS:
                    topology.block(first, second)
                await trio.sleep(INDIRECT_HOLD)
                after = [(name, round(t - cut, 2)) for name, t, _ in lost]
                everyone = await serving(range(5), "quorum")
                fully_connected = {name: everyone[name] for name in ("h3", "h4", "h5")}
                report = f"{after=} {everyone=}\n" + output(a.output() for a in agents)
                first_stop: dict[str, str] = {}
                for name, _, why in lost:
                    first_stop.setdefault(name, why)
                stopped = {name: why for name, why in first_stop.items() if name >= "h3"}
                assert not stopped, f"{stopped}\n{report}"
                assert fully_connected == dict.fromkeys(fully_connected, ("ok", [HOLDER])), report
                assert everyone["h2"][0] == "lost", report
                print(f"\nnetns indirect, {INDIRECT_HOLD:.0f} s: quorum lost {after}; {everyone}")
        finally:
            await clients.aclose()
