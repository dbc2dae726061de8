"""``swimactors agent``: one node in the foreground, a line per event, an optional HTTP API.

The agent leaves the cluster gracefully on SIGINT or SIGTERM.  Its first lines say where
it listens (``listening on HOST:PORT``, ``HTTP API on http://HOST:PORT``), which is how
:mod:`swimactors.agent.cluster` finds the ports of agents bound to port 0.
"""

from __future__ import annotations

import contextlib
import ipaddress
import resource
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import TextIO

import attrs
import trio

from ..actors.transport import TransportConfig
from ..cluster.split_brain import SplitBrainConfig
from ..cluster.system import open_system
from ..logs import logger, printable
from ..membership.config import Config
from ..membership.events import EventsDropped
from ..membership.meta import decode_meta
from ..membership.node import Node
from ..membership.transport import TransportLimits
from ..membership.types import (
    Address,
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
from ..quorum import AGE_KEY
from .actor_metrics import render_actor_metrics
from .api import actors_router, membership_router
from .app import AppError, load_app
from .control import AgentControl
from .dashboard import add_dashboard
from .discovery import is_dns_seed, join_until_joined
from .handlers import EventHandlers, HandlerSpec
from .http import MAX_CONNECTIONS, Router, serve_http
from .keys import keys_router
from .logs import clock

__all__ = ["AgentOptions", "StartupError", "describe_event", "run_agent", "startup_failure"]

log = logger("swimactors.agent")
MISCONFIGURATION_CHECK = 2.0
"""Seconds between looks at the counters that reveal a misconfigured cluster."""


class StartupError(Exception):
    """The agent could not start; the message is the one line the CLI prints."""


def startup_failure(error: BaseException) -> str:
    """One line for what stopped an agent from starting, unwrapping exception groups
    (trio nurseries wrap the one error that matters in one or more of them)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = next(
            (e for e in error.exceptions if not isinstance(e, trio.Cancelled)),
            error.exceptions[0],
        )
    text = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, StartupError | OSError | ValueError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
    http_token: str | None = None
    """Bearer token for the HTTP API's state-changing routes; None: they are refused."""
    http_allowed_hosts: tuple[str, ...] = ()
    """Host names the HTTP API answers for besides IP addresses, ``localhost`` and the
    name in ``http`` (``--http-allow-host``; ``*``: any): a request for another is refused
    (421), so a DNS-rebinding page cannot read the API."""
    event_handlers: tuple[HandlerSpec, ...] = ()
    keyring_file: str | None = None
    """Where the keyring came from (``--keyring-file``); key changes are saved back to it."""
    dns_server: str | None = None
    """``host:port`` of the DNS server for ``dns://`` seeds; None: the system's."""
    transport: TransportConfig = attrs.field(factory=TransportConfig)
    """The actor transport's settings (``--untrusted``, ``--trust``, ``--debug-errors``)."""


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
    return printable(
        f"{word:<8} {member.name} {format_address(member.address)} "
        f"incarnation={member.incarnation}{tags} — {why}"
    )


async def _print_events(node: Node, out: TextIO) -> None:
    with node.events() as events:
        async for event in events:
            print(
                f"{clock()} [{printable(node.name)}] {describe_event(event)}", file=out, flush=True
            )
            if isinstance(event, MemberConflict):
                log.warning(
                    "node name %r is claimed by %s and %s: every agent needs its own --name",
                    event.member.name,
                    format_address(event.member.address),
                    format_address(event.other),
                )


FILES_BESIDES_CONNECTIONS = 1024
"""Descriptors kept for all but the ports' connections: files, sockets, threads' pipes."""


def _descriptors_wanted(transport: TransportConfig) -> int:
    """Descriptors the agent's ports may hold at once within their own caps (actor port,
    membership TCP in and out, HTTP API), plus the rest."""
    actor = transport.max_connections + transport.max_handshakes
    membership = TransportLimits.max_incoming + TransportLimits.max_outgoing
    return actor + membership + MAX_CONNECTIONS + FILES_BESIDES_CONNECTIONS


def _raise_open_files_limit(wanted: int) -> None:
    """Raise the soft limit on open files towards ``wanted`` (up to the hard limit): with
    the usual soft limit of 1,024 a flood of connections within the ports' own caps ran
    the agent out of descriptors, and its HTTP API and its peers' connections met EMFILE.
    Warns when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "open files are limited to %d: the ports may hold %d connections within their "
            "caps, so a flood of them can exhaust descriptors (raise `ulimit -n`)",
            soft,
            wanted - FILES_BESIDES_CONNECTIONS,
        )


async def _warn_misconfiguration(node: Node, rule: str | None) -> None:
    """Say so when packets from another cluster arrive (a ``label`` that differs: such a
    node never joins), and when members differ from this one in having a split-brain rule
    (``rule``; a node with a rule announces its start time under ``AGE_KEY``): a rule on
    some agents only makes them stop serving when the others do not count them."""
    warned = 0
    told: set[str] = set()
    while True:
        await trio.sleep(MISCONFIGURATION_CHECK)
        rejected = node.counters["rejected_label"]
        if rejected > warned:
            log.warning(
                "%d packets from another cluster were refused (their label differs from "
                "this node's %r): check --set label=... on every agent",
                rejected,
                node.config.label,
            )
            warned = rejected
        for member in node.members():
            has_rule = AGE_KEY in decode_meta(member.meta)
            if member.name in told or not member.status.is_alive or has_rule == (rule is not None):
                continue
            told.add(member.name)
            if rule is None:
                log.warning(
                    "member %s runs a split-brain rule and this agent none: start every "
                    "agent with the same --split-brain",
                    member.name,
                )
            else:
                log.warning(
                    "member %s runs without a split-brain rule while this agent uses %s: "
                    "start every agent with the same --split-brain",
                    member.name,
                    rule,
                )


async def run_agent(options: AgentOptions, out: TextIO = sys.stdout) -> None:
    """Run a full actor system until SIGINT or SIGTERM, then leave gracefully.

    With ``options.app`` the named ``setup(system)`` is awaited once the node is up (it
    spawns the application's actors); without it the runtime idles beside membership.
    """
    try:
        setup = load_app(options.app) if options.app else None  # fail before binding
    except AppError as exc:
        raise StartupError(f"--app {options.app}: {exc}") from None
    _raise_open_files_limit(_descriptors_wanted(options.transport))
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_system(
            name=options.name,
            bind=options.bind,
            seeds=[seed for seed in options.join if not is_dns_seed(seed)],
            config=options.config,
            advertise=options.advertise,
            meta=options.meta,
            split_brain=options.split_brain,
            transport=options.transport,
        ) as system:
            assert system.cluster is not None
            node = system.cluster.node
            if node.keys is not None and options.keyring_file is not None:
                node.keys.on_change = lambda ring: ring.save(options.keyring_file or "")
            say = _speaker(node.name, out)
            say(
                f"agent {node.name} listening on {format_address(node.bound_address)} "
                f"(UDP+TCP), advertising {format_address(node.address)}, "
                f"profile {options.profile}, incarnation {node.incarnation}"
            )
            control = AgentControl(
                system, EventHandlers(options.event_handlers, node.name), profile=options.profile
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_print_events, node, out)
                rule = None if options.split_brain is None else options.split_brain.strategy
                nursery.start_soon(
                    _warn_misconfiguration, node, None if rule is None else rule.spec
                )
                await nursery.start(control.run)
                if options.http is not None:
                    bound = await _start_http(nursery, control, options)
                    control.http = format_address(bound)
                    say(f"HTTP API on http://{control.http}")
                if options.join:
                    say(f"joining through {', '.join(options.join)}")
                if dns_seeds := [seed for seed in options.join if is_dns_seed(seed)]:
                    nameserver = parse_address(options.dns_server) if options.dns_server else None
                    nursery.start_soon(join_until_joined, node, dns_seeds, nameserver)
                if setup is not None:
                    try:
                        await setup(system)
                    except Exception as exc:
                        raise StartupError(
                            f"--app {options.app}: setup raised {startup_failure(exc)}"
                        ) from exc
                    say(f"app {options.app} started")
                reason = await _until_asked_to_leave(signals, control.leave_requested)
                say(f"{reason}: leaving the cluster")
                left = await node.leave()
                say("left gracefully" if left else "leave timed out; stopping anyway")
                nursery.cancel_scope.cancel()


async def _until_asked_to_leave(signals: AsyncIterator[int], requested: trio.Event) -> str:
    """Wait for SIGINT/SIGTERM or ``swimactors leave``; returns which one, for the log."""
    reason = "leave requested over HTTP"
    async with trio.open_nursery() as nursery:

        async def on_signal() -> None:
            nonlocal reason
            async for signum in signals:
                reason = signal.Signals(signum).name
                break
            nursery.cancel_scope.cancel()

        async def on_request() -> None:
            await requested.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(on_signal)
        nursery.start_soon(on_request)
    return reason


async def _start_http(
    nursery: trio.Nursery, control: AgentControl, options: AgentOptions
) -> Address:
    """Serve the agent's API; a port that cannot be bound is a StartupError."""
    assert options.http is not None
    system = control.system
    quorum = system.split_brain
    host, port = parse_address(options.http)
    router = membership_router(
        control.node,
        Router(options.http_token, (*options.http_allowed_hosts, host)),
        extra_health=None if quorum is None else quorum.health,
        extra_gauges=None if quorum is None else quorum.metrics,
        extra_metrics=lambda: render_actor_metrics(system) + control.metrics(),
    )
    add_dashboard(control, control.add_routes(actors_router(system, router)))
    if control.node.keys is not None:
        keys_router(control.node.keys, router)
    try:
        bound: Address = await nursery.start(serve_http, router, host, port)
    except OSError as exc:
        raise StartupError(f"cannot serve HTTP on {options.http}: {exc.strerror or exc}") from None
    if not _loopback(host) and options.http_token is None:
        log.warning(
            "the HTTP API on %s is readable from the network; its state-changing routes are "
            "off without --http-token-file",
            options.http,
        )
    return bound


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _speaker(name: str, out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"{clock()} [{printable(name)}] {text}", file=out, flush=True)

    return say
