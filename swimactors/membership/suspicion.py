"""Lifeguard's dynamic suspicion timeout (LHA-Suspicion).

A suspicion starts with the maximum timeout and shrinks towards the minimum as other
members independently confirm it, following memberlist's formula::

    timeout(c) = max(min, max - (max - min) * log(c + 1) / log(k + 1))

where ``c`` is the number of independent confirmations and ``k = suspicion_mult - 2`` the
number expected (0 when the cluster is too small to supply them).
"""

from __future__ import annotations

import math

import attrs

__all__ = ["Suspicion", "suspicion_timeout"]


def suspicion_timeout(low: float, high: float, confirmations: int, expected: int) -> float:
    """The timeout after ``confirmations`` of ``expected`` independent confirmations."""
    if expected < 1:
        return low
    fraction = math.log(confirmations + 1) / math.log(expected + 1)
    return max(low, high - (high - low) * fraction)


@attrs.define
class Suspicion:
    """One running suspicion of a member at a given incarnation."""

    incarnation: int
    started: float
    low: float
    high: float
    expected: int
    sources: set[str]
    """Who has suspected it so far, the first suspecter included."""
    confirmations: int = 0
    """Independent confirmations: suspecters other than the first."""

    def confirm(self, source: str) -> bool:
        """Count ``source`` as an independent confirmation; False if it adds nothing."""
        if source in self.sources or self.confirmations >= self.expected:
            return False
        self.sources.add(source)
        self.confirmations += 1
        return True

    @property
    def deadline(self) -> float:
        """When the suspect is declared DOWN, given the confirmations so far."""
        timeout = suspicion_timeout(self.low, self.high, self.confirmations, self.expected)
        return self.started + timeout
