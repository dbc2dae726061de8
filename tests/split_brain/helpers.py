"""Trio loopback clusters with a split-brain rule, and a test-only partition of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import swimactors
from swimactors.membership.types import Address, Packet
from tests.cluster.cluster_helpers import FAST, _cluster, open_systems, until

__all__ = ["HEALING", "Partition", "open_quorum_systems", "until"]

HEALING = FAST.replace(reconnect_interval=1.0)
"""FAST, and a DOWN member is retried every second (the default 30 s would make a heal slow)."""


class Partition:
    """Cuts membership traffic between groups of systems by dropping, at each sender,
    the packets addressed to a member of another group (a symmetric cut)."""

    def __init__(self, systems: Iterable[swimactors.System]) -> None:
        self._systems = list(systems)
        self._blocked: dict[str, set[Address]] = {s.name: set() for s in self._systems}
        for system in self._systems:
            transport = _cluster(system).node._transport
            transport.send = self._filtered(system.name, transport.send)  # type: ignore[method-assign]

    def _filtered(self, name: str, send: Any) -> Any:
        blocked = self._blocked[name]

        def send_unless_blocked(packet: Packet) -> None:
            if packet.destination not in blocked:
                send(packet)

        return send_unless_blocked

    def cut(self, *groups: Iterable[swimactors.System]) -> None:
        sides = [list(group) for group in groups]
        for side in sides:
            others = {
                _cluster(s).node.address for other in sides if other is not side for s in other
            }
            for system in side:
                self._blocked[system.name] |= others

    def heal(self) -> None:
        for blocked in self._blocked.values():
            blocked.clear()


@asynccontextmanager
async def open_quorum_systems(count: int, **options: Any) -> AsyncIterator[list[swimactors.System]]:
    """``count`` loopback systems with ``options`` (e.g. ``split_brain=``), all quorum ok."""
    async with open_systems(count, config=HEALING, **options) as systems:
        await until(lambda: all(s.quorum_state in ("ok", "off") for s in systems), timeout=30.0)
        yield systems
