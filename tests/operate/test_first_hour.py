"""What a new user meets in the first hour: one-line startup errors with exit status 2,
``--app`` from the working directory, ``--version``, refused names, clear errors for
hooks and message fields, and warnings for a cluster that is misconfigured."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

import swimactors
from swimactors import Actor, message
from swimactors.agent.cluster import open_local_cluster, wait_until
from swimactors.agent.logs import _Formatter as AgentFormatter
from swimactors.agent.runner import StartupError, describe_event, startup_failure
from swimactors.logs import printable
from swimactors.membership.types import Member, MemberUp, Status
from tests.network.fast import OVERRIDES

SCRIPT = Path(sys.executable).parent / "swimactors"  # the installed console script


async def run_agent_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the console script (not ``python -m``, which would put the cwd on the path)."""
    command = [str(SCRIPT), *args]
    with trio.fail_after(30):
        return await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False, cwd=cwd
        )


def one_line(result: subprocess.CompletedProcess[bytes]) -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr.decode()
    return lines[0]


def test_startup_failure_unwraps_nested_exception_groups() -> None:
    error = BaseExceptionGroup(
        "outer", [ExceptionGroup("inner", [StartupError("cannot serve HTTP on x:1: in use")])]
    )
    assert startup_failure(error) == "cannot serve HTTP on x:1: in use"
    assert startup_failure(KeyError("k")) == "KeyError: 'k'"
    assert startup_failure(RuntimeError()) == "RuntimeError"


def test_names_from_the_network_are_printed_escaped() -> None:
    member = Member("evil\x1b[2J", ("127.0.0.1", 1), 1, Status.UP)
    line = describe_event(MemberUp(member, 0.0))
    assert "\x1b" not in line and "evil\\x1b[2J" in line
    assert printable("plain") == "plain"


def test_a_logged_exception_from_the_network_is_printed_escaped() -> None:
    """The agent escaped log messages but not the tracebacks after them, where an
    exception's message (a peer's words, say a remote error) reached the terminal raw."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(AgentFormatter("n0"))
    logger = logging.getLogger("swimactors.test.escaped")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise ValueError("from a peer: \x1b[2J\x07")
    except ValueError:
        logger.exception("it failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[2J\\x07" in text
    assert "Traceback (most recent call last):\n" in text  # lines stay lines


def test_a_plain_def_hook_is_refused_where_it_is_written() -> None:
    with pytest.raises(TypeError, match=r"Bad.on_start must be `async def`"):

        class Bad(Actor):
            def on_start(self) -> None:  # type: ignore[override]
                pass


def test_message_refuses_object_fields() -> None:
    with pytest.raises(TypeError, match="`object` cannot be a message field"):

        @message
        class Loose:
            x: object


@pytest.mark.network
async def test_version_and_an_empty_name() -> None:
    version = await run_agent_cli("--version")
    assert version.returncode == 0
    assert version.stdout.decode().strip() == f"swimactors {swimactors.__version__}"
    empty = await run_agent_cli("agent", "--name", "", "--bind", "127.0.0.1:0")
    assert empty.returncode == 2
    assert "a node name cannot be empty" in empty.stderr.decode()
    control = await run_agent_cli("agent", "--name", "a\x07", "--bind", "127.0.0.1:0")
    assert control.returncode == 2
    assert "must be printable" in control.stderr.decode()


@pytest.mark.network
async def test_http_port_in_use_is_one_line_naming_the_address() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        http = f"127.0.0.1:{busy.getsockname()[1]}"
        result = await run_agent_cli(
            "agent", "--name", "a", "--bind", "127.0.0.1:0", "--http", http
        )
    assert result.returncode == 2
    assert (
        one_line(result) == f"swimactors agent: cannot serve HTTP on {http}: Address already in use"
    )


@pytest.mark.network
async def test_app_is_imported_from_the_working_directory_and_its_failure_is_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "myapp.py").write_text(
        textwrap.dedent(
            """
            async def setup(system):
                raise RuntimeError("database unreachable")
            """
        )
    )
    result = await run_agent_cli(
        "agent", "--name", "a", "--bind", "127.0.0.1:0", "--app", "myapp:setup", cwd=tmp_path
    )
    assert result.returncode == 2
    assert one_line(result) == (
        "swimactors agent: --app myapp:setup: setup raised RuntimeError: database unreachable"
    )
    missing = await run_agent_cli(
        "agent", "--name", "a", "--bind", "127.0.0.1:0", "--app", "nowhere:setup", cwd=tmp_path
    )
    assert missing.returncode == 2
    assert one_line(missing).startswith("swimactors agent: --app nowhere:setup: cannot import")


@pytest.mark.network
async def test_label_mismatch_and_duplicate_names_are_warned_about() -> None:
    with trio.fail_after(60):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a")
            other = await cluster.start(
                "stranger", join=[a.gossip], extra_args=["--set", "label=elsewhere"]
            )

            async def refused() -> bool:
                return "packets from another cluster were refused" in a.output()

            assert await wait_until(refused, 15) is not None, a.output()
            assert "--set label=" in a.output()
            await cluster.stop(other.name)
            b = await cluster.start("b", join=[a.gossip])
            twin = await cluster.start("a", join=[b.gossip])

            async def warned() -> bool:
                return "every agent needs its own --name" in b.output()

            assert await wait_until(warned, 15) is not None, b.output() + twin.output()


@pytest.mark.network
async def test_a_split_brain_rule_on_some_agents_only_is_warned_about() -> None:
    with trio.fail_after(60):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", extra_args=["--split-brain", "keep-majority"])
            b = await cluster.start("b", join=[a.gossip])

            async def warned() -> bool:
                return (
                    "member b runs without a split-brain rule while this agent uses keep-majority"
                    in a.output()
                    and "member a runs a split-brain rule and this agent none" in b.output()
                )

            assert await wait_until(warned, 20) is not None, a.output() + b.output()


def test_untrusted_mode_and_debug_errors_reach_the_actor_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from swimactors import cli
    from swimactors.agent import runner

    started: list[runner.AgentOptions] = []

    async def fake_run_agent(options: runner.AgentOptions) -> None:
        started.append(options)

    monkeypatch.setattr(runner, "run_agent", fake_run_agent)
    base = ["agent", "--name", "a", "--bind", "127.0.0.1:0"]
    assert cli.main([*base, "--untrusted", "--trust", "watch", "--debug-errors"]) == 0
    transport = started[-1].transport
    assert transport.untrusted and transport.trusted == {"watch"} and transport.debug
    assert cli.main(base) == 0
    assert not started[-1].transport.untrusted and not started[-1].transport.debug
    assert cli.main([*base, "--trust", "spawn"]) == 2  # --trust without --untrusted
    with pytest.raises(SystemExit):
        cli.main([*base, "--untrusted", "--trust", "stop"])
