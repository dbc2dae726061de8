"""Real agents with ``--tls-cert``, ``--tls-key`` and ``--tls-ca``: two agents with their
own certificates form a cluster; an agent whose certificate names another node, or given
only some of the flags, refuses to start with one line saying why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trustme

from swimactors.agent.cluster import AgentProcess, open_local_cluster, wait_until
from tests.network.fast import CONFIG, OVERRIDES

pytestmark = pytest.mark.network

CONVERGE = 2 * CONFIG.push_pull_interval + 10.0


def tls_flags(ca: trustme.CA, directory: Path, *names: str) -> list[str]:
    issued = ca.issue_cert(*names)
    stem = directory / "-".join(names)
    issued.cert_chain_pems[0].write_to_path(f"{stem}.crt")
    issued.private_key_pem.write_to_path(f"{stem}.key")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    return [
        "--tls-cert",
        f"{stem}.crt",
        "--tls-key",
        f"{stem}.key",
        "--tls-ca",
        f"{directory}/ca.pem",
    ]


async def agent(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "swimactors", "agent", *args]
    with trio.fail_after(30):
        return await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )


async def all_up(agents: list[AgentProcess]) -> bool:
    names = {a.name for a in agents}
    for member in agents:
        statuses = await member.statuses()
        if statuses is None or {n for n, s in statuses.items() if s == "up"} != names:
            return False
    return True


async def test_agents_with_tls_flags_form_a_cluster(tmp_path: Path) -> None:
    ca = trustme.CA()
    with trio.fail_after(60):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", extra_args=tls_flags(ca, tmp_path, "a"))
            b = await cluster.start("b", join=[a.gossip], extra_args=tls_flags(ca, tmp_path, "b"))
            assert await wait_until(lambda: all_up([a, b]), CONVERGE) is not None


async def test_an_agent_with_bad_tls_flags_refuses_to_start(tmp_path: Path) -> None:
    ca = trustme.CA()
    wrong = await agent("--name", "a", "--bind", "127.0.0.1:0", *tls_flags(ca, tmp_path, "x"))
    assert wrong.returncode == 2
    assert b"names x, not the node 'a'" in wrong.stderr
    partial = await agent("--name", "a", "--bind", "127.0.0.1:0", "--tls-cert", "a.crt")
    assert partial.returncode == 2
    assert b"--tls-cert, --tls-key and --tls-ca go together" in partial.stderr
