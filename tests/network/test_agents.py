"""Multi-process tests driving the real ``swimactors agent`` and ``swimactors members``.

Every agent is reaped and every port freed even when a test fails: the cluster context
manager kills what is left, and the last test checks the ports are bindable again.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest
import trio

from swimactors.agent.cluster import AgentProcess, LocalCluster, open_local_cluster, wait_until

from .fast import CONFIG, OVERRIDES

pytestmark = pytest.mark.network

NAMES = "abcde"
DOWN_BOUND = CONFIG.suspicion_timeouts(len(NAMES))[1] + 3 * CONFIG.probe_interval + 1.0
# A leave reaches everyone in milliseconds on a quiet machine; 2 s covers a loaded CI box
# (1.76 s seen at load 18), and a lost leave would show as DOWN, not LEFT, anyway.
LEFT_BOUND = 10 * CONFIG.gossip_interval + 2.0
CONVERGE_TIMEOUT = 2 * CONFIG.push_pull_interval + 10.0


async def everyone_sees(agents: list[AgentProcess], member: str, status: str) -> bool:
    for agent in agents:
        statuses = await agent.statuses()
        if statuses is None or statuses.get(member) != status:
            return False
    return True


async def start_five(cluster: LocalCluster) -> list[AgentProcess]:
    first = await cluster.start(NAMES[0])
    agents = [first]
    async with trio.open_nursery() as nursery:

        async def start(name: str) -> None:
            agents.append(await cluster.start(name, join=[first.gossip]))

        for name in NAMES[1:]:
            nursery.start_soon(start, name)

    async def converged() -> bool:
        for agent in agents:
            statuses = await agent.statuses()
            if statuses is None or sorted(n for n, s in statuses.items() if s == "up") != list(
                NAMES
            ):
                return False
        return True

    assert await wait_until(converged, CONVERGE_TIMEOUT) is not None, "no convergence"
    return agents


def port_is_free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_five_agents_sigkill_is_down_and_sigterm_is_left_everywhere() -> None:
    used_ports: list[tuple[int, int]] = []
    with trio.fail_after(120):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            agents = await start_five(cluster)
            used_ports += [(a.gossip[1], socket.SOCK_DGRAM) for a in agents]
            used_ports += [(a.gossip[1], socket.SOCK_STREAM) for a in agents]
            used_ports += [(a.http[1], socket.SOCK_STREAM) for a in agents]
            members = await agents[0].members()
            assert {m["name"] for m in members} == set(NAMES)
            for m in members:
                assert set(m) == {"name", "address", "status", "incarnation", "meta"}

            # crash: SIGKILL, and every survivor's /v1/members says DOWN within the bound
            cluster.kill("c")
            assert await cluster.agents["c"].process.wait() == -signal.SIGKILL
            survivors = [a for a in agents if a.name != "c"]
            took = await wait_until(
                lambda: everyone_sees(survivors, "c", "down"), DOWN_BOUND + 10, interval=0.1
            )
            assert took is not None and took <= DOWN_BOUND, f"{took} > {DOWN_BOUND}"

            # graceful: SIGTERM, the agent exits 0 and everyone says LEFT
            assert await cluster.stop("d", signal.SIGTERM) == 0
            assert "left gracefully" in cluster.agents["d"].output()
            remaining = [a for a in survivors if a.name != "d"]
            took = await wait_until(
                lambda: everyone_sees(remaining, "d", "left"), LEFT_BOUND + 10, interval=0.1
            )
            assert took is not None and took <= LEFT_BOUND, f"{took} > {LEFT_BOUND}"
            assert "DOWN     c" in remaining[0].output()
            assert "LEFT     d" in remaining[0].output()

            # Ctrl-C (SIGINT) is a graceful leave too
            assert await cluster.stop("e", signal.SIGINT) == 0
            assert "SIGINT: leaving the cluster" in cluster.agents["e"].output()
            others = [a for a in remaining if a.name != "e"]
            took = await wait_until(
                lambda: everyone_sees(others, "e", "left"), LEFT_BOUND + 10, interval=0.1
            )
            assert took is not None and took <= LEFT_BOUND, f"{took} > {LEFT_BOUND}"
        for agent in agents:
            assert agent.process.returncode is not None  # reaped
    for port, kind in used_ports:
        assert port_is_free(port, kind), f"port {port} still in use"


async def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "swimactors", *args]
    return await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)


async def test_members_command_prints_a_table_and_json() -> None:
    with trio.fail_after(60):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", meta={"role": "web"})
            await cluster.start("b", join=[a.gossip])
            http = f"{a.http[0]}:{a.http[1]}"

            async def both_up() -> bool:
                statuses = await a.statuses()
                return statuses == {"a": "up", "b": "up"}

            assert await wait_until(both_up, CONVERGE_TIMEOUT) is not None
            table = await run_cli("members", "--http", http)
            assert table.returncode == 0
            lines = table.stdout.decode().splitlines()
            assert lines[0].split() == ["NAME", "ADDRESS", "STATUS", "INCARNATION", "META"]
            name, _, status, _, tags = lines[1].split()
            assert (name, status) == ("a", "up")
            assert "role=web" in tags.split(",")  # beside the actor port ("actors=PORT")
            assert lines[2].split()[0] == "b"
            raw = await run_cli("members", "--http", http, "--json")
            members = json.loads(raw.stdout)
            assert all(m["meta"].pop("actors").isdigit() for m in members)  # the actor port
            assert [(m["name"], m["status"], m["meta"]) for m in members] == [
                ("a", "up", {"role": "web"}),
                ("b", "up", {}),
            ]
            assert all(isinstance(m["incarnation"], int) for m in members)


async def test_members_command_fails_clearly_when_no_agent_listens() -> None:
    with socket.socket() as probe:  # bound, not listening: refused, and no one else's port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        result = await run_cli("members", "--http", f"127.0.0.1:{port}", "--timeout", "2")
    assert result.returncode == 2
    assert b"cannot reach" in result.stderr
    assert b"swimactors agent" in result.stderr


async def test_agent_refuses_bad_options_with_a_message() -> None:
    result = await run_cli("agent", "--name", "x", "--bind", "127.0.0.1:0", "--set", "nope=1")
    assert result.returncode == 2
    assert b"no field 'nope'" in result.stderr


async def test_agent_refuses_oversized_metadata_with_a_message() -> None:
    result = await run_cli(
        "agent", "--name", "x", "--bind", "127.0.0.1:0", "--meta", "k=" + "v" * 600
    )
    assert result.returncode == 2
    assert b"the limit is 512" in result.stderr
