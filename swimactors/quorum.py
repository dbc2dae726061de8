"""Split-brain resolution: quorum rules deciding which side of a partition keeps serving.

Sans-IO and pure.  A *strategy* (``static_quorum(size)``, ``keep_majority()``,
``keep_oldest()``, ``keep_referee(name)``, ``down_all()``) maps one node's :class:`View`
of the cluster to an :class:`Outcome`: does this node's side keep serving, and which
members does it treat as DOWN.  A :class:`QuorumTracker` feeds a strategy from the
membership a SWIM core reports, applies ``stable_after`` and ``down_all_when_unstable``
and hands back :class:`Decision` values; the driver supplies ``now`` and calls
:meth:`QuorumTracker.tick` no later than :meth:`QuorumTracker.next_deadline`.

The tracker's rules give its safety (docs/split-brain.md has the figures):

* stepping down is immediate: as soon as the current view would lose, the node stops;
* a view is confirmed only once unchanged for ``stable_after`` and announced alike by
  every member of this side;
* serving needs a heartbeat lease: a member of this side silent (or naming another
  side) for ``stable_after`` stops this node, however slow its own SWIM detection is;
* taking over (downing the far side, moving singletons) waits until the far side's
  lease has surely run out;
* singletons live on the oldest member of the *confirmed* membership, and never move
  while a change is pending.

"Oldest" must be the same on every node, so it cannot be a local join time: each node
advertises its start time in its member metadata under :data:`AGE_KEY` (milliseconds,
see :func:`age_meta`), and the lowest value is the oldest, ties broken by (name, address).
A node whose side lost gives up its seniority (re-announces a fresh start time), as a
downed Akka node rejoins as a new member.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final, Literal, Protocol

import attrs

from . import wire
from .errors import SwimactorsError
from .membership.meta import decode_meta
from .membership.types import Address, Member, Status

__all__ = [
    "AGE_KEY",
    "QUORUM_CHANNEL",
    "Decision",
    "DownAll",
    "KeepMajority",
    "KeepOldest",
    "KeepReferee",
    "MemberInfo",
    "Outcome",
    "QuorumConfigError",
    "QuorumState",
    "QuorumTracker",
    "StaticQuorum",
    "Strategy",
    "View",
    "age_meta",
    "describe",
    "down_all",
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

QuorumState = Literal["ok", "pending", "lost"]
"""``ok``: serving on a confirmed view; ``pending``: serving, a change is not yet
confirmed; ``lost``: not serving."""


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


def _frozen_pairs(value: Iterable[Pair]) -> frozenset[Pair]:
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
    reports: frozenset[tuple[str, str]] = attrs.field(default=(), converter=_frozen_pairs)

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


UNSTABLE_FRACTION: Final = 0.75
"""``down_all_when_unstable=True`` means ``0.75 * stable_after`` (Akka's default)."""

TAKEOVER_MARGIN: Final = 2.0
"""Default seconds between the far side's last possible heartbeat lease and a takeover:
gossip latency of the last announcements, with room to spare."""

QUORUM_CHANNEL: Final = "quorum"
"""The gossip channel on which trackers announce the view they hold."""

ANNOUNCE_INTERVAL: Final = 1.0
"""Seconds between a node's announcements (its heartbeat on the quorum channel)."""

MAX_NAME: Final = 256


@attrs.frozen
class Decision:
    """A change of this node's quorum state, for the driver to act on."""

    time: float
    serving: bool
    down: frozenset[str]
    """Members to treat as DOWN now (prune their names, fail over their singletons)."""
    reason: str
    stable: bool
    """False for a stop taken before the view was confirmed (a losing view, or no
    confirmation within the unstable limit)."""
    downed: bool = False
    """The rule says this side loses, so the far side downs this node: it should give
    up its seniority (re-announce a fresh :data:`AGE_KEY`) and come back as a new member."""


# ------------------------------------------------------------------------------ tracker


class QuorumTracker:
    """Applies a strategy to a node's changing membership, with stability timing.

    A change of membership, reachability, ages or reports starts a *pending* period.
    The view is *confirmed* when it has been unchanged for ``stable_after`` and every
    member on this side has announced the same side since the last change (gossip on
    :data:`QUORUM_CHANNEL`: :meth:`take_outgoing` / :meth:`receive`, one heartbeat per
    :data:`ANNOUNCE_INTERVAL`).  A serving node stops when a member of its side has sent
    no agreeing heartbeat for ``silence_limit``, or when it cannot confirm within
    ``unstable_limit`` of the first change.  A confirmed winning view downs the
    unreachable members only ``silence_limit + takeover_margin`` after each was last
    reachable here, when the far side's lease has run out.  Announcements carry
    ``(start time, serial)`` so a late copy never replaces a newer one, across restarts.
    """

    def __init__(
        self,
        self_name: str,
        strategy: Strategy,
        *,
        stable_after: float | None = None,
        down_all_when_unstable: bool | float = True,
        takeover_margin: float | None = None,
    ) -> None:
        if stable_after is not None and not (math.isfinite(stable_after) and stable_after > 0):
            raise QuorumConfigError(f"stable_after must be > 0 seconds, got {stable_after!r}")
        extra = down_all_when_unstable
        if not isinstance(extra, bool) and not (math.isfinite(extra) and extra > 0):
            raise QuorumConfigError(
                f"down_all_when_unstable must be a bool or seconds > 0, got {extra!r}"
            )
        if takeover_margin is not None and not (
            math.isfinite(takeover_margin) and takeover_margin >= 0
        ):
            raise QuorumConfigError(
                f"takeover_margin must be >= 0 seconds, got {takeover_margin!r}"
            )
        self.self_name = self_name
        self.strategy = strategy
        self._takeover_margin = takeover_margin
        self.counters: Counter[str] = Counter()
        self._stable_after = stable_after
        self._unstable = down_all_when_unstable
        self._members: dict[str, MemberInfo] = {}
        self._joiners: dict[str, MemberInfo] = {}
        self._reachable: frozenset[str] = frozenset()
        self._reports: frozenset[Pair] = frozenset()
        self._seen: dict[str, tuple[bytes, float, tuple[int, int]]] = {}
        self._away_since: dict[str, float] = {}
        self._renewed: dict[str, float] = {}
        self._serving = False
        self._decided = False
        self._started = False
        self._gave_up = False
        self._waiting_for_peers = False
        self._takeover: tuple[float, Outcome] | None = None
        self._host: str | None = None
        self._last_change = 0.0
        self._unstable_since = 0.0
        self._next_announce: float | None = None
        self._serial = 0
        self._outgoing: list[bytes] = []
        self._decisions: list[Decision] = []

    # -- reading -----------------------------------------------------------------------------

    @property
    def state(self) -> QuorumState:
        if not self._serving:
            return "lost"
        return "ok" if self._decided else "pending"

    @property
    def serving(self) -> bool:
        return self._serving

    @property
    def stable_after(self) -> float:
        """The stability window in force (the default follows the membership's size)."""
        if self._stable_after is not None:
            return self._stable_after
        return stable_after_for(len(self._members))

    @property
    def takeover_margin(self) -> float:
        """Slack after the far side's heartbeat lease has run out before a takeover."""
        return TAKEOVER_MARGIN if self._takeover_margin is None else self._takeover_margin

    @property
    def silence_limit(self) -> float:
        """How long a serving node goes on without a heartbeat from a member of its side
        (``stable_after``); a takeover waits this long after losing sight of the far side."""
        return self.stable_after

    @property
    def unstable_limit(self) -> float | None:
        """How long after the first change a serving node may stay unconfirmed (None: for
        ever, and then a takeover does not wait for the far side)."""
        extra = self._unstable
        if extra is False:
            return None
        return self.stable_after + (
            UNSTABLE_FRACTION * self.stable_after if extra is True else float(extra)
        )

    def view(self) -> View:
        return View(self.self_name, self._members.values(), self._reachable, self._reports)

    @property
    def members(self) -> tuple[MemberInfo, ...]:
        """The decided membership, oldest first."""
        return tuple(sorted(self._members.values(), key=lambda m: m.seniority))

    def singleton_host(self) -> str | None:
        """Where singletons live: the oldest member of the confirmed membership.  While a
        change is pending the host can be lost (None) but never moves, so a side that is
        about to lose cannot start a singleton elsewhere."""
        if not self._serving:
            return None
        oldest = min(self._members.values(), key=lambda m: m.seniority).name
        return oldest if self._decided or oldest == self._host else None

    def digest(self) -> bytes:
        """8 bytes naming this node's side (who it reaches and counts); not its membership,
        which differs for a while between a node that has taken over and one that has not."""
        text = ",".join(sorted(self.view().side))
        return hashlib.blake2b(text.encode(), digest_size=8).digest()

    def converged(self) -> bool:
        """Every other member of this side announced this same view since the last change."""
        mine = self.digest()
        for name in self.view().side - {self.self_name}:
            digest, when, _ = self._seen.get(name, (b"", -math.inf, (0, 0)))
            if digest != mine or when < self._last_change:
                return False
        return True

    def next_deadline(self) -> float | None:
        if not self._started:
            return None
        times = [] if self._next_announce is None else [self._next_announce]
        if self._serving:
            times.extend(heard + self.silence_limit for heard in self._renewed.values())
        if self._takeover is not None:
            times.append(self._takeover[0])
        elif not self._decided:
            if not self._waiting_for_peers:
                times.append(self._last_change + self.stable_after)
            limit = self.unstable_limit
            if limit is not None and self._serving and not self._gave_up:
                times.append(self._unstable_since + limit)
        return min(times) if times else None

    def take_decisions(self) -> list[Decision]:
        decisions, self._decisions = self._decisions, []
        return decisions

    def take_outgoing(self) -> list[bytes]:
        """Payloads to broadcast on :data:`QUORUM_CHANNEL` (key ``"quorum"``: a newer one
        replaces a queued older one)."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    # -- inputs ------------------------------------------------------------------------------

    def observe(self, now: float, members: Iterable[Member], reports: Iterable[Pair] = ()) -> None:
        """Feed the core's current member list (self included) and one-way reports."""
        snapshot = {m.name: m for m in members}
        if self.self_name not in snapshot:
            raise ValueError(f"the member list must include this node {self.self_name!r}")
        before = self._signature()
        infos = {
            name: member_info(m)
            for name, m in snapshot.items()
            if m.status is not Status.LEFT or name == self.self_name
        }
        for name in list(self._members):
            if name in infos:
                self._members[name] = infos[name]
            elif name in snapshot:  # LEFT: a graceful departure needs no decision
                del self._members[name]
        self._members[self.self_name] = infos[self.self_name]
        self._reachable = frozenset(
            name for name, m in snapshot.items() if m.status is Status.UP
        ) | {self.self_name}
        self._joiners = {
            name: info
            for name, info in infos.items()
            if name not in self._members and name in self._reachable
        }
        self._reports = _frozen_pairs(reports)
        self._seen = {name: seen for name, seen in self._seen.items() if name in self._reachable}
        self._admit_joiners()
        self._track_side(now)
        if not self._started:
            self._start(now)
        elif self._signature() != before:
            self._changed(now)
        self.tick(now)

    def receive(self, now: float, payload: bytes) -> None:
        """Another node's announcement arrived on :data:`QUORUM_CHANNEL`; bad bytes are
        counted (``counters["rejected_announcements"]``) and dropped."""
        try:
            name, digest, epoch, serial = wire.loads(payload)
            valid = (
                isinstance(name, str)
                and 0 < len(name) <= MAX_NAME
                and isinstance(digest, bytes)
                and len(digest) == 8
                and type(epoch) is int
                and type(serial) is int
            )
        except (wire.WireError, TypeError, ValueError):
            valid = False
        if not valid:
            self.counters["rejected_announcements"] += 1
            return
        self.counters["announcements_received"] += 1
        if name == self.self_name or name not in self._reachable:
            return
        if (epoch, serial) <= self._seen.get(name, (b"", 0.0, (-1, 0)))[2]:
            return
        self._seen[name] = (digest, now, (epoch, serial))
        if name in self._renewed and (
            digest == self.digest() or now <= self._last_change + self.silence_limit
        ):
            self._renewed[name] = now  # agreeing, or still converging after a change
        self.tick(now)

    def tick(self, now: float) -> None:
        """Do whatever is due at ``now``: announce, confirm, take over or give up."""
        if not self._started:
            return
        if self._next_announce is not None and now >= self._next_announce:
            self._announce(now)
        silent = sorted(
            name for name, heard in self._renewed.items() if now >= heard + self.silence_limit
        )
        if self._serving and silent:
            self._takeover = None
            self._decided = False
            self._stop(
                now,
                f"no agreeing heartbeat from {', '.join(silent)} for {self.silence_limit:.1f} s",
                stable=False,
                downed=False,
            )
        if self._takeover is not None:
            if now >= self._takeover[0]:
                self._take_over(now, self._takeover[1])
        elif not self._decided:
            limit = self.unstable_limit
            stable = now >= self._last_change + self.stable_after
            self._waiting_for_peers = stable and (bool(silent) or not self.converged())
            if stable and not self._waiting_for_peers:
                self._confirm(now)
            elif (
                limit is not None
                and self._serving
                and not self._gave_up
                and now >= self._unstable_since + limit
            ):
                self._gave_up = True
                self._stop(
                    now,
                    f"no confirmed view {limit:.1f} s after the first change: down-all",
                    stable=False,
                    downed=False,
                )
        if self._next_announce is None:
            self._next_announce = now + ANNOUNCE_INTERVAL

    # -- internals ---------------------------------------------------------------------------

    def _signature(self) -> tuple[frozenset[MemberInfo], frozenset[str], frozenset[Pair]]:
        names = self._members.keys()
        return (
            frozenset(self._members.values()),
            self._reachable & names,
            frozenset(p for p in self._reports if p[0] in names and p[1] in names),
        )

    def _track_side(self, now: float) -> None:
        """Note when members left this side and start the heartbeat lease of newcomers."""
        side = self.view().side
        self._away_since = {
            name: self._away_since.get(name, now) for name in self._members if name not in side
        }
        self._renewed = {
            name: self._renewed.get(name, now) for name in side if name != self.self_name
        }

    def _admit_joiners(self) -> None:
        """Members seen UP for the first time join the membership only while nothing is
        unreachable, so a side cannot outvote the other by recruiting during a split."""
        if self._joiners and not self.view().unreachable:
            self._members.update(self._joiners)
            self._joiners = {}

    def _announce(self, now: float) -> None:
        self._serial += 1
        epoch = self._members[self.self_name].started or 0  # a restarted node starts later
        self._outgoing.append(wire.dumps([self.self_name, self.digest(), epoch, self._serial]))
        self._next_announce = None

    def _start(self, now: float) -> None:
        """The first view: a fresh node holds nothing yet, so it serves at once if the
        rule agrees, and confirms like any change."""
        self._started = True
        self._last_change = self._unstable_since = now
        outcome = self.strategy.decide(self.view())
        self._serving = outcome.serving
        self._decisions.append(Decision(now, outcome.serving, frozenset(), outcome.reason, False))
        self._announce(now)

    def _changed(self, now: float) -> None:
        self._last_change = now
        self._waiting_for_peers = False
        self._takeover = None
        if self._decided:
            self._decided = False
            self._gave_up = False
            self._unstable_since = now
        self._announce(now)
        if self._serving:
            outcome = self.strategy.decide(self.view())
            if not outcome.serving:
                self._stop(now, outcome.reason, stable=False, downed=True)

    def _stop(self, now: float, reason: str, *, stable: bool, downed: bool) -> None:
        self._serving = False
        self._decisions.append(Decision(now, False, frozenset(), reason, stable, downed))

    def _confirm(self, now: float) -> None:
        """The view is stable and agreed on this side: apply the rule."""
        outcome = self.strategy.decide(self.view())
        if not outcome.serving:
            self._decided = True
            if self._serving:
                self._stop(now, outcome.reason, stable=True, downed=True)
            return
        self._serving = True
        at = now
        if outcome.down:
            lost_sight = max(self._away_since.get(name, now) for name in outcome.down)
            at = max(now, lost_sight + self.silence_limit + self.takeover_margin)
        self._takeover = (at, outcome)
        if at <= now:
            self._take_over(now, outcome)

    def _take_over(self, now: float, outcome: Outcome) -> None:
        self._takeover = None
        self._decided = True
        for name in outcome.down:
            self._members.pop(name, None)
        self._host = min(self._members.values(), key=lambda m: m.seniority).name
        self._decisions.append(Decision(now, True, outcome.down, outcome.reason, True))
        if self._joiners:
            self._admit_joiners()
            self._track_side(now)
            if not self._joiners:
                self._changed(now)


def describe(tracker: QuorumTracker) -> Mapping[str, object]:
    """The tracker's state for health endpoints and logs (JSON-ready)."""
    return {
        "quorum": "lost" if tracker.state == "lost" else "ok",
        "state": tracker.state,
        "rule": tracker.strategy.spec,
        "members": [m.name for m in tracker.members],
        "singleton_host": tracker.singleton_host(),
        "stable_after": tracker.stable_after,
    }
