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
from collections.abc import Iterable
from typing import Final, Protocol

import attrs

from ..errors import SwimactorsError
from ..membership.meta import decode_meta
from ..membership.types import Address, Member

__all__ = [
    "AGE_KEY",
    "DownAll",
    "KeepMajority",
    "KeepOldest",
    "KeepReferee",
    "MemberInfo",
    "Outcome",
    "Pair",
    "QuorumConfigError",
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
    "stable_after_for",
    "static_quorum",
]

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
"""A one-way report ``(observer, subject)``: observer cannot reach subject."""


def frozen_pairs(value: Iterable[Pair]) -> frozenset[Pair]:
    return frozenset((str(a), str(b)) for a, b in value)


def _check_view(view: View, attribute: attrs.Attribute[object], value: object) -> None:
    if view.self_name not in {m.name for m in view.members}:
        raise ValueError(f"the view's members must include this node {view.self_name!r}")


@attrs.frozen
class View:
    """One node's view of the cluster, the input of every rule.

    ``members`` is the last stable membership (members downed by a decision are gone,
    members that joined while something was unreachable are not in it yet).
    ``reachable`` names the members this node reaches now (UP in its SWIM view; this
    node always reaches itself).  ``reports`` are one-way observations ``(observer,
    subject)``: "observer cannot reach subject"; when both ends are reachable here the
    reachability inside this side is asymmetric, and both ends are *indirectly
    connected*: they count for no side and are downed by the side that survives.
    """

    self_name: str
    members: frozenset[MemberInfo] = attrs.field(converter=_frozen_members, validator=_check_view)
    reachable: frozenset[str] = attrs.field(converter=_frozen_names)
    reports: frozenset[tuple[str, str]] = attrs.field(default=(), converter=frozen_pairs)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.members)

    @property
    def indirect(self) -> frozenset[str]:
        """Members at either end of a one-way report inside this node's reach."""
        near = (self.reachable | {self.self_name}) & self.names
        return frozenset(
            name for pair in self.reports if pair[0] in near and pair[1] in near for name in pair
        )

    @property
    def side(self) -> frozenset[str]:
        """The members on this node's side: reachable, in the membership, not indirect."""
        return ((self.reachable | {self.self_name}) & self.names) - self.indirect

    @property
    def unreachable(self) -> frozenset[str]:
        """Members not on this side (unreachable or indirectly connected)."""
        return self.names - self.side

    def oldest(self) -> MemberInfo:
        return min(self.members, key=lambda m: m.seniority)

    def lowest(self) -> MemberInfo:
        """The member with the lowest (name, address): keep_majority's tie-breaker."""
        return min(self.members, key=lambda m: (m.name, m.address))


@attrs.frozen
class Outcome:
    """A rule's verdict for one view."""

    serving: bool
    down: frozenset[str]
    """Members this side treats as DOWN when it survives (empty when it stops)."""
    reason: str


def _survive(view: View, reason: str) -> Outcome:
    if view.self_name not in view.side:
        return _stop(f"this node is indirectly connected ({reason} without it)")
    return Outcome(True, view.unreachable, reason)


def _stop(reason: str) -> Outcome:
    return Outcome(False, frozenset(), reason)


# ------------------------------------------------------------------------------ strategies


class Strategy(Protocol):
    """A split-brain rule: a pure function of a view."""

    @property
    def spec(self) -> str:
        """The rule in the CLI's notation (``parse_strategy(s.spec) == s``)."""
        ...

    def decide(self, view: View) -> Outcome: ...


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise QuorumConfigError(f"{attribute.name} must be an integer >= 1, got {value!r}")


@attrs.frozen
class StaticQuorum:
    """A side with at least ``size`` members serves.  Safe only while the cluster never
    exceeds ``2 * size - 1`` members; past that, a side that sees ``size`` or more
    members unreachable stops too (then nobody serves rather than two sides)."""

    size: int = attrs.field(validator=_positive_int)

    @property
    def spec(self) -> str:
        return f"static-quorum:{self.size}"

    def decide(self, view: View) -> Outcome:
        here, away = len(view.side), len(view.unreachable)
        if here < self.size:
            return _stop(f"{here} member(s) on this side, the quorum is {self.size}")
        if away >= self.size:
            return _stop(
                f"{away} unreachable member(s) could form a quorum of {self.size} "
                f"too: the cluster outgrew 2 * {self.size} - 1 members"
            )
        return _survive(view, f"{here} member(s) on this side reach the quorum of {self.size}")


@attrs.frozen
class KeepMajority:
    """The side with more than half of the membership serves; on an exact tie, the side
    holding the member with the lowest (name, address)."""

    @property
    def spec(self) -> str:
        return "keep-majority"

    def decide(self, view: View) -> Outcome:
        here, total = len(view.side), len(view.members)
        if 2 * here > total:
            return _survive(view, f"majority: {here} of {total}")
        if 2 * here == total:
            lowest = view.lowest().name
            if lowest in view.side:
                return _survive(view, f"tie {here} of {total}, won by lowest member {lowest}")
            return _stop(f"tie {here} of {total}, lost to lowest member {lowest}")
        return _stop(f"minority: {here} of {total}")


@attrs.frozen
class KeepOldest:
    """The side holding the oldest member serves; with ``down_if_alone``, an oldest left
    alone stops and the rest (if they are all together) serve instead."""

    down_if_alone: bool = True

    @property
    def spec(self) -> str:
        return "keep-oldest" if self.down_if_alone else "keep-oldest:stay-if-alone"

    def decide(self, view: View) -> Outcome:
        oldest = view.oldest().name
        side, away = view.side, view.unreachable
        if oldest in side:
            if self.down_if_alone and side == {oldest} and away:
                return _stop(f"the oldest member {oldest} is alone")
            return _survive(view, f"this side holds the oldest member {oldest}")
        if self.down_if_alone and away == {oldest}:
            return _survive(view, f"the oldest member {oldest} is alone on the other side")
        return _stop(f"the oldest member {oldest} is not on this side")


@attrs.frozen
class KeepReferee:
    """The side that reaches the member called ``referee`` serves."""

    referee: str = attrs.field()

    @referee.validator
    def _named(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise QuorumConfigError(f"a referee is a member name, got {value!r}")

    @property
    def spec(self) -> str:
        return f"keep-referee:{self.referee}"

    def decide(self, view: View) -> Outcome:
        if self.referee in view.side:
            return _survive(view, f"this side reaches the referee {self.referee}")
        return _stop(f"the referee {self.referee} is not on this side")


@attrs.frozen
class DownAll:
    """Every side of a split stops (for networks too unstable to trust any side)."""

    @property
    def spec(self) -> str:
        return "down-all"

    def decide(self, view: View) -> Outcome:
        if view.unreachable:
            return _stop(f"down-all: {len(view.unreachable)} member(s) unreachable")
        return _survive(view, "down-all: every member is reachable")


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
    return KeepMajority()


def keep_oldest(down_if_alone: bool = True) -> KeepOldest:
    return KeepOldest(down_if_alone)


def keep_referee(name: str) -> KeepReferee:
    return KeepReferee(name)


def down_all() -> DownAll:
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
