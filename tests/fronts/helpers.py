"""Shared by the fronts' network tests: polling, blocking clusters, a node blocked among
peers, and peer processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest

from swimactors.membership import (
    BlockingNode,
    MemberDown,
    MemberEvent,
    MemberSuspect,
    Status,
    start_node,
)
from swimactors.membership.events import EventsDropped
from swimactors.membership.types import Address, format_address

from .timing import CONFIG, CONVERGE_BOUND, suspicion_timeout


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` holds, polled; fails the test after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not reached within {timeout:.1f} s")
        time.sleep(0.02)
    return time.monotonic() - start


def sees_up(node: BlockingNode, names: set[str]) -> bool:
    return {m.name for m in node.members() if m.status is Status.UP} >= names


@contextmanager
def blocking_cluster(names: str, seeds: list[Address]) -> Iterator[list[BlockingNode]]:
    """Blocking nodes named by the letters of ``names``, joined through ``seeds`` (or the
    first of them), all seeing one another UP."""
    with ExitStack() as stack:
        nodes: list[BlockingNode] = []
        for name in names:
            join = seeds or [n.address for n in nodes[:1]]
            nodes.append(
                stack.enter_context(
                    start_node(name=name, bind="127.0.0.1:0", seeds=join, config=CONFIG)
                )
            )
        wait_for(lambda: all(sees_up(n, set(names)) for n in nodes), CONVERGE_BOUND)
        yield nodes


# -- a blocked application thread ----------------------------------------------------------

BLOCK = 3 * suspicion_timeout(3)
"""How long the application thread blocks: three times the suspicion timeout."""


def suspicions_of(events: list[MemberEvent | EventsDropped], name: str) -> list[MemberEvent]:
    return [
        e for e in events if isinstance(e, MemberSuspect | MemberDown) and e.member.name == name
    ]


def block_with_peers(run_node: Callable[[Address, Callable[[], None]], None]) -> list[MemberEvent]:
    """Peers b and c on membership threads; ``run_node(seed, on_up)`` runs node a, which
    must call ``on_up()`` once joined and then block its thread for :data:`BLOCK` seconds,
    during which c leaves.  Returns what b saw happen to a."""
    with blocking_cluster("bc", []) as (b, c), b.events() as seen:
        leave = threading.Timer(BLOCK / 3, c.leave)

        def a_is_up_everywhere() -> None:
            wait_for(lambda: sees_up(b, {"a"}) and sees_up(c, {"a"}), CONVERGE_BOUND)
            leave.start()

        run_node(b.address, a_is_up_everywhere)
        leave.join()
        time.sleep(CONFIG.probe_interval)  # let b finish the probe of a that was in flight
        return suspicions_of(list(iter(lambda: seen.get(0), None)), "a")


# -- across OS processes --------------------------------------------------------------------


class PeerProcess:
    """``tests/fronts/peer.py`` in its own process, its output lines collected by a thread."""

    def __init__(self, name: str, seed: Address) -> None:
        command = [sys.executable, "-u", "-m", "tests.fronts.peer", name, format_address(seed)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def saw(self, line: str) -> bool:
        return line in self.lines

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@contextmanager
def peer_process(name: str, seed: Address) -> Iterator[PeerProcess]:
    """A started peer process, killed and reaped at the end whatever happens."""
    peer = PeerProcess(name, seed)
    try:
        wait_for(lambda: any(line.startswith("address ") for line in peer.lines), 30)
        yield peer
    finally:
        peer.close()


class AgentProcess:
    """A real ``swimactors agent`` (profile ``local``) with ``--app``, for asyncio and
    blocking programs to join; its output lines collected by a thread."""

    def __init__(self, name: str, app: str, seeds: list[str]) -> None:
        command = [sys.executable, "-u", "-m", "swimactors", "agent", "--name", name]
        command += ["--bind", "127.0.0.1:0", "--profile", "local", "--app", app]
        for seed in seeds:
            command += ["--join", seed]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def gossip_address(self) -> str:
        for line in self.lines:
            if " listening on " in line:
                return line.split(" listening on ")[1].split()[0]
        return ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait(10)


@contextmanager
def agent_process(name: str, app: str, seeds: list[str] | None = None) -> Iterator[AgentProcess]:
    """A started agent (listening), terminated and reaped at the end whatever happens."""
    agent = AgentProcess(name, app, seeds or [])
    try:
        wait_for(lambda: bool(agent.gossip_address()) or agent.process.poll() is not None, 30)
        assert agent.gossip_address(), "\n".join(agent.lines)
        yield agent
    finally:
        agent.close()
