"""The HTTP endpoint's limits (issue 12, item 4): headers bounded however they arrive, slow
clients unable to lock others out, a bearer token for anything that changes state."""

from __future__ import annotations

import json

import pytest
import trio

from swimactors.agent.http import (
    LONG_ANSWER,
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    Request,
    Response,
    Router,
    http_get,
    http_request,
    serve_http,
)

pytestmark = pytest.mark.network


async def echo(request: Request) -> Response:
    return Response.json({"method": request.method, "body": request.body.decode()})


async def forever(request: Request) -> Response:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


def router(token: str | None) -> Router:
    routes = Router(token)
    routes.add("GET", "/v1/read", echo)
    routes.add("GET", "/v1/wait", forever)  # a long poll, an event stream
    routes.add("POST", "/v1/change", echo)
    return routes


async def test_headers_over_the_limit_in_one_read_are_refused() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(serve_http, router(None), "127.0.0.1", 0)
            for size in (MAX_HEADER_BYTES + 100, 20_000, 60_000):
                stream = await trio.open_tcp_stream(*address)
                head = b"GET /v1/read HTTP/1.1\r\nHost: x\r\n"
                head += b"".join(b"X-%d: %s\r\n" % (i, b"a" * 900) for i in range(size // 906 + 1))
                await stream.send_all(head + b"\r\n")  # one write: h11 sees it whole
                reply = await stream.receive_some(4096)
                assert reply.startswith(b"HTTP/1.1 431"), (size, reply[:80])
                await stream.aclose()
            assert (await http_get(address, "/v1/read"))[0] == 200
            nursery.cancel_scope.cancel()


async def test_slow_clients_do_not_lock_others_out() -> None:
    """MAX_CONNECTIONS clients each send half a request and stall; a new client is still
    answered at once (it takes the place of the one that stalled longest)."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(serve_http, router(None), "127.0.0.1", 0)
            stalled = []
            for _ in range(MAX_CONNECTIONS + 8):
                stream = await trio.open_tcp_stream(*address)
                await stream.send_all(b"GET /v1/read HTTP/1.1\r\nHost: x\r\n")
                stalled.append(stream)
            await trio.sleep(0.2)
            start = trio.current_time()
            for _ in range(5):
                status, _ = await http_get(address, "/v1/read", timeout=2)
                assert status == 200
            assert trio.current_time() - start < 2.0
            for stream in stalled:
                await stream.aclose()
            nursery.cancel_scope.cancel()


async def test_answers_held_open_do_not_lock_others_out() -> None:
    """MAX_CONNECTIONS clients each start an answer that never ends (a long poll, an event
    stream, or a client that does not read its answer); once they have been answered for
    LONG_ANSWER, a new client takes the place of the oldest (before: refused until they
    ended, for ever with event streams)."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(serve_http, router(None), "127.0.0.1", 0)
            held = []
            for _ in range(MAX_CONNECTIONS):
                stream = await trio.open_tcp_stream(*address)
                await stream.send_all(b"GET /v1/wait HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                held.append(stream)
            await trio.sleep(LONG_ANSWER + 0.1)
            for _ in range(5):
                status, _ = await http_get(address, "/v1/read", timeout=2)
                assert status == 200
            for stream in held:
                await stream.aclose()
            nursery.cancel_scope.cancel()


async def test_state_changes_need_the_bearer_token() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            guarded = await nursery.start(serve_http, router("s3cret"), "127.0.0.1", 0)
            open_ = await nursery.start(serve_http, router(None), "127.0.0.1", 0)
            status, body = await http_request(guarded, "POST", "/v1/change", {"x": 1})
            assert status == 401 and b"bearer token" in body
            status, _ = await http_request(guarded, "POST", "/v1/change", {}, token="wrong")
            assert status == 401
            status, body = await http_request(
                guarded, "POST", "/v1/change", {"x": 1}, token="s3cret"
            )
            assert status == 200
            assert json.loads(body) == {"method": "POST", "body": '{"x": 1}'}
            # reads need no token; a router without a token changes nothing at all
            assert (await http_get(guarded, "/v1/read"))[0] == 200
            status, body = await http_request(open_, "POST", "/v1/change", {}, token="any")
            assert status == 403 and b"HTTP token" in body
            nursery.cancel_scope.cancel()
