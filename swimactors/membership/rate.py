"""A token bucket: a bound on how often a peer can make this node do some work (sans-IO:
the caller passes its clock)."""

from __future__ import annotations


class TokenBucket:
    """At most ``rate`` takes a second, ``burst`` (default ``rate``) of them at once after
    a quiet spell."""

    __slots__ = ("_refilled", "_tokens", "burst", "rate")

    def __init__(self, rate: float, now: float = 0.0, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = float(rate if burst is None else burst)
        self._tokens = self.burst
        self._refilled = now

    def take(self, now: float) -> bool:
        """Whether one more take is allowed at ``now`` (it is then spent)."""
        elapsed = max(now - self._refilled, 0.0)  # a clock that steps back refills nothing
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
