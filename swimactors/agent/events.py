"""User events and queries (Serf's ``event`` and ``query``), carried by membership gossip.

Both ride the existing broadcast channel (piggybacked on probes, once per node, deduplicated
by origin and sequence), so they cost no new port.  Sizes and rates are bounded at the
sender (:data:`MAX_PAYLOAD`, :data:`MAX_PER_SECOND`) and everything received is decoded
totally: a malformed broadcast is dropped and counted.  A query's answers travel back to
the asking node as actor messages to a collector actor it spawned for that query; a query
is answered only when that actor is on the query's origin, a member this node knows alive.
"""

from __future__ import annotations

import collections
import importlib
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from .. import wire
from ..actors.actor import Actor
from ..actors.context import Context
from ..actors.message import message
from ..actors.protocol import wire_ref
from ..membership.delegate import Delegate
from ..membership.node import Node
from ..membership.rate import TokenBucket

__all__ = [
    "MAX_NAME",
    "MAX_PATTERN",
    "MAX_PATTERN_REPEATS",
    "MAX_PAYLOAD",
    "MAX_PER_SECOND",
    "Collector",
    "EventChannel",
    "EventError",
    "EventLog",
    "LogEntry",
    "Query",
    "QueryAnswer",
    "UserEvent",
    "check_pattern",
    "matches",
]

EVENT_CHANNEL = "user-event"
QUERY_CHANNEL = "user-query"
MAX_NAME = 64
MAX_PAYLOAD = 512
"""Bytes of payload an event or query may carry (Serf's limit too); answers likewise."""
MAX_PER_SECOND = 10.0
"""Events plus queries one agent may start per second (a token bucket of that depth)."""
MAX_QUERY_TIMEOUT = 30.0
REMEMBERED = 4096
"""Recent (origin, sequence) pairs kept to drop duplicates."""
MAX_PATTERN = 256
"""Characters of a query's tag pattern."""
MAX_PATTERN_REPEATS = 2
"""Quantifiers (``*``, ``+``, ``?``, ``{m,n}``) a tag pattern may hold: each node matches
every query's patterns on its own loop, and Python's backtracking ``re`` takes time
exponential in nested or chained quantifiers (one 8-character pattern, ``(.*.*)*X``,
held a node's loop 16 s on a 15-character tag); with at most two, each on one character,
a match costs at most the square of the tag's length."""
_sre_parser: Any = importlib.import_module("re._parser")  # the stdlib's own parser (no stubs)
_sre: Any = importlib.import_module("re._constants")
_ONE_CHARACTER = frozenset({_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN})


class EventError(ValueError):
    """An event or query that may not be sent (too large, too many, a bad filter)."""


@attrs.frozen
class UserEvent:
    """A user event (``swimactors event``): named, a small payload, deduplicated by
    ``(origin, sequence)``."""

    origin: str
    sequence: int
    name: str
    payload: bytes


@attrs.frozen
class Query:
    """A user query (``swimactors query``): the matching members answer the collector
    actor ``reply_to`` on the origin node within ``timeout`` seconds."""

    origin: str
    sequence: int
    name: str
    payload: bytes
    reply_to: tuple[str, str, int]
    """The collector actor on the origin node: (node, path, uid)."""
    nodes: tuple[str, ...] = ()
    """Only these nodes answer (all when empty)."""
    tags: tuple[tuple[str, str], ...] = ()
    """Only nodes whose tag matches each (key, regular expression) answer."""
    timeout: float = 5.0


@message("swimactors.agent.QueryAnswer")
class QueryAnswer:
    """One member's answer to the query ``sequence``, told to the asking node's collector."""

    sequence: int
    node: str
    payload: bytes


def _check_name(name: str) -> None:
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise EventError(f"an event name is 1 to {MAX_NAME} printable characters")


def _check_payload(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD:
        raise EventError(f"a payload is at most {MAX_PAYLOAD} bytes, got {len(payload)}")


def _encode_event(event: UserEvent) -> bytes:
    return wire.dumps([event.origin, event.sequence, event.name, event.payload])


def _decode_event(data: bytes) -> UserEvent:
    value = wire.loads(data)
    if not (isinstance(value, list) and len(value) == 4):
        raise wire.WireError("a user event is [origin, sequence, name, payload]")
    origin, sequence, name, payload = value
    if not (type(origin) is str and type(sequence) is int and type(name) is str):
        raise wire.WireError("a user event is [str, int, str, bytes]")
    if type(payload) is not bytes or len(payload) > MAX_PAYLOAD:
        raise wire.WireError("a user event's payload must be bytes within the limit")
    _check_name(name)  # it reaches handlers' environments (no NUL) and terminals
    _check_name(origin)
    return UserEvent(origin, sequence, name, payload)


def _encode_query(query: Query) -> bytes:
    return wire.dumps(
        [
            query.origin,
            query.sequence,
            query.name,
            query.payload,
            list(query.reply_to),
            list(query.nodes),
            [list(t) for t in query.tags],
            query.timeout,
        ]
    )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(type(v) is str for v in value)


def _decode_query(data: bytes) -> Query:
    value = wire.loads(data)
    if not (isinstance(value, list) and len(value) == 8):
        raise wire.WireError("a query has 8 fields")
    event = _decode_event(wire.dumps(value[:4]))
    reply_to, nodes, tags, timeout = value[4:]
    if not (
        isinstance(reply_to, list)
        and len(reply_to) == 3
        and wire_ref(*reply_to)  # answers go there: a ref peers accept
        and _strings(nodes)
        and isinstance(tags, list)
        and all(_strings(t) and len(t) == 2 for t in tags)
        and type(timeout) in (int, float)
        and 0 < timeout <= MAX_QUERY_TIMEOUT
    ):
        raise wire.WireError("a malformed query")
    for _, pattern in tags:
        check_pattern(pattern)  # an EventError (a ValueError) drops it, counted
    return Query(
        event.origin,
        event.sequence,
        event.name,
        event.payload,
        (reply_to[0], reply_to[1], reply_to[2]),
        tuple(nodes),
        tuple((k, v) for k, v in tags),
        float(timeout),
    )


def check_pattern(pattern: str) -> None:
    """Refuse (:class:`EventError`) a tag pattern that could take long to match: over
    :data:`MAX_PATTERN` characters, more than :data:`MAX_PATTERN_REPEATS` quantifiers, a
    quantifier on anything but one character, ``.`` or a class, back-references or
    look-arounds.  Literals, classes, groups, ``|`` and anchors are free."""
    if len(pattern) > MAX_PATTERN:
        raise EventError(f"a tag pattern is at most {MAX_PATTERN} characters")
    try:
        with warnings.catch_warnings():  # e.g. FutureWarning for "[[": the sender's to see
            warnings.simplefilter("ignore")
            parsed = _sre_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise EventError(f"bad tag pattern {pattern!r}: {exc}") from None
    if _repeats(list(parsed)) > MAX_PATTERN_REPEATS:
        raise EventError(f"a tag pattern holds at most {MAX_PATTERN_REPEATS} quantifiers")


def _repeats(items: list[tuple[Any, Any]]) -> int:
    """The quantifiers in a parsed pattern; EventError for what is not allowed."""
    count = 0
    for op, arg in items:
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            body = list(arg[2])
            if len(body) != 1 or body[0][0] not in _ONE_CHARACTER:
                raise EventError("a quantifier in a tag pattern follows one character only")
            count += 1
        elif op is _sre.SUBPATTERN:
            count += _repeats(list(arg[-1]))
        elif op is _sre.BRANCH:
            count += sum(_repeats(list(branch)) for branch in arg[1])
        elif op not in _ONE_CHARACTER and op is not _sre.AT:
            raise EventError(f"{str(op).lower()} is not allowed in a tag pattern")
    return count


def matches(query: Query, name: str, tags: Mapping[str, str]) -> bool:
    """Whether the node ``name`` with ``tags`` is one the query asks."""
    if query.nodes and name not in query.nodes:
        return False
    for key, pattern in query.tags:
        try:
            if re.fullmatch(pattern, tags.get(key, "")) is None:
                return False
        except re.error:
            return False
    return True


@attrs.frozen
class LogEntry:
    """One line of the agent's event log: ``kind`` is ``member-up``, ``user``, ``query``..."""

    sequence: int
    time: float
    kind: str
    fields: Mapping[str, Any]


class EventLog:
    """The last ``size`` events this agent saw, numbered, for ``monitor`` and the dashboard
    (``since(n)`` returns what came after entry ``n``); waiters are woken on each entry."""

    def __init__(self, size: int = 512) -> None:
        self._entries: collections.deque[LogEntry] = collections.deque(maxlen=size)
        self._next = 1
        self._changed = trio.Event()

    @property
    def last(self) -> int:
        """The sequence number of the newest entry (0 before any)."""
        return self._next - 1

    def add(self, time: float, kind: str, **fields: Any) -> LogEntry:
        """Append an entry and wake whoever waits for the log to grow."""
        entry = LogEntry(self._next, time, kind, fields)
        self._next += 1
        self._entries.append(entry)
        self._changed.set()
        self._changed = trio.Event()
        return entry

    def since(self, sequence: int) -> list[LogEntry]:
        """The entries still kept that came after ``sequence``."""
        return [e for e in self._entries if e.sequence > sequence]

    async def wait_after(self, sequence: int) -> None:
        """Return once an entry after ``sequence`` exists."""
        while self.last <= sequence:
            await self._changed.wait()


class Collector(Actor):
    """Gathers the answers to one query (at most ``limit``, one per node)."""

    def __init__(self, sequence: int, limit: int) -> None:
        self.sequence = sequence
        self.limit = limit
        self.answers: dict[str, bytes] = {}

    async def receive(self, msg: Any, ctx: Context) -> None:
        """Keep each node's first answer to this query, up to the limit."""
        if (
            isinstance(msg, QueryAnswer)
            and msg.sequence == self.sequence
            and len(self.answers) < self.limit
            and len(msg.payload) <= MAX_PAYLOAD
        ):
            self.answers.setdefault(msg.node, msg.payload)


class EventChannel(Delegate):
    """This node's user events and queries: sends them, receives them, hands each one
    received (its own included) to ``on_event`` / ``on_query`` once."""

    def __init__(
        self,
        node: Node,
        *,
        on_event: Callable[[UserEvent], None],
        on_query: Callable[[Query], None],
        rate: float = MAX_PER_SECOND,
    ) -> None:
        self.node = node
        self.on_event = on_event
        self.on_query = on_query
        self.rate = rate
        self.dropped = 0
        self.refused = 0
        """Queries not answered: their answers were to go to another node than their
        origin, or their origin is no live member (see :meth:`_received_query`)."""
        self._sequence = node.incarnation  # grows across restarts (wall-clock based)
        self._sends = TokenBucket(rate, trio.current_time())
        self._seen: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()
        node.register_delegate(EVENT_CHANNEL, _Receiver(self, _decode_event, self._event))
        node.register_delegate(QUERY_CHANNEL, _Receiver(self, _decode_query, self._received_query))

    def next_sequence(self) -> int:
        """Reserve a sequence number for an event or query, within the rate limit."""
        if not self._sends.take(trio.current_time()):
            raise EventError(f"more than {self.rate:g} events and queries per second")
        self._sequence += 1
        return self._sequence

    def send_event(self, name: str, payload: bytes) -> UserEvent:
        """Broadcast a user event to every member (EventError for a bad name or payload)."""
        _check_name(name)
        _check_payload(payload)
        event = UserEvent(self.node.name, self.next_sequence(), name, payload)
        self.node.broadcast(EVENT_CHANNEL, _encode_event(event))
        self._event(event)
        return event

    def send_query(self, query: Query) -> None:
        """Broadcast ``query`` to every member (EventError for a bad name, payload or tag
        pattern)."""
        _check_name(query.name)
        _check_payload(query.payload)
        for _, pattern in query.tags:
            check_pattern(pattern)
        self.node.broadcast(QUERY_CHANNEL, _encode_query(query))
        self._query(query)

    def _first_time(self, origin: str, sequence: int) -> bool:
        key = (origin, sequence)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        return True

    def _event(self, event: UserEvent) -> None:
        if self._first_time(event.origin, event.sequence):
            self.on_event(event)

    def _query(self, query: Query) -> None:
        if self._first_time(query.origin, query.sequence):
            self.on_query(query)

    def _received_query(self, query: Query) -> None:
        """A query heard on gossip is answered only where it came from: its answer address
        must be on its origin, a member membership knows alive (answers then go to that
        node's address as membership knows it).  Before, a forged query named any actor on
        any node, and every matching node told it a QueryAnswer.  The origin is a claim
        (gossip is relayed, so no hop proves it): a forger can still name a live member."""
        origin = self.node.member(query.origin)
        if query.reply_to[0] != query.origin or origin is None or not origin.status.is_alive:
            self.refused += 1
            return
        self._query(query)


class _Receiver(Delegate):
    def __init__(
        self,
        channel: EventChannel,
        decode: Callable[[bytes], Any],
        deliver: Callable[[Any], None],
    ) -> None:
        self._channel = channel
        self._decode = decode
        self._deliver = deliver

    def notify_message(self, payload: bytes, now: float) -> None:
        try:
            item = self._decode(payload)
        except (wire.WireError, ValueError):
            self._channel.dropped += 1
            return
        self._deliver(item)
