"""Names across nodes: the cluster-wide registry of public actor names, and its conflict rule.

The registry rides on the membership node's gossip (channel ``"registry"``) and is created
with the node's start incarnation, as :mod:`swimactors.registry` requires.  Registry
changes wake ``wait_for`` and apply the conflict rule: an actor whose public name went to
another node is told :class:`NameLost` and, unless the system keeps losers, stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import trio

from ..actors.message import message
from ..actors.protocol import wire_ref
from ..actors.ref import ActorRef
from ..actors.runtime import LocalSystem
from ..logs import logger
from ..membership.node import Node
from ..registry import Change, Registration, Registry, RegistryDelegate, State
from ..registry import NameLost as RegistryNameLost

__all__ = ["LOSER_NOTICE_TIMEOUT", "NameLost", "Names", "actor_id"]

log = logger("swimactors.cluster")

LOSER_NOTICE_TIMEOUT = 3.0
"""Seconds an actor that lost its name may spend on the NameLost notice before it stops."""


@message("swimactors.NameLost")
class NameLost:
    """Told to an actor whose public name another node won (registry conflict rule)."""

    name: str
    winner: ActorRef


def actor_id(ref: ActorRef) -> str:
    """How the registry names an actor: ``path#uid``."""
    return f"{ref.path}#{ref.uid}"


class Names:
    """One node's view of the registry and the public names it holds itself."""

    def __init__(
        self, system: LocalSystem, node: Node, *, incarnation: int, keep_losers: bool
    ) -> None:
        self.system = system
        self.keep_losers = keep_losers
        self.registry = Registry(node.name, incarnation)
        self.delegate = RegistryDelegate(self.registry, node)
        self._changed_now = trio.Event()
        self.registry.on_change = self._changed_now.set
        self.changed = trio.Event()
        """Set (and replaced) whenever the registry changed."""
        self.public: dict[str, ActorRef] = {}
        """Names this node registered, and the actor each names."""
        self._withdrawals: list[State] = []
        """The unregistrations of :meth:`withdraw_all`, until :meth:`repeat_withdrawals`."""
        self.handlers: list[Callable[[Change], None]] = []
        """Told of every registry change, after the public-name rule (grains, groups)."""

    # -- reading -----------------------------------------------------------------------------

    def registration(self, name: str) -> Registration | None:
        """The winning registration of ``name``, or None."""
        return self.registry.lookup(name)

    def registrations(self, with_meta: bool = False) -> Iterator[tuple[str, Registration]]:
        """Every registered name and its winning registration, by name (with
        ``with_meta``, only those whose winner carries meta: :meth:`Registry.winners`)."""
        return self.registry.winners(with_meta=with_meta)

    def ref_for(self, registration: Registration) -> ActorRef | None:
        """The ref a registration names (None if its actor id is malformed: a forged one
        must not raise where a name is looked up, or lost, as ``#²`` did)."""
        path, _, uid = registration.actor_id.rpartition("#")
        if not (path and uid.isascii() and uid.isdigit()):
            return None
        if not wire_ref(registration.node, path, int(uid)):
            return None
        return self.system.resolve(registration.node, path, int(uid))

    # -- this node's names -------------------------------------------------------------------

    def publish(self, name: str, ref: ActorRef, meta: bytes = b"") -> None:
        """Register ``name`` for a local actor cluster-wide (with registry ``meta``, e.g.
        a singleton's factory); unregistered when it stops."""
        self.public[name] = ref
        self.delegate.register(name, actor_id(ref), meta)
        cell = self.system.local_cell(ref)
        assert cell is not None
        cell.add_watcher(_Unpublish(self, name))

    def unpublish(self, name: str, ref: ActorRef) -> None:
        """Withdraw this node's public ``name`` if ``ref`` still holds it."""
        if self.public.get(name) == ref:
            del self.public[name]
            self.delegate.unregister(name)
            self._changed()

    def withdraw_all(self) -> dict[str, ActorRef]:
        """Unregister every public name this node holds; what each named (split brain)."""
        withdrawn, self.public = self.public, {}
        for name in withdrawn:
            self._withdrawals.append(self.delegate.unregister(name))
        return withdrawn

    def repeat_withdrawals(self) -> None:
        """Gossip again the unregistrations :meth:`withdraw_all` sent.  A side steps down
        when it is cut off, so they may have reached only the nodes cut off with it; a
        node elsewhere then goes on seeing the names held here until a push/pull repairs
        it (a singleton host does not re-create a singleton it sees held, so that was a
        gap of up to a push/pull period).  A delta merges idempotently, and an
        unregistration removes only the registration it names, never a later one."""
        withdrawals, self._withdrawals = self._withdrawals, []
        for delta in withdrawals:
            self.delegate.publish(delta)

    def restore(self, name: str, ref: ActorRef) -> None:
        """Register a withdrawn name again for the actor it named."""
        self.public[name] = ref
        self.delegate.register(name, actor_id(ref))

    def node_down(self, node: str, incarnation: int) -> None:
        """Drop ``node``'s registrations everywhere (it is treated as DOWN)."""
        self.delegate.publish(self.registry.node_down(node, incarnation))

    # -- following the registry --------------------------------------------------------------

    async def run(self) -> None:
        """Act on registry changes as they happen (the registry wakes us; no polling)."""
        while True:
            await self._changed_now.wait()
            self._changed_now = trio.Event()
            self.registry.on_change = self._changed_now.set
            self.settle()

    def settle(self) -> None:
        """Take the registry's changes: apply the conflict rule, wake who waits on names."""
        changes = self.registry.take_changes()
        if not changes:
            return
        for change in changes:
            if isinstance(change, RegistryNameLost):
                self._lost(change)
            for handler in self.handlers:
                handler(change)
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
        self.delegate.unregister(name)
        if winner is not None:
            notice = NameLost(name, winner)
            if self.system.event_hub.active:
                self.system.event_hub.publish(notice)
            self.system.nursery.start_soon(self._tell_loser, ref, notice)

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

    __slots__ = ("name", "names")

    def __init__(self, names: Names, name: str) -> None:
        self.names = names
        self.name = name

    def notify_terminated(self, ref: ActorRef, reason: str | None) -> None:
        self.names.unpublish(self.name, ref)
