"""SWIM's precedence rules in one place: does news about a member change what we hold?

A member stands at incarnation ``j`` with a status; news about it (Alive, Suspect, Dead
or Left) arrives at incarnation ``i``.  :data:`PRECEDENCE` is the whole rule as a table
(SWIM section 4.2, memberlist's ``aliveNode`` / ``suspectNode`` / ``deadNode``, foca's
``can_change``), :func:`supersedes` reads it, :func:`refutes` is the rule for news about
ourselves.  The core's ``_apply_*`` methods only carry out what these say.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Final

from .messages import Alive, Dead, Left, Suspect
from .types import Status

__all__ = ["PRECEDENCE", "News", "may_move", "refutes", "supersedes", "wins"]

News = Alive | Suspect | Dead | Left
"""Membership news: what the gossip says about one member."""

_NEWER: Final = operator.gt
_SAME_OR_NEWER: Final = operator.ge

UP, SUSPECT, DOWN, LEFT = Status.UP, Status.SUSPECT, Status.DOWN, Status.LEFT

PRECEDENCE: Final[Mapping[tuple[type, Status], Callable[[int, int], bool]]] = {
    # Alive(i) beats anything at j < i: a refutation, or a rejoin after DOWN or LEFT
    (Alive, UP): _NEWER,
    (Alive, SUSPECT): _NEWER,
    (Alive, DOWN): _NEWER,
    (Alive, LEFT): _NEWER,
    # Suspect(i) beats UP/SUSPECT at j <= i (at j == i on SUSPECT: one more witness);
    # it never revives DOWN or LEFT
    (Suspect, UP): _SAME_OR_NEWER,
    (Suspect, SUSPECT): _SAME_OR_NEWER,
    # Dead(i) beats UP/SUSPECT at j <= i; a DOWN or LEFT member stays as it is
    (Dead, UP): _SAME_OR_NEWER,
    (Dead, SUSPECT): _SAME_OR_NEWER,
    # Left(i) beats anything but LEFT at j <= i: a graceful leave is the better news
    (Left, UP): _SAME_OR_NEWER,
    (Left, SUSPECT): _SAME_OR_NEWER,
    (Left, DOWN): _SAME_OR_NEWER,
}
"""``(kind of news, status held) -> test of (i, j)``; a pair not listed never changes."""


def wins(kind: type, incarnation: int, status: Status, held: int) -> bool:
    """True when news of ``kind`` at ``incarnation`` beats a member held at
    ``(status, held)``."""
    test = PRECEDENCE.get((kind, status))
    return test is not None and test(incarnation, held)


def supersedes(status: Status, incarnation: int, news: News) -> bool:
    """True when ``news`` about a member held at ``(status, incarnation)`` applies."""
    return wins(type(news), news.incarnation, status, incarnation)


def refutes(own_incarnation: int, news: Suspect | Dead | Left) -> bool:
    """News that we are suspect, dead or gone must be outbid unless it is about an
    earlier life of ours (a lower incarnation than the one we are at)."""
    return news.incarnation >= own_incarnation


def may_move(status: Status, down_for: float, reclaim_time: float) -> bool:
    """Whether a member held at ``status`` may be claimed at another address (a restart on
    a new IP or port), ``down_for`` seconds after it went DOWN (or LEFT).  Never while UP or
    SUSPECT: two processes claim one name, and the claim is refused as a conflict (the
    holder keeps the name until it is declared DOWN).  At once when LEFT: it said it was
    going.  When DOWN, once it has been DOWN for ``reclaim_time``
    (``Config.dead_node_reclaim_time``; 0, the default: at once).  The incarnation must
    still win (:data:`PRECEDENCE`): a stale Alive from an address the member held before
    never brings it back."""
    if status is LEFT:
        return True
    return status is DOWN and down_for >= reclaim_time
