"""Replicated data on the wire (CBOR via :mod:`swimactors.wire`), each type under its tag.

::

    GCounter     [1, [[node, incarnation, count, covers], ...]]
    PNCounter    [2, gcounter added, gcounter removed]
    ORSet        [3, [[node, incarnation, seen, [cloud counter, ...],
                       [[counter, element], ...]], ...], {node: floor, ...}]
    LWWRegister  [4, [clock, node, present, value] | null]
    LWWMap       [5, {key: [clock, node, present, value], ...}]
    Flag         [6, bool]
    store delta  [10, [[key, value], ...]]   (a delta, or a store's full state)

The decoder is total: anything malformed, out of range, over the limits of
:mod:`swimactors.ddata.base` or inconsistent raises :class:`DataDecodeError`, which callers
count and drop.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..registry.crdt import Replica
from ..wire import TypeRegistry, WireError, dumps, loads
from .base import (
    MAX_ENTRIES,
    MAX_INT,
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    DataError,
    ReplicatedData,
    check_value,
)
from .counters import GCounter, PNCounter, Slot
from .lww import Flag, LWWMap, LWWRegister, Stamped
from .orset import ORSet, check_element

__all__ = [
    "DataDecodeError",
    "decode_data",
    "decode_entries",
    "encode_data",
    "encode_entries",
    "within_decode_limits",
]

WIRE: TypeRegistry[int] = TypeRegistry("ddata")


class DataDecodeError(WireError):
    """Bytes that are not a well-formed replicated value or store delta."""


@attrs.frozen
class _WireSlot:
    node: str
    incarnation: int
    count: int
    covers: int


@WIRE.register(1)
@attrs.frozen
class _WireGCounter:
    slots: list[_WireSlot]


@WIRE.register(2)
@attrs.frozen
class _WirePNCounter:
    added: _WireGCounter
    removed: _WireGCounter


@attrs.frozen
class _WireDot:
    counter: int
    element: Any


@attrs.frozen
class _WireReplica:
    node: str
    incarnation: int
    seen: int
    cloud: list[int]
    dots: list[_WireDot]


@WIRE.register(3)
@attrs.frozen
class _WireORSet:
    replicas: list[_WireReplica]
    floors: dict[str, int]


@attrs.frozen
class _WireStamped:
    clock: int
    node: str
    present: bool
    value: Any


@WIRE.register(4)
@attrs.frozen
class _WireRegister:
    write: _WireStamped | None


@WIRE.register(5)
@attrs.frozen
class _WireMap:
    writes: dict[str, _WireStamped]


@WIRE.register(6)
@attrs.frozen
class _WireFlag:
    enabled: bool


@attrs.frozen
class _WireEntry:
    key: str
    value: Any


@WIRE.register(10)
@attrs.frozen
class _WireEntries:
    entries: list[_WireEntry]


# -- encoding ------------------------------------------------------------------------------


def _gcounter_to_wire(counter: GCounter) -> _WireGCounter:
    return _WireGCounter(
        [_WireSlot(*r, s.count, s.covers) for r, s in sorted(counter.slots.items())]
    )


def _orset_to_wire(orset: ORSet) -> _WireORSet:
    replicas = []
    for replica in sorted(orset.context.replicas()):
        dots = sorted(orset.by_replica.get(replica, ()))
        replicas.append(
            _WireReplica(
                *replica,
                orset.context.vv.get(replica, 0),
                sorted(orset.context.cloud.get(replica, ())),
                [_WireDot(dot[2], orset.entries[dot]) for dot in dots],
            )
        )
    return _WireORSet(replicas, dict(sorted(orset.floors.items())))


def _stamped_to_wire(write: Stamped) -> _WireStamped:
    return _WireStamped(write.clock, write.node, write.present, write.value)


def _to_wire(data: ReplicatedData) -> Any:
    match data:
        case GCounter():
            return _gcounter_to_wire(data)
        case PNCounter():
            return _WirePNCounter(_gcounter_to_wire(data.added), _gcounter_to_wire(data.removed))
        case ORSet():
            return _orset_to_wire(data)
        case LWWRegister():
            return _WireRegister(None if data.write is None else _stamped_to_wire(data.write))
        case LWWMap():
            return _WireMap({k: _stamped_to_wire(w) for k, w in sorted(data.writes.items())})
        case Flag():
            return _WireFlag(data.enabled)
    raise TypeError(f"{type(data).__qualname__} is not a replicated data type")


def encode_data(data: ReplicatedData) -> bytes:
    """The CBOR bytes of one replicated value (or delta)."""
    return WIRE.encode(_to_wire(data))


def encode_entries(entries: dict[str, ReplicatedData]) -> bytes:
    """The CBOR bytes of a store delta or full state: key -> value."""
    wire = [_WireEntry(k, WIRE.to_data(_to_wire(v))) for k, v in sorted(entries.items())]
    return dumps(WIRE.to_data(_WireEntries(wire)))


# -- decoding ------------------------------------------------------------------------------


def _parse(data: bytes) -> Any:
    try:
        value = loads(data)
        if not isinstance(value, list) or not value or type(value[0]) is not int:
            raise DataDecodeError("not a ddata message: [tag, ...] expected")
        return WIRE.from_data(value)
    except WireError as exc:
        raise DataDecodeError(str(exc)) from None


def decode_data(data: bytes) -> ReplicatedData:
    """Parse bytes from :func:`encode_data`; :class:`DataDecodeError` on anything else."""
    message = _parse(data)
    if isinstance(message, _WireEntries):
        raise DataDecodeError("a store delta where one value was expected")
    return _from_wire(message)


def decode_entries(data: bytes) -> dict[str, ReplicatedData]:
    """Parse bytes from :func:`encode_entries`; :class:`DataDecodeError` on anything else."""
    message = _parse(data)
    if not isinstance(message, _WireEntries):
        raise DataDecodeError("a store delta was expected")
    _check_count(len(message.entries), "store entries")
    result: dict[str, ReplicatedData] = {}
    for entry in message.entries:
        _check_text(entry.key, "key", MAX_KEY_BYTES)
        if entry.key in result:
            raise DataDecodeError(f"key {entry.key!r} appears twice")
        try:
            inner = WIRE.from_data(entry.value)
        except WireError as exc:
            raise DataDecodeError(str(exc)) from None
        if isinstance(inner, _WireEntries):
            raise DataDecodeError("a store delta nested in a store delta")
        result[entry.key] = _from_wire(inner)
    return result


def within_decode_limits(value: ReplicatedData) -> bool:
    """Whether ``value`` holds no more slots, elements, replicas, cloud counters or map
    entries than the decoder accepts (``MAX_ENTRIES`` each): merging two values that each
    fit can make one that does not, which no peer would take from this node again."""
    if isinstance(value, GCounter):
        return len(value.slots) <= MAX_ENTRIES
    if isinstance(value, PNCounter):
        return within_decode_limits(value.added) and within_decode_limits(value.removed)
    if isinstance(value, ORSet):
        context = value.context
        return (
            len(value.entries) <= MAX_ENTRIES
            and len(context.replicas() | value.by_replica.keys()) <= MAX_ENTRIES
            and all(len(counters) <= MAX_ENTRIES for counters in context.cloud.values())
        )
    if isinstance(value, LWWMap):
        return len(value.writes) <= MAX_ENTRIES
    return True


def _check_int(value: int, what: str, low: int = 0) -> None:
    if not low <= value <= MAX_INT:
        raise DataDecodeError(f"{what} {value} out of range")


def _check_count(count: int, what: str) -> None:
    if count > MAX_ENTRIES:
        raise DataDecodeError(f"{count} {what} (at most {MAX_ENTRIES})")


def _check_text(value: str, what: str, limit: int) -> None:
    if not 0 < len(value.encode()) <= limit:
        raise DataDecodeError(f"{what} of {len(value.encode())} bytes (allowed 1..{limit})")


def _checked(check: Any, *args: Any) -> None:
    """Run an API-side value check, reporting its failure as a decode error."""
    try:
        check(*args)
    except DataError as exc:
        raise DataDecodeError(str(exc)) from None


def _from_wire(message: Any) -> ReplicatedData:
    match message:
        case _WireGCounter():
            return _gcounter_from_wire(message)
        case _WirePNCounter():
            return PNCounter(
                _gcounter_from_wire(message.added), _gcounter_from_wire(message.removed)
            )
        case _WireORSet():
            return _orset_from_wire(message)
        case _WireRegister():
            return LWWRegister(None if message.write is None else _stamped(message.write))
        case _WireMap():
            _check_count(len(message.writes), "map entries")
            for key in message.writes:
                _check_text(key, "map key", MAX_KEY_BYTES)
            return LWWMap({k: _stamped(w) for k, w in message.writes.items()})
        case _WireFlag():
            return Flag(message.enabled)
    raise DataDecodeError(f"unexpected {type(message).__qualname__}")


def _gcounter_from_wire(message: _WireGCounter) -> GCounter:
    _check_count(len(message.slots), "counter slots")
    slots: dict[Replica, Slot] = {}
    for slot in message.slots:
        _check_text(slot.node, "node name", MAX_KEY_BYTES)
        _check_int(slot.incarnation, "incarnation")
        _check_int(slot.count, "count")
        _check_int(slot.covers, "covers", -1)
        if slot.covers >= slot.incarnation:
            raise DataDecodeError(f"slot {slot.node!r} covers its own incarnation")
        if (slot.node, slot.incarnation) in slots:
            raise DataDecodeError(f"slot {(slot.node, slot.incarnation)} appears twice")
        slots[(slot.node, slot.incarnation)] = Slot(slot.count, slot.covers)
    return GCounter(slots)


def _orset_from_wire(message: _WireORSet) -> ORSet:
    result = ORSet()
    _check_count(len(message.replicas), "set replicas")
    _check_count(sum(len(r.dots) for r in message.replicas), "set elements")
    for node, floor in message.floors.items():
        _check_text(node, "node name", MAX_KEY_BYTES)
        _check_int(floor, "floor")
        result.floors[node] = floor
    seen: set[Replica] = set()
    for group in message.replicas:
        replica = (group.node, group.incarnation)
        if replica in seen:
            raise DataDecodeError(f"replica {replica} appears twice")
        seen.add(replica)
        _check_text(group.node, "node name", MAX_KEY_BYTES)
        _check_int(group.incarnation, "incarnation")
        _check_int(group.seen, "seen counter")
        _check_count(len(group.cloud), "cloud counters")
        for counter in group.cloud:
            _check_int(counter, "cloud counter", 1)
        if group.incarnation <= result.floors.get(group.node, -1):
            continue
        result.context.add_counters(replica, group.cloud, group.seen)
        for dot in group.dots:
            _check_int(dot.counter, "counter", 1)
            _checked(check_element, dot.element)
            full = (*replica, dot.counter)
            if full in result.entries:
                raise DataDecodeError(f"dot {full} appears twice")
            if not result.context.contains(full):
                raise DataDecodeError(f"element {full} outside its causal context")
            result.insert(full, dot.element)
    return result


def _stamped(write: _WireStamped) -> Stamped:
    _check_int(write.clock, "clock")
    _check_text(write.node, "node name", MAX_KEY_BYTES)
    _checked(check_value, write.value, MAX_VALUE_BYTES, "an LWW value")
    if not write.present and write.value is not None:
        raise DataDecodeError("a removal carries a value")
    return Stamped(write.clock, write.node, write.present, write.value)
