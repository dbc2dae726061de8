"""``swimactors keygen`` and ``swimactors keys``, and the agent's encryption flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .agent.commands import DEFAULT_HTTP, TOKEN_ENV, call_agent, run_command
from .security.keyring import Keyring, KeyringError, generate_key

__all__ = ["add_agent_flags", "add_commands", "keyring_from"]


def add_agent_flags(agent: argparse.ArgumentParser) -> None:
    """``--encrypt KEY``, ``--keyring-file PATH`` and ``--plaintext POLICY``."""
    agent.add_argument(
        "--encrypt",
        metavar="KEY",
        help="seal all gossip with this base64 key (`swimactors keygen`); docs/security.md",
    )
    agent.add_argument(
        "--keyring-file",
        metavar="PATH",
        help="keys from this JSON file (primary first); key changes are saved back to it",
    )
    agent.add_argument(
        "--plaintext",
        choices=["refuse", "accept", "send"],
        default="refuse",
        help="with a key, during a migration from plaintext: refuse (default), accept "
        "(send sealed, accept both) or send (send plaintext, accept both)",
    )


def keyring_from(args: argparse.Namespace) -> Keyring | None:
    """The keyring the agent flags ask for (raises KeyringError when they conflict)."""
    if args.encrypt and args.keyring_file:
        raise KeyringError("give --encrypt or --keyring-file, not both")
    if args.keyring_file:
        return Keyring.load(args.keyring_file, plaintext=args.plaintext)
    if args.encrypt:
        return Keyring(args.encrypt, plaintext=args.plaintext)
    if args.plaintext != "refuse":
        raise KeyringError("--plaintext needs --encrypt or --keyring-file")
    return None


def add_commands(commands: Any, address: Callable[[str], str]) -> None:
    """Add ``keygen`` and ``keys`` to the CLI's subparsers (``address`` checks HOST:PORT)."""
    keygen = commands.add_parser("keygen", help="print a new random encryption key (base64)")
    keygen.set_defaults(run=_keygen)
    keys = commands.add_parser("keys", help="install, use, remove or list the cluster's keys")
    action = keys.add_mutually_exclusive_group(required=True)
    action.add_argument("--install", metavar="KEY", help="accept KEY on every node")
    action.add_argument("--use", metavar="KEY", help="seal with KEY on every node (installed)")
    action.add_argument("--remove", metavar="KEY", help="stop accepting KEY on every node")
    action.add_argument("--list", action="store_true", help="this agent's keys")
    keys.add_argument(
        "--http", default=DEFAULT_HTTP, type=address, metavar="HOST:PORT", help="agent HTTP API"
    )
    keys.add_argument("--timeout", type=float, default=5.0, help="seconds to wait")
    keys.add_argument(
        "--token-file",
        metavar="PATH",
        help=f"bearer token for install, use, remove and listing the keys (default ${TOKEN_ENV})",
    )
    keys.set_defaults(run=run_command(_keys))


def _keygen(args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def _keys(args: argparse.Namespace) -> None:
    operation = next((op for op in ("install", "use", "remove") if getattr(args, op)), None)
    if operation is None:
        ring = call_agent(args, "GET", "/v1/keys")
    else:
        ring = call_agent(args, "POST", f"/v1/keys/{operation}", {"key": getattr(args, operation)})
    for entry in ring["keys"]:
        mark = "primary" if entry["id"] == ring["primary"] else ""
        key = entry.get("key", "(key shown with the token)")
        print(f"{key}  {entry['id']}  {mark}".rstrip())
