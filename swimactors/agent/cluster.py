"""Agent processes on one machine, for the demo, the multi-process tests and benchmarks.

Each agent is a real ``python -m swimactors agent`` process bound to port 0; the cluster
reads its first lines to learn its gossip and HTTP ports.  Leaving the ``async with``
block always terminates and reaps every process, whatever happened inside it.
"""

from __future__ import annotations

import collections
import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..membership.types import Address, format_address, parse_address
from .http import HttpError, http_get

__all__ = ["AgentProcess", "LocalCluster", "open_local_cluster", "wait_until"]

_LISTENING = re.compile(r"listening on (\S+) ")
_HTTP = re.compile(r"HTTP API on http://(\S+)")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class AgentProcess:
    """One running agent: its process, its addresses and its recent output."""

    def __init__(self, name: str, process: trio.Process, command_prefix: Sequence[str]) -> None:
        self.name = name
        self.process = process
        self.gossip: Address = ("", 0)
        self.http: Address = ("", 0)
        self.lines: collections.deque[str] = collections.deque(maxlen=500)
        self._prefix = list(command_prefix)
        self._ready = trio.Event()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def members(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """This agent's ``/v1/members``; raises :class:`HttpError` if it cannot be asked."""
        if not self._prefix:
            status, body = await http_get(self.http, "/v1/members", timeout)
            if status != 200:
                raise HttpError(f"{self.name}: HTTP {status}")
        else:  # inside another network namespace: ask from there with the real CLI
            command = [*self._prefix, sys.executable, "-m", "swimactors", "members", "--json"]
            command += ["--http", format_address(self.http), "--timeout", str(timeout)]
            body = b""
            with trio.move_on_after(timeout + 10):
                result = await trio.run_process(
                    command, capture_stdout=True, capture_stderr=True, check=False
                )
                if result.returncode != 0:
                    raise HttpError(f"{self.name}: members exited {result.returncode}")
                body = result.stdout
            if not body:
                raise HttpError(f"{self.name}: no answer within {timeout + 10:g} s")
        members: list[dict[str, Any]] = json.loads(body)
        return members

    async def statuses(self) -> dict[str, str] | None:
        """``{name: status}`` as this agent sees it, or None when it does not answer."""
        try:
            return {m["name"]: m["status"] for m in await self.members()}
        except (HttpError, ValueError):
            return None

    def output(self) -> str:
        return "\n".join(self.lines)

    async def _read(self, on_line: Callable[[AgentProcess, str], None] | None) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                self._line(raw.decode(errors="replace"), on_line)
        if buffer:
            self._line(buffer.decode(errors="replace"), on_line)
        self._ready.set()  # wake a waiter if the process died before it was ready

    def _line(self, line: str, on_line: Callable[[AgentProcess, str], None] | None) -> None:
        self.lines.append(line)
        if match := _LISTENING.search(line):
            self.gossip = parse_address(match.group(1))
        if match := _HTTP.search(line):
            self.http = parse_address(match.group(1))
            self._ready.set()
        if on_line is not None:
            on_line(self, line)


class LocalCluster:
    """Starts, signals and reaps agent processes; see :func:`open_local_cluster`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        profile: str,
        overrides: Mapping[str, object],
        on_line: Callable[[AgentProcess, str], None] | None,
    ) -> None:
        self._nursery = nursery
        self.profile = profile
        self.overrides = dict(overrides)
        self.on_line = on_line
        self.agents: dict[str, AgentProcess] = {}
        self._all: list[AgentProcess] = []

    async def start(
        self,
        name: str,
        *,
        join: Sequence[Address] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        meta: Mapping[str, str] | None = None,
        command_prefix: Sequence[str] = (),
        app: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> AgentProcess:
        """Start an agent and wait until it listens (``command_prefix``: e.g. netns exec;
        ``app``: ``package.module:setup`` for ``--app``; ``extra_args``: more options,
        e.g. ``["--split-brain", "keep-majority"]``)."""
        command = [*command_prefix, sys.executable, "-u", "-m", "swimactors", "agent"]
        command += ["--name", name, "--bind", format_address((host, port))]
        command += ["--http", format_address((host, 0)), "--profile", self.profile]
        for seed in join:
            command += ["--join", format_address(seed)]
        for key, value in self.overrides.items():
            command += ["--set", f"{key}={value}"]
        for key, value in (meta or {}).items():
            command += ["--meta", f"{key}={value}"]
        if app is not None:
            command += ["--app", app]
        command += extra_args
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        agent = AgentProcess(name, process, command_prefix)
        self._all.append(agent)
        self.agents[name] = agent
        self._nursery.start_soon(agent._read, self.on_line)
        with trio.move_on_after(START_TIMEOUT):
            await agent._ready.wait()
        if not agent.http[1]:
            await self._terminate(agent)
            raise RuntimeError(f"agent {name} did not start:\n{agent.output()}")
        return agent

    def kill(self, name: str) -> AgentProcess:
        """SIGKILL: the process vanishes without telling anyone (a crash)."""
        agent = self.agents[name]
        agent.process.send_signal(signal.SIGKILL)
        return agent

    async def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        """Signal an agent (SIGTERM: graceful leave) and wait for it to exit."""
        agent = self.agents[name]
        agent.process.send_signal(sig)
        with trio.move_on_after(STOP_TIMEOUT):
            return await agent.process.wait()
        return await self._terminate(agent)

    async def aclose(self) -> None:
        """Terminate and reap every process this cluster ever started."""
        with trio.CancelScope(shield=True):
            for agent in self._all:
                if agent.running:
                    agent.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(STOP_TIMEOUT):
                for agent in self._all:
                    await agent.process.wait()
            for agent in self._all:
                await self._terminate(agent)

    @staticmethod
    async def _terminate(agent: AgentProcess) -> int:
        if agent.running:
            agent.process.kill()
        return await agent.process.wait()


@asynccontextmanager
async def open_local_cluster(
    *,
    profile: str = "local",
    overrides: Mapping[str, object] | None = None,
    on_line: Callable[[AgentProcess, str], None] | None = None,
) -> AsyncIterator[LocalCluster]:
    """A :class:`LocalCluster` whose processes are all reaped when the block exits."""
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        cluster = LocalCluster(nursery, profile=profile, overrides=overrides or {}, on_line=on_line)
        try:
            yield cluster
        except BaseException as exc:  # re-raised below, not wrapped in the nursery's group
            body_error = exc
        finally:
            await cluster.aclose()
            nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05
) -> float | None:
    """Poll ``check`` until it is true: the seconds it took, or None on timeout."""
    start = trio.current_time()
    with trio.move_on_after(timeout):
        while not await check():
            await trio.sleep(interval)
        return trio.current_time() - start
    return None
