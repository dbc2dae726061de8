"""What a large ORSet costs CPython's cyclic garbage collector.

An ORSet that kept a set of dots per element held one tracked object per element, which
every full collection walked (12-28 ms per full collection instead of 2 with 50,000
elements held: docs/ddata.md).  It now indexes elements by tuples of dots and processes by
dicts used as sets, as the registry's state does; the collector stops tracking those at
their first collection.
"""

from __future__ import annotations

from swimactors.ddata import ORSet, Writer, decode_data, encode_data
from tests.gc_census import followed_references, tracked_objects

ELEMENTS = 10_000


def _filled(node: str, count: int) -> ORSet:
    orset = ORSet()
    writer = Writer(node, 1, 0.0)
    for i in range(count):
        orset.add(writer, f"{node}-{i}")
    return orset


def _large() -> ORSet:
    """Own adds, a peer's adds merged from its encoded state, one element added by both
    (two dots), and an element removed and added again."""
    orset = _filled("a", ELEMENTS // 2)
    peer = _filled("b", ELEMENTS // 2)
    peer.add(Writer("b", 1, 0.0), "a-1")
    orset.merge(decode_data(encode_data(peer)))
    writer = Writer("a", 1, 0.0)
    orset.remove(writer, "a-2")
    orset.add(writer, "a-2")
    assert len(orset) == ELEMENTS and len(orset.by_element["a-1"]) == 2
    return orset


def test_the_elements_an_orset_holds_leave_the_collector_almost_nothing_to_track() -> None:
    """At most one tracked object per 20 elements (one per element before)."""
    before = tracked_objects()
    orset = _large()
    assert tracked_objects() - before < ELEMENTS / 20
    assert "b-3" in orset


def test_a_full_collection_follows_almost_no_reference_per_element_held() -> None:
    """No large tracked container either: a set of every dot of a process is tracked,
    and walked, whatever it holds."""
    before = followed_references()
    orset = _large()
    assert followed_references() - before < ELEMENTS / 20
    assert "b-3" in orset
