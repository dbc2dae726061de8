"""Where grains keep their state between activations: the GrainStore interface and three
stores: in memory (the default; one node, lost with it), SQLite (stdlib, durable on one
node) and the cluster's distributed data (replicated: survives the loss of a node).

A state is plain CBOR data (what a message field typed ``Any`` may hold), at most
:data:`MAX_STATE_BYTES` encoded, stored per ``(kind, identity)``.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .. import wire
from ..ddata import DataError, LWWRegister
from ..ddata.base import check_value

if TYPE_CHECKING:
    from .ddata import Consistency, DistributedData

__all__ = [
    "MAX_STATE_BYTES",
    "DataGrainStore",
    "GrainStore",
    "MemoryGrainStore",
    "SQLiteGrainStore",
]

MAX_STATE_BYTES = 4096
"""Largest grain state a store accepts (the distributed data's LWW value limit)."""


class GrainStore(Protocol):
    """Loads a grain's state when it activates and saves it when asked and on deactivation."""

    async def load(self, kind: str, identity: str) -> Any:
        """The saved state, or None if there is none."""
        ...

    async def save(self, kind: str, identity: str, state: Any) -> None:
        """Keep ``state`` as the grain's state (DataError unless it is plain data within
        the size limit)."""
        ...


def check_state(state: Any) -> None:
    """Raise :class:`DataError` unless ``state`` is plain data within the size limit."""
    check_value(state, MAX_STATE_BYTES, "a grain state")


class MemoryGrainStore:
    """States in a dict of this process (encoded, so a saved state is a snapshot)."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], bytes] = {}

    async def load(self, kind: str, identity: str) -> Any:
        await trio.lowlevel.checkpoint_if_cancelled()  # no wait: a dict read
        data = self._states.get((kind, identity))
        return None if data is None else wire.loads(data)

    async def save(self, kind: str, identity: str, state: Any) -> None:
        check_state(state)
        await trio.lowlevel.checkpoint()
        self._states[(kind, identity)] = wire.dumps(state)

    def __len__(self) -> int:
        return len(self._states)


class SQLiteGrainStore:
    """States in one SQLite table at ``path``, written in a worker thread (the loop never
    waits on the disk); durable on this node, across restarts."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS grain_state ("
            " kind TEXT NOT NULL, identity TEXT NOT NULL, state BLOB NOT NULL,"
            " PRIMARY KEY (kind, identity))"
        )
        self._lock = trio.Lock()

    async def load(self, kind: str, identity: str) -> Any:
        async with self._lock:
            row = await trio.to_thread.run_sync(self._select, kind, identity)
        if row is None:
            return None
        try:
            return wire.check_plain(wire.loads(row))
        except wire.WireError as exc:
            raise DataError(f"stored state of {kind}/{identity} is corrupt: {exc}") from None

    async def save(self, kind: str, identity: str, state: Any) -> None:
        check_state(state)
        data = wire.dumps(state)
        async with self._lock:
            await trio.to_thread.run_sync(self._upsert, kind, identity, data)

    def close(self) -> None:
        """Close the database file."""
        self._db.close()

    def _select(self, kind: str, identity: str) -> bytes | None:
        row = self._db.execute(
            "SELECT state FROM grain_state WHERE kind = ? AND identity = ?", (kind, identity)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def _upsert(self, kind: str, identity: str, data: bytes) -> None:
        self._db.execute(
            "INSERT INTO grain_state (kind, identity, state) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, identity) DO UPDATE SET state = excluded.state",
            (kind, identity, data),
        )


class DataGrainStore:
    """States in the cluster's distributed data, one LWW register per grain under the key
    ``$grain/<kind>/<identity>``, written and read at ``consistency`` (default majority),
    so a state acknowledged by a majority survives the loss of any minority of nodes."""

    def __init__(self, data: DistributedData, consistency: Consistency | None = None) -> None:
        from .ddata import Consistency

        self.data = data
        self.consistency = consistency if consistency is not None else Consistency.MAJORITY

    @staticmethod
    def key(kind: str, identity: str) -> str:
        """The distributed-data key a grain's state is kept under."""
        return f"$grain/{kind}/{identity}"

    async def load(self, kind: str, identity: str) -> Any:
        return await self.data.get(self.key(kind, identity), read=self.consistency)

    async def save(self, kind: str, identity: str, state: Any) -> None:
        check_state(state)
        await self.data.update(
            self.key(kind, identity),
            LWWRegister,
            lambda register, writer: register.set(writer, state),
            write=self.consistency,
        )
