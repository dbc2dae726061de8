"""What a large registry costs CPython's cyclic garbage collector.

A full (generation 2) collection walks every object the collector tracks.  A registry
that kept a ``Registration`` object and a set per name made each full collection of a
node holding 65,000 names take 60 ms and more on the machine of docs/registry.md, and the
trio loop stalled that long.  A state now stores each registration as a tuple of
strings, bytes and integers and indexes names by tuples of dots, which the collector
stops tracking at their first collection.
"""

from __future__ import annotations

from swimactors.registry import Registry, decode, encode
from tests.gc_census import followed_references as _followed
from tests.gc_census import tracked_objects as _tracked

NAMES = 10_000


def _claims(node: str, count: int) -> list[tuple[str, str, bytes]]:
    return [(f"{node}-{i}", f"/user/w{i}#1", b"meta" if i % 2 else b"") for i in range(count)]


def test_the_names_a_registry_holds_leave_the_collector_almost_nothing_to_track() -> None:
    """Own names and names merged from a peer's encoded state, with a conflict or two:
    at most one tracked object per 20 names (two per name before)."""
    before = _tracked()
    registry = Registry("a", 1)
    registry.register_all(_claims("a", NAMES // 2))
    peer = Registry("b", 1)
    peer.register_all(_claims("b", NAMES // 2))
    peer.register_all([("a-1", "/user/rival#1", b"")])  # a conflict: two claims on a name
    registry.merge(decode(encode(peer.state())))
    del peer
    registry.take_changes()
    assert len(registry) == NAMES and len(registry.lookup_all("a-1")) == 2
    assert _tracked() - before < NAMES / 20
    registry.unregister("a-2")  # a name indexed again is untracked again
    registry.register("a-2", "/user/w2#2")
    registry.take_changes()
    assert _tracked() - before < NAMES / 20


def test_a_full_collection_follows_almost_no_reference_per_name_held() -> None:
    """Not just few tracked objects: no large tracked container either (a set of every
    dot of a process is tracked, and walked, whatever it holds)."""
    before = _followed()
    registry = Registry("a", 1)
    registry.register_all(_claims("a", NAMES // 2))
    peer = Registry("b", 1)
    peer.register_all(_claims("b", NAMES // 2))
    registry.merge(decode(encode(peer.state())))
    del peer
    registry.take_changes()
    assert _followed() - before < NAMES / 20
