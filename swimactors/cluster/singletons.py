"""The cluster's singletons as one node knows them: which exist and where, which were
stopped on purpose, and which the singleton host must re-create.

A singleton is a public name whose registration names the spawnable that re-creates it
(:func:`singleton_meta`).  Every node remembers every singleton it sees in the registry.
A name that goes from the registry does not say why: its holder may have stepped down
(split brain), crashed, or been stopped by its user.  So a holder announces a deliberate
stop on the gossip channel :data:`SINGLETON_CHANNEL`, and only that notice makes the
nodes forget the singleton; any other absence keeps it remembered, for the singleton host
to re-create (docs/split-brain.md, "Singletons").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from .. import wire
from ..membership.delegate import Delegate
from ..registry import Registration

__all__ = [
    "MAX_RETIRED",
    "SINGLETON_CHANNEL",
    "Singleton",
    "SingletonBook",
    "read_retirement",
    "retirement",
    "singleton_factory",
    "singleton_meta",
]

SINGLETON_CHANNEL: Final = "singleton"
"""The gossip channel on which a holder announces a singleton it stopped on purpose."""
MAX_RETIRED: Final = 1024
"""Retirements kept (the latest), so a registration heard after its notice is ignored."""
MAX_FIELD: Final = 1024
"""Most bytes of a name, node name or actor id in a notice (the registry's own limits)."""

_SINGLETON = "singleton"


def singleton_meta(factory: str) -> bytes:
    """Registry metadata marking a singleton and naming the spawnable that re-creates it."""
    return wire.dumps([_SINGLETON, factory])


def singleton_factory(meta: bytes) -> str | None:
    """The spawnable named by :func:`singleton_meta` bytes; None for anything else."""
    if not meta:
        return None
    try:
        items = wire.loads(meta)
    except (wire.WireError, ValueError, TypeError):
        return None
    if type(items) is list and len(items) == 2 and items[0] == _SINGLETON:
        return items[1] if type(items[1]) is str and items[1] else None
    return None


@attrs.frozen
class Singleton:
    """A singleton as last seen in the registry: its spawnable, its node, its actor."""

    factory: str
    node: str
    actor_id: str


def retirement(name: str, node: str, actor_id: str) -> bytes:
    """The notice that ``node`` stopped the singleton ``name`` (actor ``actor_id``) on purpose."""
    return wire.dumps([name, node, actor_id])


def read_retirement(payload: bytes) -> tuple[str, str, str] | None:
    """``(name, node, actor_id)`` from a :func:`retirement` notice; None if malformed."""
    try:
        items = wire.loads(payload)
    except (wire.WireError, ValueError, TypeError):
        return None
    if not (type(items) is list and len(items) == 3):
        return None
    if not all(type(f) is str and 0 < len(f.encode()) <= MAX_FIELD for f in items):
        return None
    name, node, actor_id = items
    return name, node, actor_id


class SingletonBook(Delegate):
    """One node's book of singletons (sans-IO: the caller passes ``now``); rides on
    :data:`SINGLETON_CHANNEL` for the retirement notices."""

    def __init__(self, registered: Callable[[str], bool], counters: Counter[str]) -> None:
        self._registered = registered
        self.counters = counters
        self.remembered: dict[str, Singleton] = {}
        """Singleton name -> where it was last registered."""
        self._retired: dict[str, tuple[str, str]] = {}
        """Name -> (node, actor id) of the latest instance stopped on purpose."""
        self._absent: dict[str, float] = {}
        """Remembered singletons not registered now, and since when this node has
        served on a confirmed view without them (see :meth:`overdue`)."""

    def learn(self, registrations: Iterable[tuple[str, Registration]], now: float) -> None:
        """Remember every singleton registered (but a retired instance heard late), and
        note since when a remembered one has not been."""
        for name, registration in registrations:
            factory = singleton_factory(registration.meta)
            if factory is None or self._retired.get(name) == (
                registration.node,
                registration.actor_id,
            ):
                continue
            self.remembered[name] = Singleton(factory, registration.node, registration.actor_id)
            self._absent.pop(name, None)
        for name in self.remembered.keys() - self._absent.keys():
            if not self._registered(name):
                self._absent[name] = now

    def spawned(self, name: str, singleton: Singleton) -> None:
        """This node started ``singleton`` as ``name``."""
        self.remembered[name] = singleton
        self._absent.pop(name, None)

    def retire(self, name: str, node: str, actor_id: str) -> bool:
        """``node`` stopped ``name``'s instance ``actor_id`` on purpose: forget it (a later
        instance stays); whether it was remembered."""
        self._retired.pop(name, None)
        self._retired[name] = (node, actor_id)
        while len(self._retired) > MAX_RETIRED:
            del self._retired[next(iter(self._retired))]
        known = self.remembered.get(name)
        if known is None or (known.node, known.actor_id) != (node, actor_id):
            return False
        del self.remembered[name]
        self._absent.pop(name, None)
        self.counters["singletons_retired"] += 1
        return True

    def notify_message(self, payload: bytes, now: float) -> None:
        notice = read_retirement(payload)
        if notice is None:
            self.counters["rejected_retirements"] += 1
            return
        self.retire(*notice)

    def missing(self) -> list[str]:
        """The remembered singletons nobody holds now, by name."""
        return [name for name in sorted(self.remembered) if not self._registered(name)]

    def hold_absences(self, now: float, confirmed: bool) -> None:
        """Drop the absences that ended; while this node does not serve on a confirmed
        view, the absences start again (a change pending, or this side stepping down)."""
        for name in list(self._absent):
            if self._registered(name):
                del self._absent[name]
            elif not confirmed:
                self._absent[name] = now

    def postpone(self, name: str, now: float) -> None:
        """Re-creating ``name`` failed: its absence counts again from ``now``."""
        if name in self._absent:
            self._absent[name] = now

    def overdue(self, now: float, wait: float) -> list[str]:
        """Remembered singletons nobody has held for ``wait`` on a confirmed view."""
        return sorted(name for name, since in self._absent.items() if now >= since + wait)

    def next_due(self, wait: float) -> float | None:
        """When the first absence becomes overdue (None: none)."""
        return min(self._absent.values()) + wait if self._absent else None
