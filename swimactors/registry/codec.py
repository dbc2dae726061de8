"""Registry states and deltas on the wire (CBOR via :mod:`swimactors.wire`), and splitting.

A state travels grouped by replica, so a registration does not repeat its node name and
incarnation::

    [1, [[node, incarnation, seen, [cloud counter, ...], [[counter, clock, name, actor_id,
          meta], ...]], ...], {node: floor, ...}]

``seen`` is the replica's version-vector entry (every counter ``1..seen`` observed).  The
decoder is total: anything malformed, out of range or inconsistent (a registration whose
dot its own context does not cover) raises :class:`RegistryDecodeError`, which callers
count and drop.
"""

from __future__ import annotations

import attrs

from ..membership.messages import MAX_INCARNATION
from ..wire import TypeRegistry, WireError, loads
from .crdt import Registration, State, joined

__all__ = [
    "MAX_ACTOR_ID_BYTES",
    "MAX_COUNTER",
    "MAX_INT",
    "MAX_META_BYTES",
    "MAX_NAME_BYTES",
    "RegistryDecodeError",
    "decode",
    "encode",
    "split",
]

MAX_NAME_BYTES = 1024
"""Longest registered name, and longest node name, in UTF-8 bytes."""
MAX_ACTOR_ID_BYTES = 1024
MAX_META_BYTES = 4096
"""Registration metadata limit; a registration larger than a gossip packet still spreads,
through push/pull (see :func:`split`)."""
MAX_INT = 2**63 - 1
"""Largest integer the replicated data types accept (a signed 64-bit integer)."""
MAX_COUNTER = MAX_INCARNATION
"""Largest incarnation, floor, dot counter or Lamport clock of a registration: the
membership's maximum incarnation (epochs and floors are membership incarnations; clocks
and counters climb by one per registration), so no forged value leaves a replica unable
to count past it."""

WIRE: TypeRegistry[int] = TypeRegistry("registry")


class RegistryDecodeError(WireError):
    """Bytes that are not a well-formed registry state or delta."""


@attrs.frozen
class _WireEntry:
    counter: int
    clock: int
    name: str
    actor_id: str
    meta: bytes


@attrs.frozen
class _WireReplica:
    node: str
    incarnation: int
    seen: int
    cloud: list[int]
    entries: list[_WireEntry]


@WIRE.register(1)
@attrs.frozen
class _WireState:
    replicas: list[_WireReplica]
    floors: dict[str, int]


# -- encoding ------------------------------------------------------------------------------


def encode(state: State) -> bytes:
    """The CBOR bytes of a state or delta."""
    context = state.context
    replicas = []
    for replica in sorted(context.replicas()):
        registrations = sorted(
            (state.entries[dot] for dot in state.by_replica.get(replica, ())),
            key=lambda r: r.counter,
        )
        entries = [
            _WireEntry(r.counter, r.clock, r.name, r.actor_id, r.meta) for r in registrations
        ]
        cloud = sorted(context.cloud.get(replica, ()))
        replicas.append(_WireReplica(*replica, context.vv.get(replica, 0), cloud, entries))
    return WIRE.encode(_WireState(replicas, dict(sorted(state.floors.items()))))


# -- decoding ------------------------------------------------------------------------------


def decode(data: bytes) -> State:
    """Parse bytes from :func:`encode`; :class:`RegistryDecodeError` on anything else."""
    try:
        value = loads(data)
        if not isinstance(value, list) or not value or type(value[0]) is not int:
            raise RegistryDecodeError("not a registry message: [tag, ...] expected")
        message = WIRE.from_data(value)
    except WireError as exc:
        raise RegistryDecodeError(str(exc)) from None
    return _to_state(message)


def _check_int(value: int, what: str, low: int = 0) -> None:
    if not low <= value <= MAX_COUNTER:
        raise RegistryDecodeError(f"{what} {value} out of range")


def _check_text(value: str | bytes, what: str, limit: int, empty: bool = False) -> None:
    size = len(value.encode() if isinstance(value, str) else value)
    if size > limit or (not empty and size == 0):
        raise RegistryDecodeError(f"{what} of {size} bytes (allowed 1..{limit})")


def _to_state(message: _WireState) -> State:
    state = State()
    for node, floor in message.floors.items():
        _check_text(node, "node name", MAX_NAME_BYTES)
        _check_int(floor, "floor")
        state.floors[node] = floor
    seen_replicas: set[tuple[str, int]] = set()
    for group in message.replicas:
        replica = (group.node, group.incarnation)
        if replica in seen_replicas:
            raise RegistryDecodeError(f"replica {replica} appears twice")
        seen_replicas.add(replica)
        _check_text(group.node, "node name", MAX_NAME_BYTES)
        _check_int(group.incarnation, "incarnation")
        _check_int(group.seen, "seen counter")
        for counter in group.cloud:
            _check_int(counter, "cloud counter", 1)
        if state.is_floored(*replica):
            continue
        state.context.add_counters(replica, group.cloud, group.seen)
        for entry in group.entries:
            state.add(_to_registration(replica, entry, state))
    return state


def _to_registration(replica: tuple[str, int], entry: _WireEntry, state: State) -> Registration:
    _check_int(entry.counter, "counter", 1)
    _check_int(entry.clock, "clock")
    _check_text(entry.name, "name", MAX_NAME_BYTES)
    _check_text(entry.actor_id, "actor id", MAX_ACTOR_ID_BYTES)
    _check_text(entry.meta, "meta", MAX_META_BYTES, empty=True)
    dot = (*replica, entry.counter)
    if dot in state.entries:
        raise RegistryDecodeError(f"dot {dot} appears twice")
    if not state.context.contains(dot):
        raise RegistryDecodeError(f"registration {dot} outside its causal context")
    node, incarnation = replica
    return Registration(
        entry.name, node, incarnation, entry.actor_id, entry.meta, entry.counter, entry.clock
    )


# -- splitting -----------------------------------------------------------------------------


def split(delta: State, budget: int) -> tuple[list[bytes], int]:
    """Encode ``delta`` as parts of at most ``budget`` bytes each.

    Each part carries some of the delta's dots (a registration travels with its own dot)
    and all of its floors, so every part is itself a valid delta and any subset of parts,
    in any order, is a correct partial application.  Returns the parts and how many dots
    could not fit a part on their own (left to push/pull; the caller counts them).
    """
    whole = encode(delta)
    if len(whole) <= budget:
        return [whole], 0
    atoms = []
    for replica in sorted(delta.context.replicas()):
        for counter in delta.context.dots(replica):
            atom = State()
            dot = (*replica, counter)
            registration = delta.entries.get(dot)
            if registration is None:
                atom.context.add(dot)
            else:
                atom.add(registration)
            atoms.append(atom)
    floors = State()
    floors.floors = dict(delta.floors)
    parts: list[bytes] = []
    deferred = _pack(atoms or [State()], floors, budget, parts)
    return parts, deferred


def _pack(atoms: list[State], floors: State, budget: int, parts: list[bytes]) -> int:
    data = encode(joined(floors, *atoms))
    if len(data) <= budget:
        parts.append(data)
        return 0
    if len(atoms) == 1:
        return 1
    middle = len(atoms) // 2
    deferred = _pack(atoms[:middle], floors, budget, parts)
    return deferred + _pack(atoms[middle:], floors, budget, parts)
