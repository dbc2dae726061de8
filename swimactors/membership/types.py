"""The public values of membership: addresses, members, statuses, events and packets."""

from __future__ import annotations

import enum
from typing import NamedTuple

import attrs

__all__ = [
    "Address",
    "Member",
    "MemberAlive",
    "MemberConflict",
    "MemberDown",
    "MemberEvent",
    "MemberLeft",
    "MemberSuspect",
    "MemberUp",
    "MemberUpdated",
    "Packet",
    "Status",
    "format_address",
    "parse_address",
]

Address = tuple[str, int]
"""A ``(host, port)`` pair; the host is an IP literal or a name."""


def format_address(address: Address) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str, default_port: int | None = None) -> Address:
    """Parse ``host:port``, ``[v6]:port`` or (with ``default_port``) a bare host."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        sep = ":" if port_text else ""
    elif not sep or ":" in host:  # bare host or bare IPv6 literal
        host, port_text = text, ""
    if not port_text:
        if default_port is None:
            raise ValueError(f"address {text!r} has no port (expected host:port)")
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"address {text!r} has a bad port {port_text!r}") from None
    if not host or not 0 <= port <= 65535:
        raise ValueError(f"address {text!r} is not host:port with a port in 0..65535")
    return host, port


class Status(enum.Enum):
    """Where a member stands in one node's view."""

    UP = "up"
    SUSPECT = "suspect"
    DOWN = "down"
    LEFT = "left"

    @property
    def is_alive(self) -> bool:
        """UP or SUSPECT: still a member we probe and gossip to."""
        return self is _UP or self is _SUSPECT


_UP, _SUSPECT = Status.UP, Status.SUSPECT
"""Read as module constants: an Enum member read off its class costs about 200 ns on
Python 3.11 (a global about 15), and an Enum's hash is a Python call."""


@attrs.frozen
class Member:
    """A snapshot of one member as this node sees it."""

    name: str
    address: Address
    incarnation: int
    status: Status
    meta: bytes = b""


@attrs.frozen
class MemberEvent:
    """Base of every membership event: the member as it now stands, and when."""

    member: Member
    time: float


@attrs.frozen
class MemberUp(MemberEvent):
    """A member joined (or came back after DOWN / LEFT)."""


@attrs.frozen
class MemberSuspect(MemberEvent):
    """A member missed its probes and is suspected."""


@attrs.frozen
class MemberAlive(MemberEvent):
    """A suspected member refuted the suspicion."""


@attrs.frozen
class MemberDown(MemberEvent):
    """A suspicion expired (or was confirmed): the member is declared failed."""


@attrs.frozen
class MemberLeft(MemberEvent):
    """A member left gracefully."""


@attrs.frozen
class MemberUpdated(MemberEvent):
    """A live member changed its metadata or address."""


@attrs.frozen
class MemberConflict(MemberEvent):
    """A live member's name was claimed from another address; the claim was refused.

    ``member`` is the member we keep; ``other`` is the refused claimant's address.
    """

    other: Address = ("", 0)


class Packet(NamedTuple):
    """One unit for the driver to send: a datagram, or a frame on the reliable stream (a
    named tuple: one is built per packet sent)."""

    destination: Address
    data: bytes
    reliable: bool = False
