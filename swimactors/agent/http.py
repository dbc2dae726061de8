"""A small HTTP/1.1 server and client on h11 and trio, with a router other layers extend.

The agent's API is read-only JSON and text, so this stays tiny: a :class:`Router` maps
``(method, path)`` to an async handler, :func:`serve_http` runs it with hard limits on
header and body size, connection count and time, and :func:`http_get` is the client the
CLI uses.  A later layer adds routes with ``router.add("GET", "/v1/actors", handler)``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import h11
import trio

from ..membership.types import Address, format_address

__all__ = [
    "HttpError",
    "Request",
    "Response",
    "Router",
    "http_get",
    "serve_http",
]

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_CONNECTIONS = 64
REQUEST_TIMEOUT = 10.0
"""Seconds a client may take to send a whole request (or stay idle between requests)."""


class HttpError(Exception):
    """An HTTP exchange failed: unreachable server, timeout, or a malformed response."""


@attrs.frozen
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@attrs.frozen
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        body = json.dumps(value, indent=2, sort_keys=True).encode() + b"\n"
        return cls(status, body, "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str | None = None) -> Response:
        return cls(status, text.encode(), content_type or "text/plain; charset=utf-8")

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"error": message, "status": status}, status)


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    """``(method, path) -> handler``; unknown paths get 404, known ones 405 for other methods."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        methods = self._routes.setdefault(path, {})
        if method.upper() in methods:
            raise ValueError(f"{method.upper()} {path} is already routed")
        methods[method.upper()] = handler

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add`."""

        def decorate(handler: Handler) -> Handler:
            self.add(method, path, handler)
            return handler

        return decorate

    @property
    def paths(self) -> list[str]:
        return sorted(self._routes)

    async def dispatch(self, request: Request) -> Response:
        methods = self._routes.get(request.path)
        if methods is None:
            return Response.error(404, f"no such path {request.path}")
        handler = methods.get(request.method)
        if handler is None and request.method == "HEAD":
            handler = methods.get("GET")
        if handler is None:
            allow = ", ".join(sorted(methods))
            return attrs.evolve(
                Response.error(405, f"{request.method} not allowed on {request.path}"),
                headers=(("Allow", allow),),
            )
        try:
            return await handler(request)
        except Exception:
            log.exception("handler for %s %s failed", request.method, request.path)
            return Response.error(500, "internal error")


# -- server --------------------------------------------------------------------------------


async def serve_http(
    router: Router,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``router`` on ``host:port`` until cancelled; reports the bound address."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    sockname = listeners[0].socket.getsockname()
    limiter = trio.CapacityLimiter(MAX_CONNECTIONS)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:  # over the limit: refuse rather than queue
            await stream.aclose()
            return
        try:
            await _serve_connection(router, stream)
        finally:
            limiter.release()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started((sockname[0], sockname[1]))


async def _serve_connection(router: Router, stream: trio.SocketStream) -> None:
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    async with stream:
        try:
            while True:
                with trio.move_on_after(REQUEST_TIMEOUT):
                    request = await _read_request(connection, stream)
                    if request is None:
                        return
                    response = await router.dispatch(request)
                    await _send_response(connection, stream, request.method, response)
                    if connection.our_state is not h11.DONE:
                        return
                    connection.start_next_cycle()
                    continue
                return
        except h11.RemoteProtocolError as exc:
            await _send_bad_request(connection, stream, exc.error_status_hint, str(exc))
        except (
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            h11.LocalProtocolError,
        ):
            pass


async def _read_request(connection: h11.Connection, stream: trio.SocketStream) -> Request | None:
    """The next request, or None when the client closed the connection between requests."""
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY_BYTES:
                raise h11.RemoteProtocolError("request body too large", 413)
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            target = urllib.parse.urlsplit(head.target.decode("latin-1"))
            return Request(
                method=head.method.decode("latin-1").upper(),
                path=target.path,
                query=dict(urllib.parse.parse_qsl(target.query)),
                headers={k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers},
                body=bytes(body),
            )
        else:  # ConnectionClosed or PAUSED
            return None


async def _send_response(
    connection: h11.Connection, stream: trio.SocketStream, method: str, response: Response
) -> None:
    headers = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        ("Server", "swimactors"),
        *response.headers,
    ]
    data = connection.send(h11.Response(status_code=response.status, headers=headers))
    if method != "HEAD":
        data += connection.send(h11.Data(data=response.body))
    data += connection.send(h11.EndOfMessage())
    await stream.send_all(data)


async def _send_bad_request(
    connection: h11.Connection, stream: trio.SocketStream, status: int, message: str
) -> None:
    if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    with contextlib.suppress(
        OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError
    ):
        await _send_response(connection, stream, "GET", Response.error(status, message))


# -- client --------------------------------------------------------------------------------


async def http_get(address: Address, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """``GET path`` from ``address``: ``(status, body)``; :class:`HttpError` on any failure."""
    where = format_address(address)
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(*address)
            async with stream:
                return await _exchange(stream, where, path)
    except trio.TooSlowError:
        raise HttpError(f"no answer from {where} within {timeout:g} s") from None
    except (OSError, trio.BrokenResourceError) as exc:
        raise HttpError(f"cannot reach {where}: {exc}") from None
    except h11.ProtocolError as exc:
        raise HttpError(f"bad HTTP response from {where}: {exc}") from None


async def _exchange(stream: trio.SocketStream, where: str, path: str) -> tuple[int, bytes]:
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="GET",
        target=path,
        headers=[("Host", where), ("Connection", "close"), ("Accept", "*/*")],
    )
    await stream.send_all(connection.send(request) + connection.send(h11.EndOfMessage()))
    status = 0
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_RESPONSE_BYTES:
                raise HttpError(f"response from {where} is too large")
        elif isinstance(event, h11.EndOfMessage):
            return status, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            raise HttpError(f"{where} closed the connection mid-response")
