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
from .crdt import COUNTER, Entry, Replica, State, joined
from .parts import Key, Part, Piece, floor_key

__all__ = [
    "MAX_ACTOR_ID_BYTES",
    "MAX_COUNTER",
    "MAX_INT",
    "MAX_META_BYTES",
    "MAX_NAME_BYTES",
    "RegistryDecodeError",
    "decode",
    "decode_part",
    "encode",
    "encode_part",
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


@WIRE.register(2)
@attrs.frozen
class _WirePart:
    start: tuple[str, int, int] | None
    end: tuple[str, int, int] | None
    replicas: list[_WireReplica]
    floors: dict[str, int]


# -- encoding ------------------------------------------------------------------------------


def encode(state: State) -> bytes:
    """The CBOR bytes of a state or delta."""
    return WIRE.encode(_WireState(_groups(state), dict(sorted(state.floors.items()))))


def encode_part(part: Part) -> bytes:
    """The CBOR bytes of a full state's part (a whole state as :func:`encode` writes it,
    which every version reads)."""
    if part.whole and part.piece is None:
        return encode(part.state)
    groups = _groups(part.state)
    piece = part.piece
    if piece is not None:
        entries = [_wire_entry(e) for e in sorted(piece.entries, key=lambda e: e[COUNTER])]
        groups.insert(0, _WireReplica(*piece.replica, piece.seen, sorted(piece.cloud), entries))
    floors = dict(sorted(part.state.floors.items()))
    return WIRE.encode(_WirePart(part.start, part.end, groups, floors))


def _groups(state: State) -> list[_WireReplica]:
    context = state.context
    groups = []
    for replica in sorted(context.replicas()):
        stored = sorted(
            (state.entries[dot] for dot in state.by_replica.get(replica, ())),
            key=lambda e: e[COUNTER],
        )
        entries = [_wire_entry(e) for e in stored]
        cloud = sorted(context.cloud.get(replica, ()))
        groups.append(_WireReplica(*replica, context.vv.get(replica, 0), cloud, entries))
    return groups


def _wire_entry(entry: Entry) -> _WireEntry:
    name, _, _, actor_id, meta, counter, clock = entry
    return _WireEntry(counter, clock, name, actor_id, meta)


# -- decoding ------------------------------------------------------------------------------


def decode(data: bytes) -> State:
    """Parse bytes from :func:`encode`; :class:`RegistryDecodeError` on anything else."""
    message = _message(data)
    if not isinstance(message, _WireState):
        raise RegistryDecodeError("a state part where a state or delta was expected")
    return _to_state(message)


def decode_part(data: bytes) -> Part:
    """Parse a full state's part from :func:`encode_part` (or a whole state from
    :func:`encode`: the part of every key); :class:`RegistryDecodeError` on anything else."""
    message = _message(data)
    if isinstance(message, _WireState):
        return Part(None, None, _to_state(message))
    return _to_part(message)


def _message(data: bytes) -> _WireState | _WirePart:
    try:
        value = loads(data)
        if not isinstance(value, list) or not value or type(value[0]) is not int:
            raise RegistryDecodeError("not a registry message: [tag, ...] expected")
        message = WIRE.from_data(value)
    except WireError as exc:
        raise RegistryDecodeError(str(exc)) from None
    assert isinstance(message, _WireState | _WirePart)
    return message


def _check_int(value: int, what: str, low: int = 0) -> None:
    if not low <= value <= MAX_COUNTER:
        raise RegistryDecodeError(f"{what} {value} out of range")


def _check_text(value: str | bytes, what: str, limit: int, empty: bool = False) -> None:
    size = len(value.encode() if isinstance(value, str) else value)
    if size > limit or (not empty and size == 0):
        raise RegistryDecodeError(f"{what} of {size} bytes (allowed 1..{limit})")


def _to_state(message: _WireState) -> State:
    state = _floors(message.floors)
    seen_replicas: set[Replica] = set()
    for group in message.replicas:
        replica = _replica(group, seen_replicas)
        if not state.is_floored(*replica):
            _add_group(state, replica, group)
    return state


def _to_part(message: _WirePart) -> Part:
    """A part: every item within ``[start, end)``; a process that ``start`` falls inside
    (past its counter 1) is the part's piece, every other one an ordinary state's."""
    start, end = message.start, message.end
    for key in (start, end):
        if key is not None:
            _check_text(key[0], "node name", MAX_NAME_BYTES)
            _check_int(key[1], "key incarnation")
            _check_int(key[2], "key counter")
    if start is not None and end is not None and start >= end:
        raise RegistryDecodeError(f"part range {start!r}..{end!r} is empty")
    state = _floors(message.floors)
    for node in state.floors:
        if not _within(floor_key(node), start, end):
            raise RegistryDecodeError(f"floor of {node!r} outside the part's range")
    part = Part(start, end, state)
    seen_replicas: set[Replica] = set()
    for group in message.replicas:
        replica = _replica(group, seen_replicas)
        low = max(1, start[2]) if start is not None and start[:2] == replica else 1
        if not _within((*replica, low), start, end):
            raise RegistryDecodeError(f"replica {replica} outside the part's range")
        top = end[2] if end is not None and end[:2] == replica else MAX_COUNTER + 1
        counters = [*group.cloud, *(entry.counter for entry in group.entries)]
        if group.seen >= top or any(not low <= c < top for c in counters):
            raise RegistryDecodeError(f"replica {replica}'s counters outside the part's range")
        if low > 1:
            if 0 < group.seen < low - 1:
                raise RegistryDecodeError(f"replica {replica}'s range ends before it starts")
            part.piece = _to_piece(replica, low, group)
        elif not state.is_floored(*replica):
            _add_group(state, replica, group)
    return part


def _within(key: Key, start: Key | None, end: Key | None) -> bool:
    return (start is None or start <= key) and (end is None or key < end)


def _floors(floors: dict[str, int]) -> State:
    state = State()
    for node, floor in floors.items():
        _check_text(node, "node name", MAX_NAME_BYTES)
        _check_int(floor, "floor")
        state.floors[node] = floor
    return state


def _replica(group: _WireReplica, seen_replicas: set[Replica]) -> Replica:
    replica = (group.node, group.incarnation)
    if replica in seen_replicas:
        raise RegistryDecodeError(f"replica {replica} appears twice")
    seen_replicas.add(replica)
    _check_text(group.node, "node name", MAX_NAME_BYTES)
    _check_int(group.incarnation, "incarnation")
    _check_int(group.seen, "seen counter")
    for counter in group.cloud:
        _check_int(counter, "cloud counter", 1)
    return replica


def _add_group(state: State, replica: Replica, group: _WireReplica) -> None:
    state.context.add_counters(replica, group.cloud, group.seen)
    for entry in group.entries:
        state.add(_to_entry(replica, entry, state))


def _to_piece(replica: Replica, low: int, group: _WireReplica) -> Piece:
    """A process's share from counter ``low``: its registrations' dots must be among the
    counters it observed (``low..seen`` and its cloud)."""
    observed = State()
    observed.context.add_counters(replica, group.cloud)
    entries = []
    for entry in group.entries:
        stored = _to_entry(replica, entry, observed, low, group.seen)
        observed.entries[(*replica, entry.counter)] = stored
        entries.append(stored)
    return Piece(replica, low, group.seen, list(group.cloud), entries)


def _to_entry(
    replica: Replica, entry: _WireEntry, state: State, low: int = 1, seen: int = 0
) -> Entry:
    """A group's registration; its dot must be in ``state``'s context (or ``low..seen``)."""
    _check_int(entry.counter, "counter", 1)
    _check_int(entry.clock, "clock")
    _check_text(entry.name, "name", MAX_NAME_BYTES)
    _check_text(entry.actor_id, "actor id", MAX_ACTOR_ID_BYTES)
    _check_text(entry.meta, "meta", MAX_META_BYTES, empty=True)
    dot = (*replica, entry.counter)
    if dot in state.entries:
        raise RegistryDecodeError(f"dot {dot} appears twice")
    if not state.context.contains(dot) and not low <= entry.counter <= seen:
        raise RegistryDecodeError(f"registration {dot} outside its causal context")
    node, incarnation = replica
    return (entry.name, node, incarnation, entry.actor_id, entry.meta, entry.counter, entry.clock)


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
            stored = delta.entries.get(dot)
            if stored is None:
                atom.context.add(dot)
            else:
                atom.add(stored)
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
