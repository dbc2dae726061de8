"""A large ORSet: its cost to CPython's cyclic garbage collector, and its update speed.

One process holds an ORSet of ``ELEMENTS`` elements, half added here one at a time and
half merged from a peer's encoded full state (one element added by both, so held under
two dots).  Rows: the objects the collector still tracks per element once a full
collection has run, a full collection's time with the set held (floor: the same process
before building it), and the time of an add, of merging a peer's add deltas one by one,
of decoding and merging the peer's full state and of encoding the whole set.  Medians of
``REPEATS`` builds; the collector runs as in any process while building.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

from swimactors.ddata import ORSet, Writer, decode_data, encode_data

Row = dict[str, Any]
ELEMENTS = 50_000
REPEATS = 3
COLLECTIONS = 7


def _full_collection_ms() -> float:
    """The median time of a full collection, in milliseconds."""
    times = []
    for _ in range(COLLECTIONS):
        start = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def _once(elements: int) -> dict[str, float]:
    """Build the set once; each figure of one build."""
    floor_ms, tracked = _full_collection_ms(), _tracked()
    half = elements // 2
    own, other = Writer("a", 1, 0.0), Writer("b", 1, 0.0)
    orset, peer, replica = ORSet(), ORSet(), ORSet()
    start = time.perf_counter()
    deltas = [orset.add(own, f"a-element-{i}") for i in range(half)]
    add = time.perf_counter() - start
    start = time.perf_counter()
    for delta in deltas:
        replica.merge(delta)
    merge_delta = time.perf_counter() - start
    for i in range(half - 1):
        peer.add(other, f"b-element-{i}")
    peer.add(other, "a-element-1")
    wire = encode_data(peer)
    start = time.perf_counter()
    state = decode_data(wire)
    assert isinstance(state, ORSet)
    orset.merge(state)
    merge_state = time.perf_counter() - start
    start = time.perf_counter()
    encode_data(orset)
    encode = time.perf_counter() - start
    del deltas, peer, replica, wire, state
    assert len(orset) == elements - 1
    return {
        "tracked": (_tracked() - tracked) / len(orset),
        "collection": _full_collection_ms(),
        "floor": floor_ms,
        "add": add / half * 1e6,
        "merge_delta": merge_delta / half * 1e6,
        "merge_state": merge_state * 1000,
        "encode": encode * 1000,
    }


def run(quick: bool) -> list[Row]:
    elements = ELEMENTS // 5 if quick else ELEMENTS
    builds = [_once(elements) for _ in range(1 if quick else REPEATS)]

    def median(key: str) -> float:
        return statistics.median(b[key] for b in builds)

    note = f"ORSet of {elements:,} elements, median of {len(builds)} build(s)"

    def row(metric: str, key: str, unit: str, floor: float | None = None) -> Row:
        value = median(key)
        ratio = None if floor is None else value / floor
        return {
            "benchmark": "ddata",
            "metric": metric,
            "value": value,
            "unit": unit,
            "floor": floor,
            "ratio": ratio,
            "note": note,
        }

    return [
        row("gc-tracked objects per element held", "tracked", "objects"),
        row("full collection with the set held", "collection", "ms", median("floor")),
        row("add (one element, its delta)", "add", "us"),
        row("merge of one add delta", "merge_delta", "us"),
        row("decode + merge of a peer's full state (half)", "merge_state", "ms"),
        row("encode of the full state", "encode", "ms"),
    ]
