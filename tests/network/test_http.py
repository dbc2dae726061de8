"""The agent's HTTP layer: router rules, the h11 server and client on loopback, the JSON
contract of /v1/members and the Prometheus text format."""

from __future__ import annotations

import contextlib
import json

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors.agent.api import member_json
from swimactors.agent.http import (
    HttpError,
    Request,
    Response,
    Router,
    _serve_connection,
    http_get,
    serve_http,
)
from swimactors.agent.prometheus import render_metrics
from swimactors.membership.meta import encode_meta
from swimactors.membership.types import Member, Status


def request(method: str, path: str) -> Request:
    return Request(method=method, path=path, query={}, headers={})


async def ok(request: Request) -> Response:
    return Response.json({"path": request.path, "query": request.query})


async def test_router_routes_and_refuses() -> None:
    router = Router()
    router.add("GET", "/a", ok)

    async def boom(request: Request) -> Response:
        raise RuntimeError("bug")

    router.add("GET", "/boom", boom)
    assert (await router.dispatch(request("GET", "/a"))).status == 200
    assert (await router.dispatch(request("HEAD", "/a"))).status == 200
    assert (await router.dispatch(request("GET", "/nope"))).status == 404
    refused = await router.dispatch(request("POST", "/a"))
    assert refused.status == 405
    assert ("Allow", "GET") in refused.headers
    assert (await router.dispatch(request("GET", "/boom"))).status == 500
    with pytest.raises(ValueError, match="already routed"):
        router.add("get", "/a", ok)


@pytest.mark.network
async def test_server_and_client_round_trip_on_loopback() -> None:
    router = Router()
    router.add("GET", "/v1/echo", ok)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(serve_http, router, "127.0.0.1", 0)
            status, body = await http_get(address, "/v1/echo?x=1")
            assert status == 200
            assert json.loads(body) == {"path": "/v1/echo", "query": {"x": "1"}}
            status, body = await http_get(address, "/missing")
            assert status == 404
            assert json.loads(body)["error"].startswith("no such path")
            # garbage instead of HTTP gets a 400 and the server keeps serving
            stream = await trio.open_tcp_stream(*address)
            await stream.send_all(b"\x00\x01 not http at all\r\n\r\n")
            reply = await stream.receive_some(4096)
            assert reply.startswith(b"HTTP/1.1 400")
            await stream.aclose()
            # headers over the limit are refused too
            stream = await trio.open_tcp_stream(*address)
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000)
            reply = await stream.receive_some(4096)
            assert reply.startswith(b"HTTP/1.1 4")
            await stream.aclose()
            assert (await http_get(address, "/v1/echo"))[0] == 200
            nursery.cancel_scope.cancel()


@pytest.mark.network
async def test_client_reports_an_unreachable_server_clearly() -> None:
    with trio.socket.socket() as held:  # bound, never listening: refused, and kept from
        await held.bind(("127.0.0.1", 0))  # another process (a closed port could be reused)
        port = held.getsockname()[1]
        with pytest.raises(HttpError, match=r"cannot reach 127\.0\.0\.1"):
            await http_get(("127.0.0.1", port), "/v1/members", timeout=5)


def test_member_json_follows_the_contract() -> None:
    member = Member("web-1", ("::1", 7946), 42, Status.SUSPECT, encode_meta({"role": "web"}))
    assert member_json(member) == {
        "name": "web-1",
        "address": "[::1]:7946",
        "status": "suspect",
        "incarnation": 42,
        "meta": {"role": "web"},
    }


def test_metrics_are_prometheus_text() -> None:
    counters = {
        "sent_ping": 3,
        "bytes_sent_ping": 27,
        "received_ack": 2,
        "rejected_malformed": 1,
        "probe_failures": 4,
        "suspicions_raised": 1,
        "suspicions_refuted": 0,
    }
    text = render_metrics({"up": 3, "down": 1}, counters, awareness=2)
    lines = text.splitlines()
    assert 'swimactors_members{status="up"} 3' in lines
    assert 'swimactors_members{status="down"} 1' in lines
    assert "swimactors_awareness 2" in lines
    assert 'swimactors_messages_sent_total{type="ping"} 3' in lines
    assert 'swimactors_message_bytes_sent_total{type="ping"} 27' in lines
    assert 'swimactors_messages_received_total{type="ack"} 2' in lines
    assert 'swimactors_packets_rejected_total{reason="malformed"} 1' in lines
    assert "swimactors_probe_failures_total 4" in lines
    assert "swimactors_suspicions_raised_total 1" in lines
    assert "swimactors_suspicions_refuted_total 0" in lines
    # each family is declared exactly once, before its samples
    types = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(types) == len(set(types))
    for line in lines:
        if not line.startswith("#"):
            name = line.split("{")[0].split()[0]
            assert f"# TYPE {name} " in text


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_the_server_survives_any_bytes(chunks: list[bytes]) -> None:
    """Whatever a client sends, a connection ends cleanly: an answer or a close, never an
    exception and never a hang."""

    async def scenario() -> None:
        router = Router()
        router.add("GET", "/a", ok)
        client, server = trio.testing.memory_stream_pair()
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_serve_connection, router, server)
                for chunk in chunks:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await client.send_all(chunk)
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await client.send_eof()
                reply = b""
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    while data := await client.receive_some():
                        reply += data
                assert reply == b"" or reply.startswith(b"HTTP/1.1 ")

    trio.run(scenario)
