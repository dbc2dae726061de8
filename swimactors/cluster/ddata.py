"""Distributed data on a System: the replicated store with read and write consistency.

Every node keeps a full replica (:class:`~swimactors.ddata.DataStore`); updates apply
locally at once and spread as gossip deltas (:class:`~swimactors.ddata.DataDelegate`).
A ``majority`` or ``all`` write also sends the delta straight to the other members over
the actor transport and returns once that many replicas (this one included) hold it; a
``majority`` or ``all`` read merges that many replicas' values first.  Too few answers in
time raise :class:`ConsistencyError` (the local update still stands and still spreads).
With split-brain rules, only a serving side takes majority and all writes and reads.
See docs/ddata.md.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ..actors.errors import ActorError, NodeDown
from ..actors.message import message
from ..actors.ref import ActorRef
from ..ddata import (
    DataDecodeError,
    DataDelegate,
    DataStore,
    KeyChanged,
    Writer,
    decode_entries,
    encode_entries,
)
from ..ddata.store import D
from ..logs import logger
from ..membership import Status
from ..registry.delegate import Gossip

if TYPE_CHECKING:
    from .system import System

__all__ = [
    "DEFAULT_DATA_TIMEOUT",
    "TOMBSTONE_TTL",
    "Consistency",
    "ConsistencyError",
    "DataChanged",
    "DataRead",
    "DataWrite",
    "DistributedData",
]

log = logger("swimactors.ddata")

TOMBSTONE_TTL = 3600.0
"""Seconds an LWW map keeps a removed key's tombstone (every replica must hear of the
removal within that time, or a stale copy can bring the key back)."""
DEFAULT_DATA_TIMEOUT = 3.0
"""Seconds a majority or all read or write waits for the replicas' answers."""
RETRY_PAUSE = 0.1
"""Seconds before a majority or all request goes again to a replica whose connection broke
while it is still UP or SUSPECT here (writes and reads merge, so a repeat is harmless)."""


class Consistency(enum.Enum):
    """How many replicas (this one included) a read or write must reach."""

    LOCAL = "local"
    MAJORITY = "majority"
    ALL = "all"

    def needed(self, replicas: int) -> int:
        """Answers (this replica's included) a read or write at this level needs of ``replicas``."""
        if self is Consistency.LOCAL:
            return 1
        if self is Consistency.MAJORITY:
            return replicas // 2 + 1
        return replicas


class ConsistencyError(ActorError):
    """Fewer replicas than the consistency level asked for answered in time."""

    def __init__(self, message: str, *, needed: int, reached: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.reached = reached


@message("swimactors.DataWrite")
class DataWrite:
    """A delta sent straight to a replica (a majority or all write); answered with True."""

    entries: bytes
    consistency: str


@message("swimactors.DataRead")
class DataRead:
    """A replica's value of ``key``, as encoded entries (empty if it holds none)."""

    key: str
    consistency: str


@message("swimactors.DataChanged")
class DataChanged:
    """Told to a subscriber when ``key``'s value changed on its node."""

    key: str
    value: Any


class DistributedData:
    """One System's replica of the distributed data (``system.data``)."""

    def __init__(self, system: System, clock: Callable[[], float]) -> None:
        self.system = system
        self.clock = clock
        self.store = DataStore(system.name)
        self.delegate: DataDelegate | None = None
        self._subscribers: dict[str, set[ActorRef]] = {}
        self.store.on_change = self._changed
        self.tombstone_ttl = TOMBSTONE_TTL
        """Seconds an LWW map tombstone is kept (see :meth:`run`)."""

    def join_cluster(self, node: Gossip, incarnation: int, clock: Callable[[], float]) -> None:
        """Replicate over ``node``'s gossip, as the process at epoch ``incarnation`` (the
        node's start incarnation); called once, before any update."""
        self.clock = clock
        self.store = DataStore(self.system.name, incarnation, clock=clock)
        self.store.on_change = self._changed
        self.delegate = DataDelegate(self.store, node)
        self.dropped_notices = 0
        """Change notices not delivered because a subscriber's mailbox was full."""

    async def run(self) -> None:
        """Drop LWW map tombstones older than :attr:`tombstone_ttl`, every eighth of it.
        Safe while every replica receives a removal (by gossip or push/pull) within that
        time: a replica cut off longer that still holds the removed value would bring it
        back (Cassandra's gc_grace rule; docs/ddata.md)."""
        while True:
            await trio.sleep(self.tombstone_ttl / 8)
            self.store.prune_tombstones(self.clock() - self.tombstone_ttl)

    # -- the API ---------------------------------------------------------------------------

    def value(self, key: str, default: Any = None) -> Any:
        """``key``'s value on this replica (no waiting)."""
        return self.store.value(key, default)

    async def update(
        self,
        key: str,
        kind: type[D],
        modify: Callable[[D, Writer], D],
        *,
        write: Consistency = Consistency.LOCAL,
        timeout: float = DEFAULT_DATA_TIMEOUT,
    ) -> Any:
        """Apply ``modify(value, writer)`` to ``key`` (``kind`` if new); the new value.

        ``modify`` calls one mutator and returns its delta, e.g.
        ``lambda counter, w: counter.increment(w, 5)``.  With ``write`` MAJORITY or ALL
        the call returns once that many replicas hold the update, or raises
        :class:`ConsistencyError` after ``timeout`` (the update stays and spreads anyway).
        """
        if write is not Consistency.LOCAL:
            self.system.check_quorum()
        delta = self.store.update(key, kind, modify, self.clock())
        if self.delegate is not None:
            self.delegate.publish(delta)
        if write is not Consistency.LOCAL:
            request = DataWrite(encode_entries(delta), write.value)
            await self._gather(request, write, timeout, f"write of {key!r}")
        return self.store.value(key)

    async def get(
        self,
        key: str,
        *,
        read: Consistency = Consistency.LOCAL,
        timeout: float = DEFAULT_DATA_TIMEOUT,
        default: Any = None,
    ) -> Any:
        """``key``'s value, after merging ``read`` replicas' values (this one included)."""
        if read is not Consistency.LOCAL:
            self.system.check_quorum()
            await self._gather(DataRead(key, read.value), read, timeout, f"read of {key!r}")
        return self.store.value(key, default)

    def subscribe(self, key: str, ref: ActorRef) -> None:
        """Tell ``ref`` (a local actor) a :class:`DataChanged` after each change of ``key``."""
        self._subscribers.setdefault(key, set()).add(ref)

    def unsubscribe(self, key: str, ref: ActorRef) -> None:
        """Stop telling ``ref`` about changes of ``key``."""
        refs = self._subscribers.get(key)
        if refs is not None:
            refs.discard(ref)
            if not refs:
                del self._subscribers[key]

    # -- replicas --------------------------------------------------------------------------

    def replicas(self) -> list[str]:
        """The other members a majority or all request goes to (UP or SUSPECT)."""
        cluster = self.system.cluster
        if cluster is None:
            return []
        return sorted(
            m.name
            for m in cluster.node.members()
            if m.name != self.system.name and m.status in (Status.UP, Status.SUSPECT)
        )

    async def _gather(
        self, request: DataWrite | DataRead, level: Consistency, timeout: float, what: str
    ) -> None:
        others = self.replicas()
        needed = level.needed(len(others) + 1)
        reached, pending = 1, len(others)
        done = trio.Event()

        async def ask(node: str) -> None:
            nonlocal reached, pending
            try:
                if await self._answer(node, request, timeout, what):
                    reached += 1
            finally:
                pending -= 1
            if reached >= needed or pending == 0:
                done.set()

        timed_out = False
        if reached < needed:
            with trio.move_on_after(timeout) as scope:
                async with trio.open_nursery() as nursery:
                    for node in others:
                        nursery.start_soon(ask, node)
                    await done.wait()
                    nursery.cancel_scope.cancel()
            timed_out = scope.cancelled_caught
        if reached < needed:
            ended = f"within {timeout} s" if timed_out else "(the others failed or left)"
            raise ConsistencyError(
                f"{level.value} {what}: {reached} of {needed} replicas answered {ended}",
                needed=needed,
                reached=reached,
            )

    async def _answer(
        self, node: str, request: DataWrite | DataRead, timeout: float, what: str
    ) -> bool:
        """Whether ``node`` answered ``request`` (a read's answer merged).  A broken
        connection is retried while ``node`` is still a replica: a peer that briefly took
        this node for DOWN closes it, and the refutation brings this node back at once."""
        cluster = self.system.cluster
        assert cluster is not None
        while True:
            try:
                answer = await cluster.transport.request(node, request, timeout)
            except NodeDown as exc:
                if node not in self.replicas():
                    log.debug("%s: %s left: %s", what, node, exc)
                    return False
                await trio.sleep(RETRY_PAUSE)
                continue
            except (ActorError, trio.TooSlowError) as exc:
                log.debug("%s: %s did not answer: %s", what, node, exc)
                return False
            return not isinstance(request, DataRead) or self._merge_answer(answer)

    def _merge_answer(self, answer: Any) -> bool:
        if not isinstance(answer, bytes):
            return False
        if not answer:
            return True
        try:
            self.store.merge(decode_entries(answer))
        except DataDecodeError:
            return False
        return True

    def serve(self, request: DataWrite | DataRead) -> Any:
        """Answer another node's direct write or read (from the system's request handler)."""
        if request.consistency != Consistency.LOCAL.value:
            self.system.check_quorum()
        if isinstance(request, DataWrite):
            try:
                self.store.merge(decode_entries(request.entries))
            except DataDecodeError as exc:
                raise ValueError(f"malformed data write: {exc}") from None
            return True
        current = self.store.get(request.key)
        return b"" if current is None else encode_entries({request.key: current})

    # -- change notices --------------------------------------------------------------------

    def _changed(self) -> None:
        """The store queued a change (called synchronously): tell the subscribers now."""
        self._notify(self.store.take_changes())

    def _notify(self, changes: list[KeyChanged]) -> None:
        for change in changes:
            for ref in list(self._subscribers.get(change.key, ())):
                try:
                    ref.tell_nowait(DataChanged(change.key, change.value))
                except ActorError:
                    self.dropped_notices += 1
