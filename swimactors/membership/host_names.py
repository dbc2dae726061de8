"""What both membership drivers know about host names: last answers, recent failures,
lookups under way with their deadlines.

Member addresses on the wire may be host names (an ``advertise`` name), so a forged member
can name a host whose DNS never answers.  The drivers look names up off their loop and ask
this table first: a name whose lookup failed, or did not answer within ``timeout``, is not
looked up again for ``failed_ttl`` (packets to it are dropped at once), a stale answer
keeps serving while it is renewed, and at most ``max_lookups`` names are looked up at once,
the last ``vouched_lookups`` of them only for names the driver vouches for (members that
have sent this node a packet themselves), so names nobody answers for, a forged member's,
cannot take every place.  Sans-IO: the caller runs the lookups and passes the time.
"""

from __future__ import annotations

import math

from .types import Address

__all__ = ["HostNames", "SockAddr"]

SockAddr = tuple[str, int] | tuple[str, int, int, int]
"""A socket address: ``(ip, port)``, or ``(ip, port, flowinfo, scope)`` for IPv6."""


class HostNames:
    """The lookup state of every host name a driver sends to (IP literals never come here)."""

    __slots__ = (
        "_answers",
        "_failed",
        "_lookups",
        "deadline",
        "failed_ttl",
        "max_lookups",
        "size",
        "timeout",
        "ttl",
        "vouched_lookups",
    )

    def __init__(
        self,
        *,
        ttl: float,
        failed_ttl: float,
        timeout: float,
        max_lookups: int,
        size: int,
        vouched_lookups: int = 0,
    ) -> None:
        self.ttl = ttl
        self.failed_ttl = failed_ttl
        self.timeout = timeout
        self.max_lookups = max_lookups
        self.vouched_lookups = vouched_lookups
        self.size = size
        self._answers: dict[Address, tuple[SockAddr, float]] = {}
        """Each name's last answer and when it is looked up again."""
        self._failed: dict[Address, float] = {}
        """Names whose lookup failed or timed out, and until when that holds."""
        self._lookups: dict[Address, float] = {}
        """Names being looked up, and by when the answer is due."""
        self.deadline = math.inf
        """The earliest lookup deadline (inf: none under way); :meth:`expire` acts on it."""

    def answer(self, name: Address) -> SockAddr | None:
        """``name``'s last answer, stale or not (None: none yet)."""
        known = self._answers.get(name)
        return None if known is None else known[0]

    def failing(self, name: Address, now: float) -> bool:
        """Whether ``name`` failed within ``failed_ttl`` (send nothing, look nothing up)."""
        until = self._failed.get(name)
        if until is None:
            return False
        if until > now:
            return True
        del self._failed[name]
        return False

    def due(self, name: Address, now: float) -> bool:
        """Whether to look ``name`` up now: no answer yet or a stale one, no recent
        failure, and no lookup under way."""
        if name in self._lookups or self.failing(name, now):
            return False
        known = self._answers.get(name)
        return known is None or known[1] <= now

    def under_way(self, name: Address) -> bool:
        return name in self._lookups

    def begin(self, name: Address, now: float, vouched: bool = False) -> bool:
        """Record a lookup of ``name`` starting now; False when ``max_lookups`` are
        already under way, or all but the ``vouched_lookups`` and ``name`` is not
        ``vouched`` for (then start none)."""
        room = self.max_lookups if vouched else self.max_lookups - self.vouched_lookups
        if len(self._lookups) >= room:
            return False
        due = self._lookups[name] = now + self.timeout
        self.deadline = min(self.deadline, due)
        return True

    def finish(self, name: Address, found: SockAddr | OSError, now: float) -> None:
        """A lookup's result, however late: an answer is kept for ``ttl``; a failure
        keeps the last answer (a renewal) or marks ``name`` failing for ``failed_ttl``."""
        if self._lookups.pop(name, None) is not None:
            self._reckon()
        if isinstance(found, OSError):
            known = self._answers.get(name)
            if known is not None:
                self._answers[name] = (known[0], now + self.ttl)
            else:
                self._fail(name, now)
            return
        self._failed.pop(name, None)
        if len(self._answers) >= self.size:
            self._answers.clear()
        self._answers[name] = (found, now + self.ttl)

    def expire(self, now: float) -> list[Address]:
        """End the lookups past their deadline as failures; the names (packets waiting
        for them are to be dropped).  Their late answers still count (:meth:`finish`)."""
        late = [name for name, due in self._lookups.items() if due <= now]
        for name in late:
            self.finish(name, OSError("host name lookup timed out"), now)
        return late

    def _fail(self, name: Address, now: float) -> None:
        if len(self._failed) >= self.size:
            self._failed.clear()
        self._failed[name] = now + self.failed_ttl

    def _reckon(self) -> None:
        self.deadline = min(self._lookups.values(), default=math.inf)
