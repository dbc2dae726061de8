"""What every replicated data type shares: the writer of an update and the typed errors.

A data type is a join-semilattice: ``merge`` is commutative, associative and idempotent,
and every mutator returns the *delta* it applied (itself a value of the same type), so a
replica can ship either the delta or its full state and the receivers converge alike.
"""

from __future__ import annotations

from typing import Any, Protocol, Self

import attrs

from ..errors import SwimactorsError
from ..registry.codec import MAX_INT, MAX_NAME_BYTES
from ..registry.crdt import Replica
from ..wire import WireError, check_plain, dumps

__all__ = [
    "MAX_ELEMENT_BYTES",
    "MAX_ENTRIES",
    "MAX_INT",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "DataError",
    "DataTypeError",
    "ReplicatedData",
    "Writer",
    "check_value",
]

MAX_KEY_BYTES = MAX_NAME_BYTES
"""Longest key (of the store, or of an LWW map), in UTF-8 bytes."""
MAX_VALUE_BYTES = 4096
"""Largest LWW value, as encoded CBOR."""
MAX_ELEMENT_BYTES = 1024
"""Largest ORSet element (a str, bytes or int), as encoded CBOR."""
MAX_ENTRIES = 65536
"""Most slots, elements or map entries one value may hold; more is refused on update and
on decode, so no peer can make a node hold an unbounded value."""


class DataError(SwimactorsError, ValueError):
    """A bad argument to a data type or the store (oversized key or value, negative count)."""


class DataTypeError(DataError):
    """A key already holds a value of another data type."""


@attrs.frozen
class Writer:
    """Who makes an update and when: the process ``(node, incarnation)`` at time ``now``.

    ``incarnation`` is the process's epoch (fixed for its lifetime, higher after a restart);
    ``now`` (seconds) orders last-writer-wins values.
    """

    node: str
    incarnation: int
    now: float

    @property
    def replica(self) -> Replica:
        """The writing process: ``(node, incarnation)``."""
        return (self.node, self.incarnation)


class ReplicatedData(Protocol):
    """The join-semilattice interface the store and the codec rely on."""

    def merge(self, other: Self) -> bool:
        """Join ``other`` (a delta or a full state) into this value; True if it changed."""
        ...

    def copy(self) -> Self:
        """An independent copy (the store hands out copies, never its own value)."""
        ...

    @property
    def value(self) -> Any:
        """The plain value users read (int, frozenset, dict, bool, ...)."""
        ...


def check_value(value: Any, limit: int, what: str) -> None:
    """Raise :class:`DataError` unless ``value`` is plain CBOR data of at most ``limit`` bytes."""
    try:
        size = len(dumps(value))
    except Exception as exc:  # cbor2 raises several types for unencodable values
        raise DataError(f"{what} is not plain CBOR data: {exc}") from None
    if size > limit:
        raise DataError(f"{what} of {size} encoded bytes exceeds the {limit}-byte limit")
    try:
        check_plain(value)
    except WireError as exc:
        raise DataError(f"{what}: {exc}") from None
