"""Every operator command against real agents: members filters, join, leave, tags, user
events with handlers, queries answered by the matching nodes, monitor, info, version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import swimactors
from swimactors.agent.cluster import AgentProcess, LocalCluster, open_local_cluster, wait_until
from swimactors.membership.types import format_address
from tests.network.fast import OVERRIDES

pytestmark = pytest.mark.network
TOKEN = "t0ken-for-tests"


async def cli(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SWIMACTORS_HTTP_TOKEN"}
    if token is not None:
        env["SWIMACTORS_HTTP_TOKEN"] = token
    command = [sys.executable, "-m", "swimactors", *args]
    with trio.fail_after(30):
        return await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False, env=env
        )


async def cli_json(agent: AgentProcess, *args: str) -> Any:
    result = await cli(*args, "--http", format_address(agent.http), "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def handlers(tmp: Path) -> list[str]:
    """A user-event handler that records its environment and stdin, a member-join one, and
    a query handler that answers with the node's name."""
    record = (
        'user:deploy=printf "%s %s %s " "$SWIMACTORS_EVENT" "$SWIMACTORS_USER_EVENT" '
        f'"$SWIMACTORS_SELF_NAME" >> {tmp}/"$SWIMACTORS_SELF_NAME".user; cat >> '
        f'{tmp}/"$SWIMACTORS_SELF_NAME".user'
    )
    joined = f'member-join=cat >> {tmp}/"$SWIMACTORS_SELF_NAME".joins'
    answer = 'query:whoami=printf "I am %s" "$SWIMACTORS_SELF_NAME"'
    return [arg for h in (record, joined, answer) for arg in ("--event-handler", h)]


async def start(
    cluster: LocalCluster, name: str, tmp: Path, join: list[AgentProcess], role: str
) -> AgentProcess:
    (tmp / "token").write_text(TOKEN + "\n")
    extra = ["--http-token-file", str(tmp / "token"), *handlers(tmp)]
    return await cluster.start(
        name, join=[a.gossip for a in join], meta={"role": role}, extra_args=extra
    )


async def test_operator_commands_against_real_agents(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await start(cluster, "a", tmp_path, [], "api")
            b = await start(cluster, "b", tmp_path, [a], "web")
            c = await start(cluster, "c", tmp_path, [a], "db")

            async def all_up() -> bool:
                members = await cli_json(a, "members", "--status", "up")
                return [m["name"] for m in members] == ["a", "b", "c"]

            assert await wait_until(all_up, 20) is not None

            # members: filters by tag (a regular expression) and by name
            web = await cli_json(a, "members", "--tag", "role=w.b")
            assert [m["name"] for m in web] == ["b"]
            assert [m["name"] for m in await cli_json(a, "members", "--name", "[bc]")] == ["b", "c"]
            detailed = await cli("members", "--http", format_address(a.http), "--detailed")
            assert "  tag role: api" in detailed.stdout.decode()

            # the member-join handler ran on a for b and c, the member on stdin
            async def joins_seen() -> bool:
                path = tmp_path / "a.joins"
                return path.exists() and {"b", "c"} <= {
                    line.split("\t")[0] for line in path.read_text().splitlines()
                }

            assert await wait_until(joins_seen, 10) is not None

            # a user event reaches every member's handler with its environment and payload
            sent = await cli_json(b, "event", "deploy", "v1.2")
            assert sent["name"] == "deploy"

            async def handled() -> bool:
                return all(
                    (tmp_path / f"{n}.user").exists()
                    and (tmp_path / f"{n}.user").read_text() == f"user deploy {n} v1.2"
                    for n in "abc"
                )

            assert await wait_until(handled, 10) is not None

            # state changes need the token; reads do not
            refused = await cli("event", "deploy", "--http", format_address(a.http), token=None)
            assert refused.returncode == 1
            assert "bearer token" in refused.stderr.decode()
            wrong = await cli("tags", "--set", "x=y", "--http", format_address(a.http), token="no")
            assert wrong.returncode == 1

            # a query is answered by the matching nodes only, within its timeout
            answered = await cli_json(
                a, "query", "whoami", "--tag", "role=web|db", "--query-timeout", "1.5"
            )
            assert answered["answers"] == {"b": "I am b", "c": "I am c"}
            everyone = await cli_json(c, "query", "whoami", "--query-timeout", "1.5")
            assert everyone["answers"] == {n: f"I am {n}" for n in "abc"}
            only_a = await cli_json(b, "query", "whoami", "--node", "a", "--query-timeout", "1")
            assert only_a["answers"] == {"a": "I am a"}

            # tags at run time spread to the others
            assert (await cli_json(c, "tags", "--set", "zone=eu", "--delete", "role"))["tags"] == {
                "actors": (await cli_json(c, "info"))["tags"]["actors"],
                "zone": "eu",
            }

            async def tag_seen() -> bool:
                members = await cli_json(a, "members", "--tag", "zone=eu")
                return [m["name"] for m in members] == ["c"]

            assert await wait_until(tag_seen, 10) is not None

            # info: the node, its config, counters and quorum state
            info = await cli_json(a, "info")
            assert info["agent"]["name"] == "a"
            assert info["agent"]["version"] == swimactors.__version__
            assert info["config"]["probe_interval"] == OVERRIDES["probe_interval"]
            assert info["members"]["up"] == 3 and info["quorum"] == "off"
            assert info["counters"]["packets_received"] > 0

            # monitor streams what happens from now on
            (hello,) = await monitored(a, b, "hello", lambda e: e.get("name") == "hello")
            assert (hello["kind"], hello["origin"], hello["payload"]) == ("user", "b", "")

            # join and leave: d starts alone, is told to join, then to leave
            d = await start(cluster, "d", tmp_path, [], "spare")
            joined = await cli_json(d, "join", format_address(a.gossip))
            assert joined["joining"] == [format_address(a.gossip)]

            async def four() -> bool:
                return len(await cli_json(d, "members", "--status", "up")) == 4

            assert await wait_until(four, 15) is not None
            left = await cli_json(d, "leave")
            assert left == {"leaving": "d"}
            with trio.fail_after(15):
                assert await d.process.wait() == 0

            async def d_left() -> bool:
                members = await cli_json(a, "members", "--status", "left")
                return [m["name"] for m in members] == ["d"]

            assert await wait_until(d_left, 10) is not None

            rtt = await cli_json(a, "rtt", "b")
            assert rtt["node"] == "b" and 0 < rtt["rtt"] < 1 and len(rtt["samples"]) == 3
            nobody = await cli("rtt", "zed", "--http", format_address(a.http))
            assert nobody.returncode == 1 and "no live member 'zed'" in nobody.stderr.decode()

            version = await cli("version", "--http", format_address(a.http))
            assert version.stdout.decode().splitlines() == [
                f"swimactors {swimactors.__version__}",
                f"agent a at {format_address(a.http)}: swimactors {swimactors.__version__}",
            ]


async def test_force_leave_turns_a_failed_member_left_everywhere(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await start(cluster, "a", tmp_path, [], "api")
            b = await start(cluster, "b", tmp_path, [a], "web")
            await start(cluster, "c", tmp_path, [a], "db")

            async def statuses(agent: AgentProcess) -> dict[str, str]:
                return {m["name"]: m["status"] for m in await cli_json(agent, "members")}

            async def c_is(status: str) -> bool:
                return [(await statuses(x)).get("c") for x in (a, b)] == [status, status]

            assert await wait_until(lambda: c_is("up"), 20) is not None
            refused = await cli("force-leave", "b", "--http", format_address(a.http))
            assert refused.returncode == 1
            assert "b is up here; only a down member can be forced" in refused.stderr.decode()
            cluster.kill("c")
            assert await wait_until(lambda: c_is("down"), 20) is not None
            assert await cli_json(a, "force-leave", "c") == {"left": "c"}
            assert await wait_until(lambda: c_is("left"), 10) is not None


async def test_monitor_shows_log_lines_too(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    extra = ["--event-handler", "user:fail=exit 3", "--http-token-file", str(tmp_path / "token")]
    with trio.fail_after(60):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", extra_args=extra)
            (entry,) = await monitored(a, a, "fail", lambda e: e["kind"] == "log")
            assert entry["level"] == "WARNING"
            assert entry["message"] == "event handler 'exit 3' exited 3"


async def monitored(
    watched: AgentProcess, sender: AgentProcess, event: str, wanted: Any
) -> list[dict[str, Any]]:
    """The monitor's entries that ``wanted`` picks, after ``sender`` sends ``event``."""
    command = [sys.executable, "-m", "swimactors", "monitor", "--format", "json"]
    command += ["--http", format_address(watched.http)]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    try:
        await trio.sleep(1.0)  # monitor has asked where the log ends
        sent = await cli("event", event, "--http", format_address(sender.http))
        assert sent.returncode == 0, sent.stderr
        assert process.stdout is not None
        seen: list[dict[str, Any]] = []
        buffer = b""
        with trio.fail_after(10):
            while not any(wanted(e) for e in seen):
                buffer += await process.stdout.receive_some(4096)
                *lines, buffer = buffer.split(b"\n")
                seen += [json.loads(line) for line in lines if line]
        return [e for e in seen if wanted(e)]
    finally:
        process.kill()
        await process.wait()
