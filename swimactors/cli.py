"""The ``swimactors`` command: ``agent`` runs a node, ``members`` asks a running agent.

Exit codes: 0 success, 1 the agent answered with an error, 2 bad usage, a failed start, or
an agent that could not be reached.  Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from . import __version__
from .actors.transport import TransportConfig
from .agent.commands import add_commands, read_token
from .agent.discovery import is_dns_seed, parse_dns_seed
from .agent.handlers import parse_handler
from .cli_keys import add_agent_flags, keyring_from
from .cli_keys import add_commands as add_key_commands
from .cluster.split_brain import SplitBrainConfig
from .membership.config import Config, ConfigError
from .membership.messages import valid_host
from .membership.types import parse_address
from .quorum import Strategy, parse_strategy
from .security import TlsConfig

__all__ = ["main"]


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value.strip()


def _name(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("a node name cannot be empty")
    if not text.isprintable():
        raise argparse.ArgumentTypeError(f"a node name must be printable, got {text!r}")
    return text


def _http_address(text: str) -> str:
    """``HOST:PORT``, or a bare ``PORT`` on the loopback address."""
    return _address(f"127.0.0.1:{text}" if text.isdigit() else text)


def _allowed_host(text: str) -> str:
    """A host name for ``--http-allow-host`` (or ``*``)."""
    if text != "*" and not valid_host(text.removesuffix(".")):
        raise argparse.ArgumentTypeError(f"not a host name: {text!r}")
    return text


def _address(text: str) -> str:
    try:
        parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _split_brain(text: str) -> Strategy:
    try:
        return parse_strategy(text)
    except ValueError as exc:  # QuorumConfigError, or a size below 1
        raise argparse.ArgumentTypeError(str(exc)) from None


def _split_brain_config(
    rule: Strategy | None, stable_after: float | None
) -> SplitBrainConfig | None:
    if rule is None:
        if stable_after is not None:
            raise ValueError("--stable-after needs --split-brain")
        return None
    return SplitBrainConfig(strategy=rule, stable_after=stable_after)


def config_from(profile: str, overrides: Sequence[tuple[str, str]]) -> Config:
    """A preset with ``field=value`` overrides, each parsed as the field's own type."""
    config = Config.preset(profile)
    fields = attrs.fields_dict(Config)
    changes: dict[str, Any] = {}
    for key, text in overrides:
        if key not in fields:
            raise ConfigError(f"Config has no field {key!r}; see docs/configuration.md")
        current = getattr(config, key)
        if current is None:  # (cidrs_allowed: the field's converter parses the text)
            changes[key] = text
            continue
        kind = type(current)
        try:
            changes[key] = kind(text)
        except ValueError:
            raise ConfigError(f"Config.{key} expects {kind.__name__}, got {text!r}") from None
    return config.replace(**changes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swimactors", description="SWIM cluster membership agent and tools."
    )
    parser.add_argument("--version", action="version", version=f"swimactors {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    agent = commands.add_parser("agent", help="run a cluster member in the foreground")
    agent.add_argument("--name", required=True, type=_name, help="this node's unique name")
    agent.add_argument(
        "--bind",
        default="0.0.0.0:7946",
        type=_address,
        help="host:port for UDP+TCP gossip (port 0 picks one; default %(default)s)",
    )
    agent.add_argument(
        "--advertise", type=_address, help="host:port peers should use (NAT, wildcard binds)"
    )
    agent.add_argument(
        "--join",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a member to join through (repeatable, or comma-separated); dns://NAME[:PORT] "
        "or dns+srv://NAME: the addresses DNS gives, looked up again on every retry",
    )
    agent.add_argument(
        "--dns-server",
        type=_address,
        metavar="HOST:PORT",
        help="ask this DNS server for dns:// seeds (default: the system's resolver)",
    )
    agent.add_argument(
        "--profile",
        choices=["lan", "wan", "local"],
        default="lan",
        help="timing preset (default %(default)s)",
    )
    agent.add_argument(
        "--set",
        action="append",
        default=[],
        type=_key_value,
        metavar="FIELD=VALUE",
        dest="overrides",
        help="override one Config field, e.g. --set probe_interval=0.2",
    )
    agent.add_argument(
        "--meta",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="metadata tag (repeatable)",
    )
    agent.add_argument(
        "--http",
        type=_http_address,
        nargs="?",
        const="127.0.0.1:8946",
        metavar="[HOST:]PORT",
        help="serve the HTTP API here (alone: 127.0.0.1:8946; a bare port binds loopback)",
    )
    agent.add_argument(
        "--http-allow-host",
        action="append",
        default=[],
        type=_allowed_host,
        metavar="NAME",
        help="a host name the HTTP API answers for besides IP addresses, localhost and the "
        "--http name (repeatable; '*': any); others get 421 (DNS rebinding)",
    )
    agent.add_argument(
        "--http-token-file",
        metavar="PATH",
        help="bearer token the HTTP API needs for state changes (join, leave, event, query, "
        "tags; default $SWIMACTORS_HTTP_TOKEN; without one they are refused)",
    )
    agent.add_argument(
        "--event-handler",
        action="append",
        default=[],
        metavar="[FILTER=]SCRIPT",
        help="run SCRIPT for events (FILTER: member-join, member-leave, member-failed, "
        "member-update, user[:NAME], query[:NAME]; repeatable)",
    )
    agent.add_argument(
        "--app",
        metavar="PACKAGE.MODULE:SETUP",
        help="await this async setup(system) once started (it spawns the app's actors)",
    )
    agent.add_argument(
        "--split-brain",
        type=_split_brain,
        metavar="RULE",
        help="keep-majority | static-quorum:N | keep-oldest | keep-referee:NAME | down-all: "
        "which side of a partition keeps serving (default: off; docs/split-brain.md)",
    )
    agent.add_argument(
        "--stable-after",
        type=float,
        metavar="SECONDS",
        help="with --split-brain: how long membership must be unchanged before a decision "
        "(default: 7 s at 5 members, growing with the cluster)",
    )
    agent.add_argument(
        "--untrusted",
        action="store_true",
        help="Akka's untrusted mode: refuse remote spawn and remote watch (docs/security.md)",
    )
    agent.add_argument(
        "--trust",
        type=_trusted,
        default=frozenset(),
        metavar="spawn,watch",
        help="with --untrusted: the remote operations still allowed",
    )
    agent.add_argument(
        "--debug-errors",
        action="store_true",
        help="error replies carry the server's traceback (default: type and message only)",
    )
    agent.add_argument(
        "--tls-cert",
        metavar="PATH",
        help="mutual TLS on the TCP channels: this node's certificate (PEM; its "
        "subjectAltName names the node), with --tls-key and --tls-ca (docs/security.md)",
    )
    agent.add_argument("--tls-key", metavar="PATH", help="the private key of --tls-cert (PEM)")
    agent.add_argument(
        "--tls-ca", metavar="PATH", help="the CA certificates peers' certificates must chain to"
    )
    agent.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    add_agent_flags(agent)
    agent.set_defaults(run=_run_agent)

    add_commands(commands, _address)
    add_key_commands(commands, _address)
    return parser


def _trusted(text: str) -> frozenset[str]:
    """``--trust spawn,watch``: the remote operations an untrusted agent still allows."""
    names = frozenset(word.strip() for word in text.split(",") if word.strip())
    if not names <= {"spawn", "watch"}:
        raise argparse.ArgumentTypeError("--trust takes spawn and/or watch")
    return names


def _tls(args: argparse.Namespace) -> TlsConfig | None:
    """``--tls-cert``, ``--tls-key`` and ``--tls-ca``: all three, or none."""
    files = (args.tls_cert, args.tls_key, args.tls_ca)
    if not any(files):
        return None
    if not all(files):
        raise ValueError("--tls-cert, --tls-key and --tls-ca go together")
    return TlsConfig(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)


def _run_agent(args: argparse.Namespace) -> int:
    from .agent.logs import configure_logging
    from .agent.runner import AgentOptions, StartupError, run_agent, startup_failure

    configure_logging(args.log_level, args.name)
    seeds = tuple(s.strip() for item in args.join for s in item.split(",") if s.strip())
    try:
        for seed in seeds:
            parse_dns_seed(seed) if is_dns_seed(seed) else _address(seed)
        config = config_from(args.profile, args.overrides).replace(
            keyring=keyring_from(args), tls=_tls(args)
        )
        split_brain = _split_brain_config(args.split_brain, args.stable_after)
        token = read_token(args.http_token_file)
        handlers = tuple(parse_handler(text) for text in args.event_handler)
        if args.trust and not args.untrusted:
            raise ValueError("--trust needs --untrusted")
        transport = TransportConfig(
            untrusted=args.untrusted, trusted=args.trust, debug=args.debug_errors
        )
    except (ConfigError, argparse.ArgumentTypeError, ValueError) as exc:
        print(f"swimactors agent: {exc}", file=sys.stderr)
        return 2
    if args.app and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as uvicorn does: the app lives beside the user
    options = AgentOptions(
        name=args.name,
        bind=args.bind,
        join=seeds,
        config=config,
        profile=args.profile,
        meta=dict(args.meta),
        http=args.http,
        advertise=args.advertise,
        app=args.app,
        split_brain=split_brain,
        http_token=token,
        http_allowed_hosts=tuple(args.http_allow_host),
        event_handlers=handlers,
        keyring_file=args.keyring_file,
        dns_server=args.dns_server,
        transport=transport,
    )
    try:
        trio.run(run_agent, options)
    except (StartupError, OSError, ValueError, BaseExceptionGroup) as exc:
        print(f"swimactors agent: {startup_failure(exc)}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``swimactors`` command line; returns the exit status."""
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code
