"""Event handlers (Serf's ``-event-handler``): a script run for each event it filters on.

``--event-handler [FILTER=]SCRIPT``: FILTER is ``member-join``, ``member-leave``,
``member-failed``, ``member-update``, ``user``, ``user:NAME``, ``query``, ``query:NAME``
(comma-separated; none: every event).  The script runs under ``/bin/sh -c`` with the event
in its environment (``SWIMACTORS_EVENT``, ``SWIMACTORS_SELF_NAME``, ``SWIMACTORS_SELF_TAGS``,
``SWIMACTORS_USER_EVENT``, ``SWIMACTORS_USER_LTIME``, ``SWIMACTORS_QUERY_NAME``) and its
data on stdin: one ``name<TAB>address<TAB>status<TAB>tags`` line per member for member
events, the payload for user events and queries.  A query handler's stdout (up to 512
bytes) is the node's answer.  Scripts run one at a time, each for at most
:data:`SCRIPT_TIMEOUT` seconds; events past a queue of :data:`QUEUE` are dropped and counted.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

import attrs
import trio

from ..logs import logger, printable
from ..membership.meta import decode_meta
from ..membership.types import (
    Member,
    MemberAlive,
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberUp,
    MemberUpdated,
    format_address,
)
from .events import MAX_PAYLOAD, Query, UserEvent

__all__ = ["EventHandlers", "HandlerSpec", "member_event_kind", "parse_handler"]

log = logger("swimactors.agent.handlers")
SCRIPT_TIMEOUT = 10.0
QUEUE = 64
_KINDS = {"member-join", "member-leave", "member-failed", "member-update", "user", "query"}


def member_event_kind(event: MemberEvent) -> str | None:
    """Serf's name for a membership event, or None for those handlers do not see."""
    if isinstance(event, MemberUp | MemberAlive):
        return "member-join" if isinstance(event, MemberUp) else None
    if isinstance(event, MemberLeft):
        return "member-leave"
    if isinstance(event, MemberDown):
        return "member-failed"
    if isinstance(event, MemberUpdated):
        return "member-update"
    return None


@attrs.frozen
class HandlerSpec:
    """One ``--event-handler``: the script, and the event kinds it runs for."""

    script: str
    filters: tuple[str, ...] = ()
    """``kind`` or ``kind:name`` entries; empty: every event."""

    def wants(self, kind: str, name: str = "") -> bool:
        """Whether this handler runs for an event of ``kind`` (a user event or query ``name``)."""
        if not self.filters:
            return True
        return any(f == kind or (name and f == f"{kind}:{name}") for f in self.filters)


def parse_handler(text: str) -> HandlerSpec:
    """``[FILTER=]SCRIPT`` as the agent's flag takes it; ValueError names a bad filter."""
    head, sep, script = text.partition("=")
    if not sep or " " in head or not head:
        return HandlerSpec(text)
    filters = tuple(f.strip() for f in head.split(",") if f.strip())
    for item in filters:
        if item.partition(":")[0] not in _KINDS:
            raise ValueError(f"unknown event filter {item!r} (one of {', '.join(sorted(_KINDS))})")
    return HandlerSpec(script, filters)


def _member_line(member: Member) -> str:
    """The member's line for a handler's stdin, tags escaped: a peer's tag holding a line
    break or a tab would otherwise hand the script a line or a field of its making."""
    tags = printable(",".join(f"{k}={v}" for k, v in sorted(decode_meta(member.meta).items())))
    return f"{member.name}\t{format_address(member.address)}\t{member.status.value}\t{tags}\n"


class EventHandlers:
    """Runs the configured scripts for the events handed to it, one at a time."""

    def __init__(self, specs: Sequence[HandlerSpec], self_name: str) -> None:
        self.specs = tuple(specs)
        self.self_name = self_name
        self.tags: Mapping[str, str] = {}
        self.dropped = 0
        self.ran = 0
        self._send, self._receive = trio.open_memory_channel[
            tuple[HandlerSpec, dict[str, str], bytes]
        ](QUEUE)

    def _queue(self, kind: str, name: str, env: dict[str, str], data: bytes) -> None:
        for spec in self.specs:
            if spec.wants(kind, name):
                try:
                    self._send.send_nowait((spec, env, data))
                except trio.WouldBlock:
                    self.dropped += 1

    def member_event(self, event: MemberEvent) -> None:
        """Queue the scripts that want this membership event."""
        kind = member_event_kind(event)
        if kind is not None:
            data = _member_line(event.member).encode()
            self._queue(kind, "", {"SWIMACTORS_EVENT": kind}, data)

    def user_event(self, event: UserEvent) -> None:
        """Queue the scripts that want this user event, its payload on their stdin."""
        env = {
            "SWIMACTORS_EVENT": "user",
            "SWIMACTORS_USER_EVENT": event.name,
            "SWIMACTORS_USER_LTIME": str(event.sequence),
        }
        self._queue("user", event.name, env, event.payload)

    async def answer(self, query: Query) -> bytes:
        """The first matching handler's stdout for ``query`` (empty without one)."""
        for spec in self.specs:
            if spec.wants("query", query.name):
                env = {"SWIMACTORS_EVENT": "query", "SWIMACTORS_QUERY_NAME": query.name}
                timeout = min(SCRIPT_TIMEOUT, query.timeout)
                return (await self._run(spec, env, query.payload, timeout))[:MAX_PAYLOAD]
        return b""

    async def run(self) -> None:
        """Run queued scripts until cancelled."""
        async for spec, env, data in self._receive:
            await self._run(spec, env, data, SCRIPT_TIMEOUT)

    async def _run(
        self, spec: HandlerSpec, env: dict[str, str], data: bytes, timeout: float
    ) -> bytes:
        tags = ",".join(f"{k}={v}" for k, v in sorted(self.tags.items()))
        full = {**os.environ, **env, "SWIMACTORS_SELF_NAME": self.self_name}
        full["SWIMACTORS_SELF_TAGS"] = tags
        self.ran += 1
        with trio.move_on_after(timeout) as scope:
            try:
                result = await trio.run_process(
                    ["/bin/sh", "-c", spec.script],
                    stdin=data,
                    capture_stdout=True,
                    stderr=subprocess.DEVNULL,
                    env=full,
                    check=False,
                )
            except (OSError, ValueError) as exc:  # no shell, an environment it cannot take
                log.warning("event handler %r could not start: %s", spec.script, exc)
                return b""
            if result.returncode != 0:
                log.warning("event handler %r exited %d", spec.script, result.returncode)
            return bytes(result.stdout[: MAX_PAYLOAD + 1])
        if scope.cancelled_caught:
            log.warning("event handler %r ran past %g s and was killed", spec.script, timeout)
        return b""
