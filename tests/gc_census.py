"""What CPython's cyclic garbage collector holds, for tests of a large state's cost to it.

A full (generation 2) collection walks every tracked object and follows its references,
so a structure that keeps a tracked object per entry (a set, an attrs object) makes every
full collection, and the trio loop it stalls, slower in proportion to its size.
"""

from __future__ import annotations

import gc


def tracked_objects() -> int:
    """The objects the collector tracks after a full collection."""
    gc.collect()
    return len(gc.get_objects())


def followed_references() -> int:
    """The references a full collection follows: those of every tracked object."""
    gc.collect()
    return sum(len(gc.get_referents(o)) for o in gc.get_objects())
