"""What an operator does to a running agent over HTTP: join, leave, tags, user events,
queries, the event log (``monitor``) and ``info``.

Routes (state-changing ones need the agent's bearer token, see :mod:`.http`):
``POST /v1/join {"addresses": [...]}``, ``POST /v1/leave``, ``POST /v1/force-leave
{"name"}``, ``PUT /v1/tags {"set": {..},
"delete": [..]}``, ``POST /v1/event {"name", "payload"}``, ``POST /v1/query {"name",
"payload", "nodes", "tags", "timeout"}``, ``GET /v1/events?since=N&wait=S``, ``GET /v1/info``,
``GET /v1/rtt?node=NAME``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .. import __version__
from ..actors.errors import ActorError
from ..logs import printable
from ..membership.meta import decode_meta, encode_meta
from ..membership.types import MemberEvent, format_address, parse_address
from .api import member_json, status_counts
from .events import (
    MAX_QUERY_TIMEOUT,
    Collector,
    EventChannel,
    EventError,
    EventLog,
    LogEntry,
    Query,
    QueryAnswer,
    UserEvent,
    matches,
)
from .handlers import EventHandlers, member_event_kind
from .http import Request, Response, Router
from .prometheus import PREFIX, family

if TYPE_CHECKING:
    from ..cluster.system import System

__all__ = ["AgentControl", "entry_json"]

RESERVED_TAGS = frozenset({"actors"})
"""Tags the runtime sets itself (the actor port); ``tags`` may not change them."""
MAX_WAIT = 30.0
MAX_QUERY_ANSWERS = 1024


def entry_json(entry: LogEntry) -> dict[str, Any]:
    """One event-log entry as ``monitor`` and ``GET /v1/events`` show it."""
    return {"seq": entry.sequence, "time": entry.time, "kind": entry.kind, **entry.fields}


class AgentControl:
    """The agent's event log, user events, queries and handlers, and the routes over them."""

    def __init__(self, system: System, handlers: EventHandlers, *, profile: str = "") -> None:
        assert system.cluster is not None
        self.system = system
        self.node = system.cluster.node
        self.handlers = handlers
        self.profile = profile
        self.http = ""
        self.log = EventLog()
        self.leave_requested = trio.Event()
        self.channel = EventChannel(self.node, on_event=self._on_event, on_query=self._on_query)
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Log membership events and run handlers until cancelled."""
        self.handlers.tags = decode_meta(self.node.local_member.meta)
        logs = _LogToEvents(self.log)
        logging.getLogger().addHandler(logs)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self.handlers.run)
                with self.node.events() as events:
                    task_status.started()
                    async for event in events:
                        if isinstance(event, MemberEvent):
                            self._on_member_event(event)
        finally:
            logging.getLogger().removeHandler(logs)

    # -- what arrives ------------------------------------------------------------------

    def _on_member_event(self, event: MemberEvent) -> None:
        member = event.member
        kind = member_event_kind(event) or type(event).__name__.removeprefix("Member").lower()
        self.log.add(time.time(), kind, member=member_json(member))
        self.handlers.member_event(event)

    def _on_event(self, event: UserEvent) -> None:
        self.log.add(
            time.time(),
            "user",
            name=event.name,
            origin=event.origin,
            ltime=event.sequence,
            payload=event.payload.decode(errors="replace"),
        )
        self.handlers.user_event(event)

    def _on_query(self, query: Query) -> None:
        self.log.add(time.time(), "query", name=query.name, origin=query.origin)
        tags = decode_meta(self.node.local_member.meta)
        if self._nursery is not None and matches(query, self.node.name, tags):
            self._nursery.start_soon(self._answer, query)

    async def _answer(self, query: Query) -> None:
        with trio.move_on_after(query.timeout):
            payload = await self.handlers.answer(query)
            ref = self.system.resolve(*query.reply_to)
            with contextlib.suppress(ActorError):  # the asker is gone: nobody waits
                await ref.tell(QueryAnswer(query.sequence, self.node.name, payload))

    # -- routes ------------------------------------------------------------------------

    def add_routes(self, router: Router) -> Router:
        """Add the operator's routes (join, leave, force-leave, tags, event, query, events,
        info, rtt) to ``router``; returns it."""
        router.add("POST", "/v1/join", self._join)
        router.add("POST", "/v1/leave", self._leave)
        router.add("POST", "/v1/force-leave", self._force_leave)
        router.add("PUT", "/v1/tags", self._tags)
        router.add("POST", "/v1/event", self._event)
        router.add("POST", "/v1/query", self._query)
        router.add("GET", "/v1/events", self._events)
        router.add("GET", "/v1/info", self._info)
        router.add("GET", "/v1/rtt", self._rtt)
        return router

    async def _join(self, request: Request) -> Response:
        body = _body(request)
        addresses = body.get("addresses")
        if not (
            isinstance(addresses, list) and addresses and all(type(a) is str for a in addresses)
        ):
            return Response.error(400, 'expected {"addresses": ["host:port", ...]}')
        try:
            seeds = [parse_address(a) for a in addresses]
            self.node.join(seeds)  # ValueError for a host no resolver takes, or port 0
        except ValueError as exc:
            return Response.error(400, str(exc))
        return Response.json({"joining": [format_address(s) for s in seeds]})

    async def _leave(self, request: Request) -> Response:
        self.leave_requested.set()
        return Response.json({"leaving": self.node.name})

    async def _force_leave(self, request: Request) -> Response:
        name = _body(request).get("name")
        if type(name) is not str:
            return Response.error(400, 'expected {"name": "..."}')
        if not self.node.force_leave(name):
            member = self.node.member(name)
            status = "unknown" if member is None else member.status.value
            return Response.error(409, f"{name} is {status} here; only a down member can be forced")
        return Response.json({"left": name})

    async def _tags(self, request: Request) -> Response:
        body = _body(request)
        add, drop = body.get("set", {}), body.get("delete", [])
        if not (
            isinstance(add, dict)
            and all(type(k) is str and type(v) is str for k, v in add.items())
            and isinstance(drop, list)
            and all(type(k) is str for k in drop)
        ):
            return Response.error(400, 'expected {"set": {"key": "value"}, "delete": ["key"]}')
        if not all(k.isprintable() and v.isprintable() for k, v in add.items()):
            # tags reach peers' terminals and this node's handlers' environment (no NUL)
            return Response.error(400, "tags are printable text (no control characters)")
        if reserved := RESERVED_TAGS & (set(add) | set(drop)):
            return Response.error(400, f"tags {sorted(reserved)} are set by the runtime")
        tags = decode_meta(self.node.local_member.meta)
        tags.update(add)
        for key in drop:
            tags.pop(key, None)
        try:
            await self.node.set_meta(encode_meta(tags))
        except ValueError as exc:
            return Response.error(400, str(exc))
        self.handlers.tags = tags
        return Response.json({"tags": tags})

    async def _event(self, request: Request) -> Response:
        body = _body(request)
        name, payload = body.get("name"), body.get("payload", "")
        if type(name) is not str or type(payload) is not str:
            return Response.error(400, 'expected {"name": "...", "payload": "..."}')
        try:
            event = self.channel.send_event(name, payload.encode())
        except EventError as exc:
            return Response.error(429 if "per second" in str(exc) else 400, str(exc))
        return Response.json({"name": event.name, "ltime": event.sequence})

    async def _query(self, request: Request) -> Response:
        body = _body(request)
        name, payload = body.get("name"), body.get("payload", "")
        nodes, tags = body.get("nodes", []), body.get("tags", {})
        timeout = body.get("timeout", 3.0)
        if not (
            type(name) is str
            and type(payload) is str
            and isinstance(nodes, list)
            and all(type(n) is str for n in nodes)
            and isinstance(tags, dict)
            and all(type(k) is str and type(v) is str for k, v in tags.items())
            and type(timeout) in (int, float)
            and 0 < timeout <= MAX_QUERY_TIMEOUT
        ):
            return Response.error(
                400,
                'expected {"name", "payload", "nodes": [...], "tags": {...}, '
                f'"timeout": 0 < seconds <= {MAX_QUERY_TIMEOUT:g}}}',
            )
        try:
            sequence = self.channel.next_sequence()
        except EventError as exc:
            return Response.error(429, str(exc))
        collector = Collector(sequence, MAX_QUERY_ANSWERS)
        ref = await self.system.spawn(collector)
        query = Query(
            self.node.name,
            sequence,
            name,
            payload.encode(),
            (ref.node, ref.path, ref.uid),
            tuple(nodes),
            tuple(sorted(tags.items())),
            float(timeout),
        )
        try:
            self.channel.send_query(query)
            await trio.sleep(timeout)
        except EventError as exc:
            return Response.error(400, str(exc))
        finally:
            await self.system.stop(ref)
        answers = {n: p.decode(errors="replace") for n, p in sorted(collector.answers.items())}
        return Response.json({"name": name, "answers": answers})

    async def _events(self, request: Request) -> Response:
        try:
            since = int(request.query.get("since", "0"))
            wait = min(float(request.query.get("wait", "0")), MAX_WAIT)
        except ValueError:
            return Response.error(400, "since is an integer, wait a number of seconds")
        if wait > 0:
            with trio.move_on_after(wait):
                await self.log.wait_after(since)
        entries = [entry_json(e) for e in self.log.since(since)]
        return Response.json({"last": self.log.last, "events": entries})

    async def _rtt(self, request: Request) -> Response:
        """Round trips to ``node`` over the actor transport (the first may include
        opening the connection): the median of three, and each one."""
        node = request.query.get("node", "")
        member = self.node.member(node)
        if member is None or not member.status.is_alive:
            return Response.error(404, f"no live member {node!r}")
        try:
            times = [await self.system.ping(node, timeout=5.0) for _ in range(3)]
        except ActorError as exc:
            return Response.error(502, f"{node} did not answer: {exc}")
        return Response.json({"node": node, "rtt": sorted(times)[1], "samples": times})

    async def _info(self, request: Request) -> Response:
        node = self.node
        config = attrs.asdict(node.config)
        return Response.json(
            {
                "agent": {
                    "name": node.name,
                    "version": __version__,
                    "address": format_address(node.address),
                    "bind": format_address(node.bound_address),
                    "http": self.http,
                    "profile": self.profile,
                    "incarnation": node.incarnation,
                },
                "tags": decode_meta(node.local_member.meta),
                "members": status_counts(node.members()),
                "quorum": self.system.quorum_state,
                "actors": self.system.live_actors,
                "config": {k: v for k, v in config.items() if _plain(v)},
                "counters": dict(sorted(node.counters.items())),
                "events": self.event_counts(),
            }
        )

    def event_counts(self) -> dict[str, int]:
        """User events and queries dropped or refused, and handler runs (``info``)."""
        return {
            "malformed_dropped": self.channel.dropped,
            "queries_refused": self.channel.refused,
            "handler_runs": self.handlers.ran,
            "handler_dropped": self.handlers.dropped,
        }

    def metrics(self) -> str:
        """:meth:`event_counts` in the Prometheus text format (appended to ``/metrics``)."""
        lines: list[str] = []
        family(
            lines,
            "agent_events_total",
            "counter",
            "Agent user events and queries: dropped malformed, queries refused (answer "
            "address not on their origin), handler runs and handler events dropped.",
        )
        for event, value in self.event_counts().items():
            lines.append(f'{PREFIX}_agent_events_total{{event="{event}"}} {value}')
        return "\n".join(lines) + "\n"


class _LogToEvents(logging.Handler):
    """Log records (at the agent's log level) into the event log, for ``monitor``; only
    those from the agent's trio thread (the event log is not thread-safe)."""

    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return
        message = printable(record.getMessage())
        self._log.add(
            record.created, "log", level=record.levelname, logger=record.name, message=message
        )


def _plain(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _body(request: Request) -> dict[str, Any]:
    try:
        value = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
