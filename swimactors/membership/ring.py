"""The probe schedule: one ring of members shared by every view, walked in step.

SWIM's round robin over a private shuffled list probes every member once per pass of
each prober, but cluster-wide the probes of one member land at random: in a period a
member is probed by nobody with a chance of about 1/e, so the wait until a crashed
member is first probed is about exponential (median 0.69 periods, and one crash in a
hundred waits 5 periods or more).  Here every node orders the live members it knows,
itself included, by a hash of their names, the same order in every view, and at turn
``t`` probes the member ``1 + t mod (n - 1)`` places after itself.  Each prober still
visits every other member once in ``n - 1`` turns (SWIM's completeness), and when the
turn is the cluster's period number (the same clock everywhere), the probers' targets
in one period are a permutation: every member is probed exactly once per period.
Views that differ, or clocks that do not agree, only make this like the random order
again: some members probed twice in a period, others not at all.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Iterable

__all__ = ["ProbeRing"]


@functools.lru_cache(maxsize=1 << 17)
def _place(name: str) -> tuple[bytes, str]:
    """A member's place on the ring: a hash of its name (the name breaks ties), so that
    neighbours on the ring are unrelated to neighbours by name."""
    return hashlib.blake2b(name.encode(), digest_size=8).digest(), name


class ProbeRing:
    """The members of one view in ring order."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._places = sorted({_place(name) for name in names})

    def __len__(self) -> int:
        return len(self._places)

    def copy(self) -> ProbeRing:
        ring = ProbeRing()
        ring._places = list(self._places)
        return ring

    def add(self, name: str) -> None:
        """Put ``name`` on the ring (at its hash's place)."""
        place = _place(name)
        at = bisect.bisect_left(self._places, place)
        if at == len(self._places) or self._places[at] != place:
            self._places.insert(at, place)

    def discard(self, name: str) -> None:
        """Take ``name`` off the ring, if it is there."""
        place = _place(name)
        at = bisect.bisect_left(self._places, place)
        if at < len(self._places) and self._places[at] == place:
            del self._places[at]

    def target(self, prober: str, turn: int) -> str | None:
        """Whom ``prober`` (on the ring) probes at ``turn``; None when it is alone."""
        size = len(self._places)
        if size < 2:
            return None
        me = bisect.bisect_left(self._places, _place(prober))
        return self._places[(me + 1 + turn % (size - 1)) % size][1]
