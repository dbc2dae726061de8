"""Split-brain rules: pure functions of one node's view of the cluster.

A *strategy* (``static_quorum(size)``, ``keep_majority()``, ``keep_oldest()``,
``keep_referee(name)``, ``down_all()``) maps a :class:`View` to an :class:`Outcome`: does
this node's side keep serving, and which members does it treat as DOWN.  No state, no
time: :mod:`.tracker` feeds these rules and adds the timing that makes them safe.

"Oldest" must be the same on every node, so it cannot be a local join time: each node
advertises its start time in its member metadata under :data:`AGE_KEY` (milliseconds,
see :func:`age_meta`), and the lowest value is the oldest, ties broken by (name, address).
A node whose side lost gives up its seniority (re-announces a fresh start time), as a
downed Akka node rejoins as a new member.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, TypeVar

import attrs

from ..errors import SwimactorsError
from ..membership.meta import decode_meta
from ..membership.types import Address, Member

__all__ = [
    "AGE_KEY",
    "READINGS",
    "DownAll",
    "KeepMajority",
    "KeepOldest",
    "KeepReferee",
    "MemberInfo",
    "Outcome",
    "Pair",
    "QuorumConfigError",
    "Reading",
    "StaticQuorum",
    "Strategy",
    "View",
    "age_meta",
    "down_all",
    "frozen_pairs",
    "keep_majority",
    "keep_oldest",
    "keep_referee",
    "member_info",
    "parse_strategy",
    "resolve",
    "stable_after_for",
    "static_quorum",
]

T = TypeVar("T")

AGE_KEY: Final = "started"
"""Member metadata key holding the node's start time in integer milliseconds."""


class QuorumConfigError(SwimactorsError, ValueError):
    """A split-brain configuration that cannot work (refused at start-up)."""


# ------------------------------------------------------------------------------ the view


@attrs.frozen(order=False)
class MemberInfo:
    """What the rules know of a member: its identity and its advertised start time."""

    name: str
    address: Address
    started: int | None = None
    """Start time in ms from the member's metadata (None: unknown, counts as youngest)."""

    @property
    def seniority(self) -> tuple[bool, int, str, Address]:
        """Sort key: the smallest is the oldest member, the same on every node."""
        return (self.started is None, self.started or 0, self.name, self.address)


def member_info(member: Member) -> MemberInfo:
    """The rules' view of a SWIM member: its ``AGE_KEY`` metadata parsed leniently."""
    text = decode_meta(member.meta).get(AGE_KEY, "") if member.meta else ""
    started = int(text) if text.isascii() and text.isdigit() else None
    return MemberInfo(member.name, member.address, started)


def age_meta(started_ms: int) -> dict[str, str]:
    """The metadata entry a node advertises so every node agrees on who is oldest."""
    if isinstance(started_ms, bool) or not isinstance(started_ms, int) or started_ms < 0:
        raise ValueError(f"a start time is an integer of milliseconds >= 0, got {started_ms!r}")
    return {AGE_KEY: str(started_ms)}


def _frozen_names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _frozen_members(value: Iterable[MemberInfo]) -> frozenset[MemberInfo]:
    return frozenset(value)


Pair = tuple[str, str]
"""A report ``(observer, subject)``: observer cannot reach subject."""


def frozen_pairs(value: Iterable[Pair]) -> frozenset[Pair]:
    """``(reporter, unreachable)`` pairs as a frozenset of strings."""
    return frozenset((str(a), str(b)) for a, b in value)


def _check_view(view: View, attribute: attrs.Attribute[object], value: object) -> None:
    if view.self_name not in {m.name for m in view.members}:
        raise ValueError(f"the view's members must include this node {view.self_name!r}")


COVER_SEARCH: Final = 8
"""Largest cover searched exactly (2**8 branches at most); past it, a greedy one."""


def _frozen_heard(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen
class View:
    """One node's knowledge of the cluster, the input of every rule.

    ``members`` is the last stable membership (members downed by a decision are gone,
    members that joined while something was unreachable are not in it yet).
    ``reachable`` names the members this node reaches now (UP in its SWIM view; this
    node always reaches itself).  ``reports`` are what the other members announced,
    ``(observer, subject)``: "observer cannot reach subject"; ``heard`` names the
    members whose announcements arrive (None: every observer of a report).  With this
    node's own reports (the members it does not reach) they sort the members (Akka's
    terms, docs/split-brain.md):

    * *indirectly connected*: at either end of a mutual report (``a`` cannot reach
      ``b`` and ``b`` cannot reach ``a``) between members connected to this node;
    * *far*: not reachable here and not indirectly connected (the other side of a
      clean cut, or crashed);
    * *fully connected*: the rest.
    """

    self_name: str
    members: frozenset[MemberInfo] = attrs.field(converter=_frozen_members, validator=_check_view)
    reachable: frozenset[str] = attrs.field(converter=_frozen_names)
    reports: frozenset[Pair] = attrs.field(default=(), converter=frozen_pairs)
    heard: frozenset[str] | None = attrs.field(default=None, converter=_frozen_heard)
    _derived: dict[str, frozenset[Any]] = attrs.field(
        factory=dict, init=False, eq=False, repr=False, hash=False
    )

    @property
    def names(self) -> frozenset[str]:
        """The names of the members counted."""
        return frozenset(m.name for m in self.members)

    @property
    def observations(self) -> frozenset[Pair]:
        """Every report known here between two members, this node's own included."""
        return self._memo("observations", self._observations)

    @property
    def mutual(self) -> frozenset[Pair]:
        """The reports that count: both ways, between members connected to this node.
        SWIM reaches a member directly or through a helper, both ways, so a real cut
        shows from both ends; a one-way report is a stale or passing view (a member
        still DOWN in one view after a partition healed) and moves nobody."""
        return self._memo("mutual", self._mutual)

    @property
    def indirect(self) -> frozenset[str]:
        """Members at either end of a mutual report: indirectly connected."""
        return frozenset(name for pair in self.mutual for name in pair)

    @property
    def component(self) -> frozenset[str]:
        """The members on this node's side: reached, or indirectly connected."""
        return ((self.reachable | {self.self_name}) & self.names) | self.indirect

    @property
    def far(self) -> frozenset[str]:
        """Members on another side of a clean cut (or crashed)."""
        return self.names - self.component

    @property
    def fully_connected(self) -> frozenset[str]:
        """The component less every indirectly connected member: the part Akka keeps."""
        return self.component - self.indirect

    @property
    def kept(self) -> frozenset[str]:
        """The component less the fewest indirectly connected members that leave no
        mutual report inside it (the youngest where there is a choice)."""
        return self._memo("kept", lambda: self.component - self._cover())

    @property
    def side(self) -> frozenset[str]:
        """The part of the cluster this node serves with when its side wins (``kept``)."""
        return self.kept

    @property
    def unreachable(self) -> frozenset[str]:
        """Members a winning side downs: every member not kept."""
        return self.names - self.kept

    def oldest(self) -> MemberInfo:
        """The oldest member (smallest :attr:`MemberInfo.seniority`): keep_oldest's pick."""
        return min(self.members, key=lambda m: m.seniority)

    def lowest(self) -> MemberInfo:
        """The member with the lowest (name, address): keep_majority's tie-breaker."""
        return min(self.members, key=lambda m: (m.name, m.address))

    def _memo(self, key: str, compute: Callable[[], frozenset[T]]) -> frozenset[T]:
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def _observations(self) -> frozenset[Pair]:
        names, me = self.names, self.self_name
        own = {(me, name) for name in names - self.reachable - {me}}
        heard = {(a, b) for a, b in self.reports if a in names and b in names and a != b}
        return frozenset(own | heard)

    def _mutual(self) -> frozenset[Pair]:
        heard = {a for a, _ in self.reports} if self.heard is None else self.heard
        near = self.reachable | heard | {self.self_name}
        known = self.observations
        return frozenset((a, b) for a, b in known if (b, a) in known and a in near and b in near)

    def _cover(self) -> frozenset[str]:
        """Members to remove so that no mutual report is left inside the component: a
        smallest such set (searched exactly up to :data:`COVER_SEARCH`, else greedily),
        sparing the oldest members where sizes tie, so every node with the same
        knowledge removes the same ones."""
        edges = self.mutual
        if not edges:
            return frozenset()
        order = sorted(self.members, key=lambda m: m.seniority)
        rank = {m.name: index for index, m in enumerate(order)}
        smallest = _smallest_cover(edges, rank)
        return _greedy_cover(edges, rank) if smallest is None else smallest


def _smallest_cover(edges: frozenset[Pair], rank: dict[str, int]) -> frozenset[str] | None:
    """The smallest set of names touching every edge (at most
    :data:`COVER_SEARCH`; None past it), the youngest where sizes tie."""
    best: list[frozenset[str]] = []

    def key(cover: frozenset[str]) -> tuple[int, tuple[int, ...]]:
        return len(cover), tuple(-r for r in sorted(rank[name] for name in cover))

    def search(left: frozenset[Pair], chosen: frozenset[str]) -> None:
        if best and len(chosen) > len(best[0]):
            return
        if not left:
            if not best or key(chosen) < key(best[0]):
                best[:] = [chosen]
            return
        if len(chosen) >= COVER_SEARCH:
            return
        for name in min(left):
            search(frozenset(e for e in left if name not in e), chosen | {name})

    search(edges, frozenset())
    return best[0] if best else None


def _greedy_cover(edges: frozenset[Pair], rank: dict[str, int]) -> frozenset[str]:
    """Remove the name on most edges (the youngest on a tie) until none is left."""
    chosen: set[str] = set()
    left = set(edges)
    while left:
        degree = Counter(name for edge in left for name in edge)
        victim = max(degree, key=lambda name: (degree[name], rank[name]))
        chosen.add(victim)
        left = {edge for edge in left if victim not in edge}
    return frozenset(chosen)


@attrs.frozen
class Outcome:
    """A rule's verdict for one view."""

    serving: bool
    down: frozenset[str]
    """Members this side treats as DOWN when it survives (empty when it stops)."""
    reason: str


@attrs.frozen
class Reading:
    """One way to count a view: the side a strategy judges, what it counts as away, and
    the members that serve when that side wins."""

    name: str
    side: Callable[[View], frozenset[str]]
    away: Callable[[View], frozenset[str]]
    keeps: Callable[[View], frozenset[str]]


READINGS: Final = (
    Reading("fully connected", lambda v: v.kept, lambda v: v.names - v.kept, lambda v: v.kept),
    Reading("as Akka", lambda v: v.component, lambda v: v.far, lambda v: v.fully_connected),
)
"""Tried in order; the first whose side wins with this node among its keeps decides.
The first keeps the most members (a smallest set of indirectly connected members
removed, judged against all the rest); the second is Akka's (the component judged
against the far members, only the fully connected kept), so no view serves fewer
members than Akka would.  Together they let at most one side serve for any reports
(tests/quorum/test_rules.py; docs/split-brain.md has the argument)."""


Judgement = tuple[bool, str]
"""Does the side win, and why."""


def resolve(
    judge: Callable[[View, frozenset[str], frozenset[str]], Judgement], view: View
) -> Outcome:
    """Apply a strategy's judgement to the view's readings (:data:`READINGS`)."""
    me = view.self_name
    reasons = []
    for reading in READINGS:
        wins, reason = judge(view, reading.side(view), reading.away(view))
        keeps = reading.keeps(view)
        if wins and me in keeps:
            return Outcome(True, view.names - keeps, reason)
        reasons.append(f"{reason}, without this node" if wins else reason)
    cut = sorted(b for a, b in view.mutual if a == me)
    told = f"; indirectly connected, cut from {', '.join(cut)}" if cut else ""
    return Outcome(False, frozenset(), reasons[0] + told)


# ------------------------------------------------------------------------------ strategies


class Strategy(Protocol):
    """A split-brain rule: a pure function of a view."""

    @property
    def spec(self) -> str:
        """The rule in the CLI's notation (``parse_strategy(s.spec) == s``)."""
        ...

    def decide(self, view: View) -> Outcome:
        """Whether this node's side of ``view`` serves, and whom it counts as gone."""
        ...


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise QuorumConfigError(f"{attribute.name} must be an integer >= 1, got {value!r}")


class _Judged:
    """A built-in strategy: a judgement of one side, applied by :func:`resolve`."""

    def judge(self, view: View, side: frozenset[str], away: frozenset[str]) -> Judgement:
        """The verdict on one side (``side`` reached, ``away`` not) of ``view``."""
        raise NotImplementedError

    def decide(self, view: View) -> Outcome:
        """The rule applied to ``view``: its side's verdict, resolving indirect connections."""
        return resolve(self.judge, view)


@attrs.frozen
class StaticQuorum(_Judged):
    """A side with at least ``size`` members serves.  Safe only while the cluster never
    exceeds ``2 * size - 1`` members; past that, a side that sees ``size`` or more
    members away stops too (then nobody serves rather than two sides)."""

    size: int = attrs.field(validator=_positive_int)

    @property
    def spec(self) -> str:
        return f"static-quorum:{self.size}"

    def judge(self, view: View, side: frozenset[str], away: frozenset[str]) -> Judgement:
        here, gone = len(side), len(away)
        if here < self.size:
            return False, f"{here} member(s) on this side, the quorum is {self.size}"
        if gone >= self.size:
            return False, (
                f"{gone} member(s) away could form a quorum of {self.size} "
                f"too: the cluster outgrew 2 * {self.size} - 1 members"
            )
        return True, f"{here} member(s) on this side reach the quorum of {self.size}"


@attrs.frozen
class KeepMajority(_Judged):
    """The side with more than half of the membership serves; on an exact tie, the side
    holding the member with the lowest (name, address)."""

    @property
    def spec(self) -> str:
        return "keep-majority"

    def judge(self, view: View, side: frozenset[str], away: frozenset[str]) -> Judgement:
        here, total = len(side), len(view.members)
        if 2 * here > total:
            return True, f"majority: {here} of {total}"
        if 2 * here == total:
            lowest = view.lowest().name
            if lowest in side:
                return True, f"tie {here} of {total}, won by lowest member {lowest}"
            return False, f"tie {here} of {total}, lost to lowest member {lowest}"
        return False, f"minority: {here} of {total}"


@attrs.frozen
class KeepOldest(_Judged):
    """The side holding the oldest member serves; with ``down_if_alone``, an oldest left
    alone stops and the rest (if they are all together) serve instead."""

    down_if_alone: bool = True

    @property
    def spec(self) -> str:
        return "keep-oldest" if self.down_if_alone else "keep-oldest:stay-if-alone"

    def judge(self, view: View, side: frozenset[str], away: frozenset[str]) -> Judgement:
        oldest = view.oldest().name
        if oldest in side:
            if self.down_if_alone and side == {oldest} and away:
                return False, f"the oldest member {oldest} is alone"
            return True, f"this side holds the oldest member {oldest}"
        if self.down_if_alone and away == {oldest}:
            return True, f"the oldest member {oldest} is alone on the other side"
        return False, f"the oldest member {oldest} is not on this side"


@attrs.frozen
class KeepReferee(_Judged):
    """The side that reaches the member called ``referee`` serves."""

    referee: str = attrs.field()

    @referee.validator
    def _named(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise QuorumConfigError(f"a referee is a member name, got {value!r}")

    @property
    def spec(self) -> str:
        return f"keep-referee:{self.referee}"

    def judge(self, view: View, side: frozenset[str], away: frozenset[str]) -> Judgement:
        if self.referee in side:
            return True, f"this side reaches the referee {self.referee}"
        return False, f"the referee {self.referee} is not on this side"


@attrs.frozen
class DownAll(_Judged):
    """Every side of a split stops (for networks too unstable to trust any side); where
    members are only indirectly connected, the fully connected part serves."""

    @property
    def spec(self) -> str:
        return "down-all"

    def judge(self, view: View, side: frozenset[str], away: frozenset[str]) -> Judgement:
        if view.far:
            return False, f"down-all: {len(view.far)} member(s) unreachable"
        return True, "down-all: no member is cleanly unreachable"


def static_quorum(size: int, *, max_members: int | None = None) -> StaticQuorum:
    """A side needs ``size`` members; refuses a cluster that may grow past ``2*size - 1``."""
    rule = StaticQuorum(size)
    if max_members is not None and max_members > 2 * size - 1:
        raise QuorumConfigError(
            f"static-quorum:{size} is unsafe for up to {max_members} members: two sides of "
            f"{size} could both serve; use a quorum of at least {max_members // 2 + 1}"
        )
    return rule


def keep_majority() -> KeepMajority:
    """The rule :class:`KeepMajority`: the side with more than half serves."""
    return KeepMajority()


def keep_oldest(down_if_alone: bool = True) -> KeepOldest:
    """The rule :class:`KeepOldest`: the side holding the oldest member serves."""
    return KeepOldest(down_if_alone)


def keep_referee(name: str) -> KeepReferee:
    """The rule :class:`KeepReferee`: the side that reaches ``name`` serves."""
    return KeepReferee(name)


def down_all() -> DownAll:
    """The rule :class:`DownAll`: every side of a split stops."""
    return DownAll()


_FORMS = (
    "keep-majority | static-quorum:N | keep-oldest[:stay-if-alone] | keep-referee:NAME | down-all"
)


def parse_strategy(text: str, *, max_members: int | None = None) -> Strategy:
    """Parse the agent's ``--split-brain`` value (``max_members`` checks static-quorum)."""
    kind, sep, arg = text.strip().partition(":")
    if kind == "keep-majority" and not sep:
        return keep_majority()
    if kind == "down-all" and not sep:
        return down_all()
    if kind == "keep-oldest" and arg in ("", "stay-if-alone") and (arg or not sep):
        return keep_oldest(down_if_alone=not arg)
    if kind == "keep-referee" and arg:
        return keep_referee(arg)
    if kind == "static-quorum" and arg.isdigit():
        return static_quorum(int(arg), max_members=max_members)
    raise QuorumConfigError(f"unknown split-brain rule {text!r}; expected {_FORMS}")


# ------------------------------------------------------------------------------ timing


def stable_after_for(members: int) -> float:
    """Default ``stable_after``: 7 s up to 5 members, then 3 s more per doubling
    (Akka's table: 7 s at 5, 10 at 10, 13 at 20, 17 at 50, 20 at 100, 30 at 1000)."""
    return 7.0 + 3.0 * math.log2(max(members, 5) / 5.0)
