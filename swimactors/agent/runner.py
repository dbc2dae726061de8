"""``swimactors agent``: one node in the foreground, a line per event, an optional HTTP API.

The agent leaves the cluster gracefully on SIGINT or SIGTERM.  Its first lines say where
it listens (``listening on HOST:PORT``, ``HTTP API on http://HOST:PORT``), which is how
:mod:`swimactors.agent.cluster` finds the ports of agents bound to port 0.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from typing import TextIO

import attrs
import trio

from ..actors.app import load_app
from ..membership.config import Config
from ..membership.events import EventsDropped
from ..membership.meta import decode_meta
from ..membership.node import Node
from ..membership.types import (
    MemberAlive,
    MemberConflict,
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    MemberUpdated,
    format_address,
    parse_address,
)
from ..split_brain import SplitBrainConfig
from ..system import open_system
from .api import actors_router, membership_router
from .http import serve_http

__all__ = ["AgentOptions", "describe_event", "run_agent"]

_EXPLAIN: dict[type, tuple[str, str]] = {
    MemberUp: ("UP", "joined (or came back)"),
    MemberSuspect: ("SUSPECT", "missed its probes; it has a while to refute before DOWN"),
    MemberAlive: ("ALIVE", "refuted the suspicion with a higher incarnation"),
    MemberDown: ("DOWN", "suspicion timed out: declared failed"),
    MemberLeft: ("LEFT", "left gracefully"),
    MemberUpdated: ("UPDATED", "changed its metadata or address"),
    MemberConflict: ("CONFLICT", "name claimed from another address; refused"),
}


@attrs.frozen(kw_only=True)
class AgentOptions:
    """What ``swimactors agent`` was asked to run."""

    name: str
    bind: str
    join: tuple[str, ...] = ()
    config: Config = attrs.field(factory=Config.lan)
    profile: str = "lan"
    meta: dict[str, str] = attrs.field(factory=dict)
    http: str | None = None
    advertise: str | None = None
    app: str | None = None
    """``package.module:setup``: an ``async def setup(system)`` awaited once started."""
    split_brain: SplitBrainConfig | None = None
    """The split-brain rule and timing (``--split-brain``); None: off."""


def _clock() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


def describe_event(event: MemberEvent | EventsDropped) -> str:
    """One readable line for an event: ``STATUS name address incarnation=N — why``."""
    if isinstance(event, EventsDropped):
        return f"({event.count} events dropped: this output could not keep up)"
    word, why = _EXPLAIN.get(type(event), (type(event).__name__.upper(), ""))
    member = event.member
    meta = decode_meta(member.meta)
    tags = (" " + ",".join(f"{k}={v}" for k, v in sorted(meta.items()))) if meta else ""
    if isinstance(event, MemberConflict):
        why = f"claimed from {format_address(event.other)}; refused"
    return (
        f"{word:<8} {member.name} {format_address(member.address)} "
        f"incarnation={member.incarnation}{tags} — {why}"
    )


async def _print_events(node: Node, out: TextIO) -> None:
    with node.events() as events:
        async for event in events:
            print(f"{_clock()} [{node.name}] {describe_event(event)}", file=out, flush=True)


async def run_agent(options: AgentOptions, out: TextIO = sys.stdout) -> None:
    """Run a full actor system until SIGINT or SIGTERM, then leave gracefully.

    With ``options.app`` the named ``setup(system)`` is awaited once the node is up (it
    spawns the application's actors); without it the runtime idles beside membership.
    """
    setup = load_app(options.app) if options.app else None  # fail before binding anything
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_system(
            name=options.name,
            bind=options.bind,
            seeds=options.join,
            config=options.config,
            advertise=options.advertise,
            meta=options.meta,
            split_brain=options.split_brain,
        ) as system:
            assert system.cluster is not None
            node = system.cluster.node
            say = _speaker(node.name, out)
            say(
                f"agent {node.name} listening on {format_address(node.bound_address)} "
                f"(UDP+TCP), advertising {format_address(node.address)}, "
                f"profile {options.profile}, incarnation {node.incarnation}"
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_print_events, node, out)
                if options.http is not None:
                    host, port = parse_address(options.http)
                    quorum = system.split_brain
                    router = actors_router(system, membership_router(
                        node,
                        extra_health=None if quorum is None else quorum.health,
                        extra_gauges=None if quorum is None else quorum.metrics,
                    ))
                    bound = await nursery.start(serve_http, router, host, port)
                    say(f"HTTP API on http://{format_address(bound)}")
                if options.join:
                    say(f"joining through {', '.join(options.join)}")
                if setup is not None:
                    await setup(system)
                    say(f"app {options.app} started")
                async for signum in signals:
                    say(f"{signal.Signals(signum).name}: leaving the cluster")
                    break
                left = await node.leave()
                say("left gracefully" if left else "leave timed out; stopping anyway")
                nursery.cancel_scope.cancel()


def _speaker(name: str, out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"{_clock()} [{name}] {text}", file=out, flush=True)

    return say
