"""Trio loopback clusters with a split-brain rule, and a test-only partition of them."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

import swimactors
from swimactors.membership.transport import Deliver, Transport
from swimactors.membership.types import Address, Packet
from tests.cluster.cluster_helpers import FAST, open_systems, until

__all__ = ["Partition", "open_quorum_systems", "until"]


class CuttableTransport:
    """A node's loopback sockets that drop, at the sender, packets to blocked addresses."""

    def __init__(self, sockets: Transport) -> None:
        self.sockets = sockets
        self.blocked: set[Address] = set()

    @property
    def address(self) -> Address:
        return self.sockets.address

    @property
    def counters(self) -> collections.Counter[str]:
        return self.sockets.counters

    def start(self, nursery: trio.Nursery, deliver: Deliver) -> None:
        self.sockets.start(nursery, deliver)

    def send(self, packet: Packet) -> None:
        if packet.destination not in self.blocked:
            self.sockets.send(packet)

    async def flush(self) -> None:
        await self.sockets.flush()

    async def aclose(self) -> None:
        await self.sockets.aclose()


class Partition:
    """Cuts membership traffic between groups of systems (a symmetric cut): each system's
    node runs on a :class:`CuttableTransport`, given through ``Environment(node_transport=)``."""

    def __init__(self) -> None:
        self._transports: dict[str, CuttableTransport] = {}

    async def environment(self, name: str) -> swimactors.Environment:
        sockets = Transport(tcp_timeout=FAST.tcp_timeout)
        await sockets.bind("127.0.0.1", 0)
        transport = self._transports[name] = CuttableTransport(sockets)
        return swimactors.Environment(node_transport=transport)

    def cut(self, *groups: Iterable[swimactors.System]) -> None:
        sides = [[self._transports[system.name] for system in group] for group in groups]
        for side in sides:
            others = {t.address for other in sides if other is not side for t in other}
            for transport in side:
                transport.blocked |= others

    def heal(self) -> None:
        for transport in self._transports.values():
            transport.blocked.clear()


@asynccontextmanager
async def open_quorum_systems(
    count: int, partition: Partition | None = None, **options: Any
) -> AsyncIterator[list[swimactors.System]]:
    """``count`` loopback systems with ``options`` (e.g. ``split_brain=``), all quorum ok;
    with a ``partition``, on transports it can cut."""
    environment = None if partition is None else partition.environment
    async with open_systems(count, config=FAST, environment=environment, **options) as systems:
        await until(lambda: all(s.quorum_state in ("ok", "off") for s in systems), timeout=30.0)
        yield systems
