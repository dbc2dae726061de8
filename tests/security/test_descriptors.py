"""Connections within the ports' own caps must not run an agent out of file descriptors.

Before: with the usual soft limit of 1,024 open files, 2,200 idle connections to the actor
port and membership's TCP port (from many addresses, each within the per-address caps)
took every descriptor the agent had: its HTTP API and its peers' connections met EMFILE
(the API took 2.5 s to answer, when it answered).  Now the agent raises its soft limit to
what its ports may hold (up to the hard limit) when it starts."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from swimactors.actors.transport import TransportConfig
from swimactors.agent.cluster import open_local_cluster
from swimactors.agent.http import http_get
from swimactors.agent.runner import _descriptors_wanted
from tests.security.test_actor_port import raw_connection
from tests.security.test_attacks import actor_address

pytestmark = pytest.mark.network


@contextmanager
def soft_limit(files: int) -> Iterator[None]:
    """This process's soft limit on open files lowered to ``files`` (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_files_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max open files"))
    return int(line.split()[3])


async def test_an_agent_started_with_1024_files_holds_its_ports_caps() -> None:
    wanted = _descriptors_wanted(TransportConfig())
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < wanted + 2_300:
        pytest.skip(f"the hard limit on open files ({hard}) is below what the test needs")
    with trio.fail_after(90):
        async with open_local_cluster(profile="lan") as cluster:
            with soft_limit(1024):
                victim = await cluster.start("v")
            assert open_files_limit(victim.pid) >= wanted
            held = []
            actors = await actor_address(victim)
            for target in (actors, victim.gossip):
                for i in range(1_100):
                    source = f"127.0.{1 + i // 50}.{1 + i % 50}"
                    held.append(await raw_connection(target, source))
            try:
                with trio.fail_after(2.0):
                    status, _ = await http_get(victim.http, "/v1/health", timeout=2.0)
                assert status == 200
            finally:
                for stream in held:
                    await stream.aclose()
