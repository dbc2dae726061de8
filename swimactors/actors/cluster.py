"""What makes a System a cluster member: membership, the name registry and the transport.

The registry rides on the membership node's gossip (channel ``"registry"``) and is created
with the node's start incarnation, as :mod:`swimactors.registry` requires.  The actor
transport listens on its own TCP port, announced to the cluster in the member metadata
under ``"actors"`` (a port on the member's address, or ``host:port``).  A background task
turns membership events into :class:`NodeDown` failures and ``Terminated`` notices, and
registry changes into wake-ups for ``wait_for`` and into the conflict rule: an actor whose
public name went to another node is told :class:`NameLost` and, unless the system keeps
losers, stopped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from ..membership import MemberDown, MemberLeft, Status, decode_meta
from ..membership.node import Node
from ..membership.types import parse_address
from ..registry import NameLost as RegistryNameLost
from ..registry import Registration, Registry, RegistryDelegate
from .message import message
from .ref import ActorRef
from .transport import ActorTransport, Address

if TYPE_CHECKING:
    from ..system import System

__all__ = ["META_KEY", "Cluster", "NameLost", "SpawnRequest"]

log = logging.getLogger("swimactors.cluster")

META_KEY = "actors"
"""The member-metadata key that carries the actor transport's port."""


@message("swimactors.NameLost")
class NameLost:
    """Told to an actor whose public name another node won (registry conflict rule)."""

    name: str
    winner: ActorRef


@message("swimactors.SpawnRequest")
class SpawnRequest:
    """``spawn_on``: start a registered spawnable factory with plain arguments."""

    factory: str
    args: list[Any]
    name: str | None = None
    public: bool = True


def actor_id(ref: ActorRef) -> str:
    return f"{ref.path}#{ref.uid}"


LOSER_NOTICE_TIMEOUT = 3.0
"""Seconds an actor that lost its name may spend on the NameLost notice before it stops."""

class Cluster:
    """The cluster side of one System (see the module docstring)."""

    def __init__(
        self,
        system: System,
        node: Node,
        transport: ActorTransport,
        *,
        incarnation: int,
        keep_losers: bool,
    ) -> None:
        self.system = system
        self.node = node
        self.transport = transport
        self.keep_losers = keep_losers
        self.names = RegistryDelegate(Registry(node.name, incarnation), node)
        self._names_changed = trio.Event()
        self.names.registry.on_change = self._names_changed.set
        self.changed = trio.Event()
        self.public: dict[str, ActorRef] = {}
        """Names this node registered, and the actor each names."""

    # -- names -----------------------------------------------------------------------------

    def registration(self, name: str) -> Registration | None:
        return self.names.registry.lookup(name)

    def ref_for(self, registration: Registration) -> ActorRef | None:
        path, _, uid = registration.actor_id.rpartition("#")
        if not path or not uid.isdigit():
            return None
        return self.system.resolve(registration.node, path, int(uid))

    def publish(self, name: str, ref: ActorRef, meta: bytes = b"") -> None:
        """Register ``name`` for a local actor cluster-wide (with registry ``meta``, e.g.
        a singleton's factory); unregistered when it stops."""
        self.public[name] = ref
        self.names.register(name, actor_id(ref), meta)
        cell = self.system.local_cell(ref)
        assert cell is not None
        cell.add_watcher(_Unpublish(self, name))

    def unpublish(self, name: str, ref: ActorRef) -> None:
        if self.public.get(name) == ref:
            del self.public[name]
            self.names.unregister(name)
            self._changed()

    # -- membership ------------------------------------------------------------------------

    def actor_address(self, node: str) -> Address | None:
        member = self.node.member(node)
        if member is None or member.status not in (Status.UP, Status.SUSPECT):
            return None
        value = decode_meta(member.meta).get(META_KEY)
        if value is None:
            return None
        try:
            if value.isdigit():
                return member.address[0], int(value)
            return parse_address(value)
        except ValueError:
            return None

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_members)
            nursery.start_soon(self._follow_names)

    async def _follow_members(self) -> None:
        with self.node.events() as events:
            async for event in events:
                if isinstance(event, MemberDown | MemberLeft):
                    reason = "down" if isinstance(event, MemberDown) else "left"
                    self.transport.node_down(event.member.name, reason)
                    self._settle_names()

    async def _follow_names(self) -> None:
        """Act on registry changes as they happen (the registry wakes us; no polling)."""
        while True:
            await self._names_changed.wait()
            self._names_changed = trio.Event()
            self.names.registry.on_change = self._names_changed.set
            self._settle_names()

    def _settle_names(self) -> None:
        changes = self.names.registry.take_changes()
        if not changes:
            return
        for change in changes:
            if isinstance(change, RegistryNameLost):
                self._lost(change)
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def _lost(self, change: RegistryNameLost) -> None:
        name = change.name
        ref = self.public.get(name)
        if ref is None or actor_id(ref) != change.lost.actor_id:
            return
        winner = self.ref_for(change.winner)
        log.warning("%s lost the name %r to %s", ref, name, change.winner.node)
        del self.public[name]
        self.names.unregister(name)
        if winner is not None:
            self.system.nursery.start_soon(self._tell_loser, ref, NameLost(name, winner))

    async def _tell_loser(self, ref: ActorRef, notice: NameLost) -> None:
        """Let the loser handle the notice (an ask, so it is handled), then stop it."""
        with trio.move_on_after(LOSER_NOTICE_TIMEOUT):
            try:
                await ref.ask(notice, timeout=None)
            except Exception as exc:  # its failure must not stop us from stopping it
                log.info("%s failed on %r: %s", ref, notice, exc)
        cell = self.system.local_cell(ref)
        if cell is not None and not self.keep_losers:
            cell.request_stop()


class _Unpublish:
    """Watches a public actor and withdraws its name when it stops."""

    __slots__ = ("cluster", "name")

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = name

    def notify_terminated(self, ref: ActorRef, reason: str | None) -> None:
        self.cluster.unpublish(self.name, ref)
