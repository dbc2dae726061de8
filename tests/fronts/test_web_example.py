"""The web example end to end: a real uvicorn process serving ``examples.web:app`` next to
two real agents on loopback, driven by an httpx client; every process reaped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from .helpers import agent_process, wait_for

pytestmark = pytest.mark.network

START_BOUND = 60.0
"""Agents up and the service joined: seconds on a loaded machine."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_endpoints_find_actors_on_the_agents_and_ask_them() -> None:
    app = "examples.web_actors:setup"
    with (
        agent_process("a", app) as a,
        agent_process("b", app, [a.gossip_address()]),
    ):
        port = free_port()
        env = dict(os.environ, SWIMACTORS_SEEDS=a.gossip_address(), SWIMACTORS_NAME="web")
        command = [sys.executable, "-m", "uvicorn", "examples.web:app", "--port", str(port)]
        server = subprocess.Popen(command, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            # ready once the service answers and an agent holds the counter (an agent's
            # setup waits 2 s for another's counter before starting its own)
            wait_for(lambda: answers(f"{base}/counter") or server.poll() is not None, START_BOUND)
            assert server.poll() is None, "uvicorn exited"
            with httpx.Client(base_url=base, timeout=10) as client:
                assert client.get("/health").json() == {"node": "web"}
                for key, value in [("colour", "blue"), ("shape", "round"), ("size", "9")]:
                    put = client.put(f"/kv/{key}", content=value)
                    assert put.json() == {"key": key, "written": "majority"}, put.text
                    assert client.get(f"/kv/{key}").json() == {"key": key, "value": value}
                assert client.get("/kv/never-set").status_code == 404
                start = client.get("/counter").json()["value"]
                added = client.post("/counter", params={"add": 5}).json()
                assert added["value"] == start + 5 and added["node"] in {"a", "b"}
                assert client.get("/counter").json()["value"] == start + 5
                assert client.post("/counter", params={"add": "x"}).status_code == 400
            server.send_signal(signal.SIGTERM)  # uvicorn's graceful stop: the node leaves
            assert server.wait(30) in (0, -signal.SIGTERM)  # newer uvicorns re-raise it
            wait_for(lambda: any("LEFT     web" in line for line in a.lines), 10)
        finally:
            if server.poll() is None:
                server.kill()
            server.wait(10)
