"""The CLI's commands that talk to a running agent over its HTTP API (Serf's set):
``members``, ``join``, ``leave``, ``force-leave``, ``event``, ``query``, ``monitor``,
``info``, ``tags``, ``rtt``, ``version``.

Each prints a table or text, or the agent's JSON with ``--format json``.  Commands that
change state send the bearer token from ``--token-file`` or ``$SWIMACTORS_HTTP_TOKEN``.
Exit codes: 0 success, 1 the agent refused (an HTTP error), 2 no agent could be asked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from .. import __version__
from ..logs import printable
from ..membership.types import parse_address
from .http import HttpError, http_request

__all__ = [
    "DEFAULT_HTTP",
    "TOKEN_ENV",
    "add_commands",
    "call_agent",
    "format_members",
    "read_token",
    "run_command",
]

DEFAULT_HTTP = "127.0.0.1:8946"
TOKEN_ENV = "SWIMACTORS_HTTP_TOKEN"


class CommandError(Exception):
    """Ends a command with a message and an exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def read_token(path: str | None) -> str | None:
    """The bearer token from ``path`` (first line), else ``$SWIMACTORS_HTTP_TOKEN``."""
    if path:
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the token file {path}: {exc.strerror}") from None
        if not token:
            raise ValueError(f"the token file {path} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


def call_agent(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """One request to the agent: its JSON answer, or a CommandError."""
    address = parse_address(args.http)
    token = read_token(getattr(args, "token_file", None))
    timeout = args.timeout + (body.get("timeout", 0) if isinstance(body, dict) else 0)
    try:
        status, data = trio.run(
            lambda: http_request(address, method, path, body, token=token, timeout=timeout)
        )
    except HttpError as exc:
        raise CommandError(
            f"{exc}\n(is `swimactors agent --http {args.http}` running?)", 2
        ) from None
    if status != 200:
        try:
            message = json.loads(data)["error"]
        except (ValueError, KeyError, TypeError):
            message = data[:200].decode(errors="replace")
        raise CommandError(f"the agent answered HTTP {status}: {message}", 1)
    return json.loads(data)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def format_members(members: list[dict[str, Any]]) -> str:
    """A ``serf members``-style table."""
    rows = [["NAME", "ADDRESS", "STATUS", "INCARNATION", "META"]]
    for m in members:
        meta = ",".join(f"{k}={v}" for k, v in sorted(m["meta"].items()))
        rows.append([m["name"], m["address"], m["status"], str(m["incarnation"]), meta])
    return _table([[printable(cell) for cell in row] for row in rows])


def _tag_filters(items: list[str]) -> list[tuple[str, re.Pattern[str]]]:
    filters = []
    for item in items:
        key, sep, pattern = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--tag expects KEY=REGEX, got {item!r}", 2)
        try:
            filters.append((key, re.compile(pattern)))
        except re.error as exc:
            raise CommandError(f"--tag {item!r}: {exc}", 2) from None
    return filters


def _members(args: argparse.Namespace) -> None:
    members: list[dict[str, Any]] = call_agent(args, "GET", "/v1/members")
    tags = _tag_filters(args.tag)
    members = [
        m
        for m in members
        if (args.status is None or m["status"] == args.status)
        and (args.name is None or re.fullmatch(args.name, m["name"]))
        and all(p.fullmatch(m["meta"].get(k, "")) for k, p in tags)
    ]
    if args.format == "json":
        _print_json(members)
    elif args.detailed:
        for m in members:
            print(printable(f"{m['name']}:"))
            for key in ("address", "status", "incarnation"):
                print(printable(f"  {key}: {m[key]}"))
            for key, value in sorted(m["meta"].items()):
                print(printable(f"  tag {key}: {value}"))
    elif members:
        print(format_members(members))


def _join(args: argparse.Namespace) -> None:
    answer = call_agent(args, "POST", "/v1/join", {"addresses": args.addresses})
    if args.format == "json":
        _print_json(answer)
    else:
        print(f"joining through {', '.join(answer['joining'])}")


def _leave(args: argparse.Namespace) -> None:
    answer = call_agent(args, "POST", "/v1/leave", {})
    print(json.dumps(answer) if args.format == "json" else f"{answer['leaving']} is leaving")


def _force_leave(args: argparse.Namespace) -> None:
    answer = call_agent(args, "POST", "/v1/force-leave", {"name": args.name})
    print(json.dumps(answer) if args.format == "json" else f"{answer['left']} is now left")


def _event(args: argparse.Namespace) -> None:
    answer = call_agent(args, "POST", "/v1/event", {"name": args.name, "payload": args.payload})
    if args.format == "json":
        _print_json(answer)
    else:
        print(f"event {answer['name']!r} sent (ltime {answer['ltime']})")


def _query(args: argparse.Namespace) -> None:
    body = {
        "name": args.name,
        "payload": args.payload,
        "nodes": args.node,
        "tags": dict(item.partition("=")[::2] for item in args.tag),
        "timeout": args.query_timeout,
    }
    answer = call_agent(args, "POST", "/v1/query", body)
    if args.format == "json":
        _print_json(answer)
        return
    for node, payload in answer["answers"].items():
        print(printable(f"{node}: {payload.rstrip()}"))
    print(f"{len(answer['answers'])} answers")


def _describe(entry: dict[str, Any]) -> str:
    """One line for an event of ``monitor``, what peers wrote in it escaped."""
    return printable(_event_text(entry))


def _event_text(entry: dict[str, Any]) -> str:
    if "member" in entry:
        m = entry["member"]
        return f"{entry['kind']:<14} {m['name']} {m['address']} incarnation={m['incarnation']}"
    if entry["kind"] == "log":
        return f"{'log':<14} {entry['level']} {entry['logger']}: {entry['message']}"
    if entry["kind"] == "user":
        return f"{'user':<14} {entry['name']} from {entry['origin']}: {entry['payload']}"
    return f"{entry['kind']:<14} {entry.get('name', '')} from {entry.get('origin', '')}"


def _monitor(args: argparse.Namespace) -> None:
    since = 0 if args.backlog else call_agent(args, "GET", "/v1/events?since=0")["last"]
    while True:
        answer = call_agent(args, "GET", f"/v1/events?since={since}&wait=10")
        for entry in answer["events"]:
            print(json.dumps(entry) if args.format == "json" else _describe(entry), flush=True)
        since = answer["last"]


def _info(args: argparse.Namespace) -> None:
    info = call_agent(args, "GET", "/v1/info")
    if args.format == "json":
        _print_json(info)
        return
    for section in ("agent", "tags", "members", "config", "counters", "events"):
        print(f"{section}:")
        for key, value in info[section].items():
            print(printable(f"  {key} = {value}"))
    print(f"quorum: {info['quorum']}\nactors: {info['actors']}")


def _tags(args: argparse.Namespace) -> None:
    pairs = [item.partition("=") for item in args.set]
    if any(not sep or not key for key, sep, _ in pairs):
        raise CommandError("--set expects KEY=VALUE", 2)
    body = {"set": {k: v for k, _, v in pairs}, "delete": args.delete}
    answer = call_agent(args, "PUT", "/v1/tags", body)
    if args.format == "json":
        _print_json(answer)
    else:
        print(",".join(f"{k}={v}" for k, v in sorted(answer["tags"].items())))


def _rtt(args: argparse.Namespace) -> None:
    answer = call_agent(args, "GET", f"/v1/rtt?node={urllib.parse.quote(args.node)}")
    if args.format == "json":
        _print_json(answer)
    else:
        print(f"round trip to {answer['node']}: {answer['rtt'] * 1000:.3f} ms")


def _version(args: argparse.Namespace) -> None:
    print(f"swimactors {__version__}")
    try:
        agent = call_agent(args, "GET", "/v1/info")["agent"]
    except CommandError:
        return
    print(f"agent {agent['name']} at {args.http}: swimactors {agent['version']}")


def run_command(
    command: Callable[[argparse.Namespace], None],
) -> Callable[[argparse.Namespace], int]:
    """``command`` as a CLI entry point: exit status 0, or its error's status with one
    line on stderr (130 when interrupted)."""

    def run(args: argparse.Namespace) -> int:
        try:
            command(args)
        except CommandError as exc:
            print(f"swimactors {args.command}: {exc}", file=sys.stderr)
            return exc.status
        except ValueError as exc:  # an unreadable token file
            print(f"swimactors {args.command}: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
        return 0

    return run


def add_commands(commands: Any, address: Callable[[str], str]) -> None:
    """Add the client commands to the CLI's subparsers (``address`` checks HOST:PORT)."""

    def command(name: str, run: Callable[[argparse.Namespace], None], help: str) -> Any:
        parser = commands.add_parser(name, help=help)
        parser.add_argument(
            "--http",
            default=DEFAULT_HTTP,
            type=address,
            metavar="HOST:PORT",
            help="the agent's HTTP API (default %(default)s)",
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait")
        parser.add_argument(
            "--token-file",
            metavar="PATH",
            help=f"bearer token for commands that change state (default ${TOKEN_ENV})",
        )
        parser.set_defaults(run=run_command(run))
        return parser

    members = command("members", _members, "list the members a running agent sees")
    members.add_argument("--json", dest="format", action="store_const", const="json")
    members.add_argument("--status", choices=["up", "suspect", "down", "left"])
    members.add_argument("--name", metavar="REGEX", help="only names matching REGEX")
    members.add_argument(
        "--tag", action="append", default=[], metavar="KEY=REGEX", help="only matching tags"
    )
    members.add_argument("--detailed", action="store_true", help="every field and tag")

    join = command("join", _join, "make the agent join through more members")
    join.add_argument("addresses", nargs="+", type=address, metavar="HOST:PORT")
    command("leave", _leave, "make the agent leave the cluster gracefully and stop")
    force_leave = command("force-leave", _force_leave, "mark a failed (down) member left")
    force_leave.add_argument("name")

    event = command("event", _event, "send a user event to every member")
    event.add_argument("name")
    event.add_argument("payload", nargs="?", default="")

    query = command("query", _query, "ask the matching members and print their answers")
    query.add_argument("name")
    query.add_argument("payload", nargs="?", default="")
    query.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    query.add_argument(
        "--tag", action="append", default=[], metavar="KEY=REGEX", help="only matching tags"
    )
    query.add_argument(
        "--query-timeout", type=float, default=3.0, metavar="SECONDS", help="collect answers"
    )

    monitor = command("monitor", _monitor, "print the agent's events and log lines as they happen")
    monitor.add_argument("--backlog", action="store_true", help="start with the recent ones")
    command("info", _info, "the agent's configuration, counters and quorum state")
    tags = command("tags", _tags, "change the agent's tags at run time")
    tags.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    tags.add_argument("--delete", action="append", default=[], metavar="KEY")
    rtt = command("rtt", _rtt, "round-trip time to a member over the actor transport")
    rtt.add_argument("node")
    command("version", _version, "this CLI's version, and the agent's if one answers")
