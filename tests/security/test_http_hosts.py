"""The agent's HTTP API answers only for hosts it is reached by on purpose: an IP address,
``localhost``, or a name it was told (``--http-allow-host``).

Before: any ``Host`` was answered, so a page in the operator's browser whose name the
attacker re-points at 127.0.0.1 (DNS rebinding) could read every GET route (members,
names, tags, key ids, the event log) as a same-origin page."""

from __future__ import annotations

import json
import re

import pytest
import trio

from swimactors.agent.cluster import open_local_cluster
from swimactors.agent.http import allowed_host, http_get
from swimactors.membership.types import Address


async def get_with_host(address: Address, path: str, host: str) -> tuple[int, bytes]:
    """``GET path`` with ``Host: host``, as a browser sends it for a page on that name."""
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            await stream.send_all(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def refused_count(metrics: bytes) -> int:
    found = re.search(rb"^swimactors_http_host_refused_total (\d+)$", metrics, re.M)
    assert found is not None, "the counter is in /metrics"
    return int(found.group(1))


@pytest.mark.network
async def test_a_dns_rebinding_host_is_refused_and_counted() -> None:
    with trio.fail_after(60):
        async with open_local_cluster() as cluster:
            agent = await cluster.start("v", extra_args=["--http-allow-host", "ops.example"])
            port = agent.http[1]
            for path in ("/v1/members", "/v1/info", "/v1/keys", "/metrics", "/ui"):
                status, body = await get_with_host(agent.http, path, f"rebind.example:{port}")
                assert status == 421, (path, status, body[:200])
                assert b"--http-allow-host" in body
            status, _ = await get_with_host(agent.http, "/v1/members", "127.0.0.1.nip.io")
            assert status == 421
            for host in (
                f"127.0.0.1:{port}",
                "127.0.0.1",
                f"[::1]:{port}",
                f"localhost:{port}",
                "LOCALHOST.",
                f"ops.example:{port}",
                "Ops.Example.",
            ):
                status, body = await get_with_host(agent.http, "/v1/members", host)
                assert status == 200, (host, status, body[:200])
                assert [m["name"] for m in json.loads(body)] == ["v"]
            status, metrics = await http_get(agent.http, "/metrics")  # the CLI's client
            assert status == 200
            assert refused_count(metrics) == 6
            members = await agent.members()  # `swimactors members --http HOST:PORT`
            assert [m["name"] for m in members] == ["v"]


def test_which_hosts_are_allowed() -> None:
    names = frozenset({"ops.example"})
    for host in (
        None,  # HTTP/1.0 without a Host: not what a browser sends
        "10.1.2.3:8946",
        "[fe80::1]:80",
        "[::1]",
        "localhost",
        "localhost.:1",
        "ops.example",
        "OPS.example:9",
    ):
        assert allowed_host(host, names), host
    for host in (
        "",
        "evil.example",
        "ops.example.evil.example",
        "localhost.evil.example",
        "127.0.0.1.evil.example:80",
        "[::1",
        "2130706433",
        "sub.localhost",
    ):
        assert not allowed_host(host, names), host
    assert allowed_host("anything.example", frozenset({"*"}))
