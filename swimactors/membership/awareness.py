"""Lifeguard local health awareness (LHA): a node that misses acks distrusts itself.

Missed acks, missed nacks and having to refute a suspicion raise the score; successful
probes lower it.  Probe intervals and timeouts are stretched by ``score + 1``, so a node
that is itself slow (CPU starved, overloaded NIC) probes more patiently instead of
wrongly suspecting healthy peers.  From Dadgar et al., "Lifeguard" (2018), section 4.3.
"""

from __future__ import annotations

__all__ = ["Awareness"]


class Awareness:
    """A saturating health score in ``0 .. max_multiplier - 1`` (0 is healthy)."""

    def __init__(self, max_multiplier: int) -> None:
        self.max_score = max_multiplier - 1
        self.score = 0

    def apply(self, delta: int) -> None:
        """Change the score by ``delta``, kept within 0..``max_score``."""
        self.score = min(self.max_score, max(0, self.score + delta))

    def scale(self, timeout: float) -> float:
        """``timeout`` stretched for the current score."""
        return timeout * (self.score + 1)
