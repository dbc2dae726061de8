"""Seals what a node sends and opens what it receives, around any node transport.

Wraps a :class:`~swimactors.membership.transport.NodeTransport` when the config has a
keyring: datagrams and push/pull frames alike pass through one
:class:`~swimactors.security.PacketSealer`, so nothing unsealed reaches the core (unless the
keyring's plaintext policy accepts it during a migration).  A peer whose packets fail to
open is logged once per host (it is another cluster, or holds another key) and counted every time.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import trio

from ..logs import logger
from ..security import Keyring, PacketSealer, Rejected
from .once import OncePerPeer
from .transport import Deliver, NodeTransport
from .types import Address, Packet

__all__ = ["SealedTransport", "Sealing"]

log = logger(__name__)

_FOREIGN = (Rejected.UNKNOWN_KEY, Rejected.FORGED, Rejected.UNSEALED)


class Sealing:
    """Seals outgoing packets and opens incoming ones with the cluster keyring (no I/O:
    both drivers wrap their sends and deliveries with it)."""

    def __init__(self, keyring: Keyring, label: str, wall: Callable[[], float] = time.time) -> None:
        self.sealer = PacketSealer(keyring, label)
        self._wall = wall
        self._foreign = OncePerPeer("dropping packets from another cluster or key", log)

    def seal(self, data: bytes) -> bytes:
        """``data`` sealed now."""
        return self.sealer.seal(data, self._wall())

    def opening(self, deliver: Deliver) -> Deliver:
        """``deliver`` behind opening: what fails to open is dropped (counted by the sealer,
        logged once per peer host when it is another cluster's or another key's)."""

        def open_and_deliver(
            source: Address, data: bytes, peer: frozenset[str] | None = None
        ) -> None:
            opened = self.sealer.open(data, self._wall())
            if isinstance(opened, Rejected):
                if opened in _FOREIGN:
                    self._foreign(source, opened.value.replace("_", " "))
                return
            deliver(source, opened, peer)

        return open_and_deliver


class SealedTransport:
    """A node transport whose packets are sealed with the cluster keyring."""

    def __init__(
        self,
        inner: NodeTransport,
        keyring: Keyring,
        label: str,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self.sealing = Sealing(keyring, label, wall)
        self.sealer = self.sealing.sealer

    @property
    def address(self) -> Address:
        return self._inner.address

    @property
    def counters(self) -> collections.Counter[str]:
        counters = collections.Counter(self._inner.counters)
        counters.update(self.sealer.counters)
        return counters

    def start(self, nursery: trio.Nursery, deliver: Deliver) -> None:
        self._inner.start(nursery, self.sealing.opening(deliver))

    def send(self, packet: Packet) -> None:
        self._inner.send(packet._replace(data=self.sealing.seal(packet.data)))

    async def flush(self) -> None:
        await self._inner.flush()

    async def aclose(self) -> None:
        await self._inner.aclose()
