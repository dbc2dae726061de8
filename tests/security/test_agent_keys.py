"""Real agents with ``--encrypt``: ``swimactors keygen``, and Serf's three-step rotation
(``keys --install``, ``--use``, ``--remove`` on one agent each) spreads to every agent with
the cluster whole and nobody suspected; a restarted agent's keyring file catches up."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest
import trio

from swimactors.agent.cluster import AgentProcess, open_local_cluster, wait_until
from swimactors.agent.http import http_get, http_request
from swimactors.membership.types import format_address
from swimactors.security import Keyring
from tests.network.fast import CONFIG, OVERRIDES

pytestmark = pytest.mark.network

K1, K2 = base64.b64encode(b"1" * 32).decode(), base64.b64encode(b"2" * 32).decode()
CONVERGE = 2 * CONFIG.push_pull_interval + 10.0


async def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "swimactors", *args]
    return await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)


TOKEN = "secret"


async def keyring(agent: AgentProcess) -> dict[str, Any]:
    status, body = await http_request(agent.http, "GET", "/v1/keys", token=TOKEN)
    assert status == 200
    result: dict[str, Any] = json.loads(body)
    return result


def keys_of(ring: dict[str, Any]) -> tuple[str, list[str]]:
    primary = next(k["key"] for k in ring["keys"] if k["id"] == ring["primary"])
    return primary, sorted(k["key"] for k in ring["keys"])


async def everyone_has(agents: list[AgentProcess], primary: str, keys: list[str]) -> bool:
    rings = [keys_of(await keyring(a)) for a in agents]
    return all(r == (primary, sorted(keys)) for r in rings)


async def all_up(agents: list[AgentProcess]) -> bool:
    names = {a.name for a in agents}
    for agent in agents:
        statuses = await agent.statuses()
        if statuses is None or {n for n, s in statuses.items() if s == "up"} != names:
            return False
    return True


async def test_keygen_prints_a_fresh_base64_key() -> None:
    first, second = await cli("keygen"), await cli("keygen")
    assert first.returncode == 0
    assert len(base64.b64decode(first.stdout.strip(), validate=True)) == 32
    assert first.stdout != second.stdout


async def test_rotation_in_three_steps_keeps_the_cluster_whole(tmp_path: Any) -> None:
    path = tmp_path / "keyring.json"
    Keyring(K1).save(path)
    token = tmp_path / "token"
    token.write_text(f"{TOKEN}\n")
    auth = ["--http-token-file", str(token)]
    with trio.fail_after(90):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", extra_args=["--encrypt", K1, *auth])
            b = await cluster.start("b", join=[a.gossip], extra_args=["--encrypt", K1, *auth])
            c = await cluster.start(
                "c", join=[a.gossip], extra_args=["--keyring-file", str(path), *auth]
            )
            agents = [a, b, c]
            assert await wait_until(lambda: all_up(agents), CONVERGE) is not None

            def http(agent: AgentProcess) -> str:
                return format_address(agent.http)

            steps = [
                (a, "--install", K2, (K1, [K1, K2])),
                (b, "--use", K2, (K2, [K1, K2])),
                (c, "--remove", K1, (K2, [K2])),
            ]
            for agent, flag, key, (primary, keys) in steps:
                result = await cli(
                    "keys", flag, key, "--http", http(agent), "--token-file", str(token)
                )
                assert result.returncode == 0, result.stderr
                took = await wait_until(lambda p=primary, k=keys: everyone_has(agents, p, k), 10)
                assert took is not None, f"{flag} did not reach every agent"
                await trio.sleep(5 * CONFIG.probe_interval)  # let probes run under each step
                assert await all_up(agents)
            listing = await cli("keys", "--list", "--http", http(a), "--token-file", str(token))
            assert listing.stdout.decode().split() == [K2, Keyring(K2).primary_id.hex(), "primary"]
            # without the token the listing names the keys but never shows them
            status, body = await http_get(a.http, "/v1/keys")
            assert status == 200 and K2.encode() not in body
            assert json.loads(body)["keys"] == [{"id": Keyring(K2).primary_id.hex()}]
            assert Keyring.load(path).keys == [base64.b64decode(K2)]  # c saved its file
            refused = await cli(
                "keys", "--remove", K2, "--http", http(a), "--token-file", str(token)
            )
            assert refused.returncode == 1 and b"primary" in refused.stderr
            for agent in agents:
                assert not any(" SUSPECT " in line for line in agent.lines), agent.output()

            # an agent restarted with the old key only is not let in
            stale = await cluster.start("d", join=[a.gossip], extra_args=["--encrypt", K1])
            unauthorised = await cli("keys", "--install", K1, "--http", http(a))
            assert unauthorised.returncode == 1  # state changes need the token
            await trio.sleep(2)
            statuses = await a.statuses()
            assert statuses is not None and "d" not in statuses
            assert (await stale.statuses()) == {"d": "up"}
