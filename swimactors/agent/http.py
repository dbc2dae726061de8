"""A small HTTP/1.1 server and client on h11 and trio, with a router other layers extend.

A :class:`Router` maps ``(method, path)`` to an async handler; :func:`serve_http` runs it
with hard limits on header and body size (however the bytes arrive), connection count and
time, where a new client may take the place of one that is slow to send its request, so
slow clients cannot lock others out.  A request's ``Host`` must be an IP address,
``localhost`` or a name the router allows (421 otherwise), so a DNS-rebinding page in a
browser on the operator's machine cannot read the API.  Anything but ``GET``/``HEAD``
changes state and needs ``Authorization: Bearer TOKEN`` with the router's token (a router
without one refuses such requests).  :func:`http_request` and :func:`http_get` are the
client the CLI uses.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import attrs
import h11
import trio

from ..logs import logger
from ..membership.types import Address, format_address

__all__ = [
    "HttpError",
    "Request",
    "Response",
    "Router",
    "allowed_host",
    "http_get",
    "http_request",
    "serve_http",
]

log = logger(__name__)

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_CONNECTIONS = 64
REQUEST_TIMEOUT = 10.0
"""Seconds a client may take to send a whole request (or stay idle between requests)."""
LONG_ANSWER = 0.5
"""Seconds after which a connection still being answered may give its place to a new
client when every place is taken (see :class:`_Connections`)."""
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


class HttpError(Exception):
    """An HTTP exchange failed: unreachable server, timeout, or a malformed response."""


@attrs.frozen
class Request:
    """An HTTP request as a handler sees it: the body read whole, within the limits."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@attrs.frozen
class Response:
    """What a handler returns: a whole body, or a ``stream`` of chunks."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    stream: Callable[[], AsyncIterator[bytes]] | None = None
    """Sent chunk by chunk instead of ``body`` (server-sent events), until it ends."""

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        """``value`` as indented JSON."""
        body = json.dumps(value, indent=2, sort_keys=True).encode() + b"\n"
        return cls(status, body, "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str | None = None) -> Response:
        """``text`` as UTF-8 plain text (or ``content_type``)."""
        return cls(status, text.encode(), content_type or "text/plain; charset=utf-8")

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        """An error as JSON: ``{"error": message, "status": status}``."""
        return cls.json({"error": message, "status": status}, status)


Handler = Callable[[Request], Awaitable[Response]]


def _host_name(host: str) -> str:
    """The name or address of a ``Host`` header (``host[:port]``, ``[v6][:port]``),
    lowercased, without a trailing dot."""
    if host.startswith("["):
        name, closed, _ = host[1:].partition("]")
        name = name if closed else host
    else:
        name = host.partition(":")[0]
    return name.lower().removesuffix(".")


def allowed_host(host: str | None, names: frozenset[str]) -> bool:
    """Whether a request with this ``Host`` header may be answered: none at all (HTTP/1.0;
    a browser always sends one), an IP address, ``localhost``, or one of ``names``
    (lowercase; ``*`` allows any).  A DNS-rebinding page reaches the API under the
    attacker's own host name, which is none of these."""
    if host is None or "*" in names:
        return True
    name = _host_name(host)
    if name == "localhost" or name in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Router:
    """``(method, path) -> handler``; unknown paths get 404, known ones 405 for other methods.

    A request whose ``Host`` is not an IP address, ``localhost`` or one of
    ``allowed_hosts`` gets 421 (counted in :attr:`refused_hosts`).  Methods other than
    GET and HEAD change state: they need ``token`` as a bearer token (401 without it, 403
    when this router has no token, so state cannot be changed at all).
    """

    def __init__(self, token: str | None = None, allowed_hosts: Iterable[str] = ()) -> None:
        self._routes: dict[str, dict[str, Handler]] = {}
        self.token = token
        self.allowed_hosts = frozenset(_host_name(name) for name in allowed_hosts)
        self.refused_hosts = 0
        """Requests refused for their ``Host`` header."""

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Route ``method path`` to ``handler`` (ValueError if it is routed already)."""
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
        """Every routed path, sorted."""
        return sorted(self._routes)

    async def dispatch(self, request: Request) -> Response:
        """The handler's response, or 421 for a ``Host`` not allowed, 404, 405, 401/403 for
        a state change without the token, 500 when the handler raises."""
        host = request.headers.get("host")
        if not allowed_host(host, self.allowed_hosts):
            self.refused_hosts += 1
            return Response.error(
                421,
                f"this agent does not answer for the host {(host or '')[:100]!r}: use its IP "
                "address or localhost, or allow the name (swimactors agent --http-allow-host)",
            )
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
        if request.method not in READ_ONLY_METHODS and (refused := self._refuse(request)):
            return refused
        try:
            return await handler(request)
        except Exception:
            log.exception("handler for %s %s failed", request.method, request.path)
            return Response.error(500, "internal error")

    def authorized(self, request: Request) -> bool:
        """Whether ``request`` carries this router's bearer token (a handler that shows
        secrets to GET asks this)."""
        return self._refuse(request) is None

    def _refuse(self, request: Request) -> Response | None:
        """Why a state-changing request may not run, or None when its token is right."""
        if self.token is None:
            return Response.error(
                403, "this agent changes no state over HTTP: start it with an HTTP token"
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            return attrs.evolve(
                Response.error(401, "a bearer token is needed for this request"),
                headers=(("WWW-Authenticate", 'Bearer realm="swimactors"'),),
            )
        return None


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
    connections = _Connections(MAX_CONNECTIONS)

    async def handle(stream: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            if not connections.admit(scope):  # every slot is busy answering: refuse
                await stream.aclose()
                return
            try:
                await _serve_connection(router, stream, connections.waiting(scope))
            finally:
                connections.release(scope)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started((sockname[0], sockname[1]))


class _Connections:
    """Up to ``limit`` open connections.  When all are taken, a new client takes the place
    of the one that has waited longest for its next request (a slow or idle client), or
    failing that of the one answered longest if that has taken ``LONG_ANSWER`` seconds
    already (a long poll, an event stream, a client that does not read its answer), so
    64 clients that trickle bytes or hold answers open cannot lock everyone else out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[trio.CancelScope, tuple[bool, float]] = {}
        """scope -> (whether it waits for a request, since when it waits or is answered)"""

    def admit(self, scope: trio.CancelScope) -> bool:
        now = trio.current_time()
        if len(self._open) >= self.limit:
            evictable = [
                (not waiting, since, id(s), s)
                for s, (waiting, since) in self._open.items()
                if waiting or since <= now - LONG_ANSWER
            ]
            if not evictable:
                return False
            *_, oldest = min(evictable)
            oldest.cancel()
            del self._open[oldest]
        self._open[scope] = (True, now)
        return True

    def waiting(self, scope: trio.CancelScope) -> Callable[[bool], None]:
        """A switch the connection flips: True while it waits for a request, False while
        it is answered."""

        def switch(waiting: bool) -> None:
            if scope in self._open:
                self._open[scope] = (waiting, trio.current_time())

        return switch

    def release(self, scope: trio.CancelScope) -> None:
        self._open.pop(scope, None)


def _ignore(waiting: bool) -> None:
    pass


async def _serve_connection(
    router: Router, stream: trio.abc.Stream, waiting: Callable[[bool], None] = _ignore
) -> None:
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    async with stream:
        try:
            while True:
                waiting(True)
                request = None
                with trio.move_on_after(REQUEST_TIMEOUT):
                    request = await _read_request(connection, stream)
                waiting(False)
                if request is None:
                    return
                response = await router.dispatch(request)
                await _send_response(connection, stream, request.method, response)
                if connection.our_state is not h11.DONE:
                    return
                connection.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            await _send_bad_request(connection, stream, exc.error_status_hint, str(exc))
        except (
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            h11.LocalProtocolError,
        ):
            pass


def _head_size(head: h11.Request) -> int:
    """The bytes a request line and its headers took, as sent (give or take whitespace)."""
    size = len(head.method) + len(head.target) + 12
    return size + sum(len(name) + len(value) + 4 for name, value in head.headers)


async def _read_request(connection: h11.Connection, stream: trio.abc.Stream) -> Request | None:
    """The next request, or None when the client closed the connection between requests."""
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(bytes(await stream.receive_some(65536)))
        elif isinstance(event, h11.Request):
            # h11 bounds a head that arrives in pieces; one that arrives whole is checked here
            if _head_size(event) > MAX_HEADER_BYTES:
                raise h11.RemoteProtocolError("request header too large", 431)
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
    connection: h11.Connection, stream: trio.abc.Stream, method: str, response: Response
) -> None:
    """Send ``response`` (its stream chunk by chunk); each write gets REQUEST_TIMEOUT, so a
    client that stops reading is dropped."""
    length = () if response.stream else (("Content-Length", str(len(response.body))),)
    headers = [
        ("Content-Type", response.content_type),
        *length,
        ("Server", "swimactors"),
        *response.headers,
    ]
    data = connection.send(h11.Response(status_code=response.status, headers=headers))
    if method != "HEAD" and response.stream is None:
        data += connection.send(h11.Data(data=response.body))
    elif method != "HEAD" and response.stream is not None:
        await _send(stream, data)
        async for chunk in response.stream():
            await _send(stream, connection.send(h11.Data(data=chunk)))
        data = b""
    await _send(stream, data + connection.send(h11.EndOfMessage()))


async def _send(stream: trio.abc.Stream, data: bytes) -> None:
    try:
        with trio.fail_after(REQUEST_TIMEOUT):
            await stream.send_all(data)
    except trio.TooSlowError:
        raise trio.BrokenResourceError("the client stopped reading") from None


async def _send_bad_request(
    connection: h11.Connection, stream: trio.abc.Stream, status: int, message: str
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
    return await http_request(address, "GET", path, timeout=timeout)


async def http_request(
    address: Address,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """``method path`` with ``body`` as JSON (if not None) and ``token`` as a bearer token:
    ``(status, body)``; :class:`HttpError` on any failure to exchange."""
    where = format_address(address)
    headers = [("Host", where), ("Connection", "close"), ("Accept", "*/*")]
    data = b"" if body is None else json.dumps(body).encode()
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    headers.append(("Content-Length", str(len(data))))
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(*address)
            async with stream:
                request = h11.Request(method=method, target=path, headers=headers)
                return await _exchange(stream, where, request, data)
    except trio.TooSlowError:
        raise HttpError(f"no answer from {where} within {timeout:g} s") from None
    except (OSError, trio.BrokenResourceError) as exc:
        raise HttpError(f"cannot reach {where}: {exc}") from None
    except h11.ProtocolError as exc:
        raise HttpError(f"bad HTTP response from {where}: {exc}") from None


async def _exchange(
    stream: trio.SocketStream, where: str, request: h11.Request, data: bytes
) -> tuple[int, bytes]:
    connection = h11.Connection(h11.CLIENT)
    out = connection.send(request)
    if data:
        out += connection.send(h11.Data(data=data))
    await stream.send_all(out + connection.send(h11.EndOfMessage()))
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
