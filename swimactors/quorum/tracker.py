"""The quorum tracker: feeds a split-brain rule from a changing membership, with the
stability timing that makes it safe, and hands back :class:`Decision` values.

Sans-IO: the driver supplies ``now``, broadcasts :meth:`QuorumTracker.take_outgoing` on
:data:`QUORUM_CHANNEL`, feeds announcements to :meth:`QuorumTracker.receive` and calls
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
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from .. import wire
from ..membership.types import Member, Status
from .rules import (
    MemberInfo,
    Outcome,
    Pair,
    QuorumConfigError,
    Strategy,
    View,
    frozen_pairs,
    member_info,
    stable_after_for,
)

__all__ = [
    "ANNOUNCEMENT_OVERHEAD",
    "ANNOUNCE_INTERVAL",
    "QUORUM_CHANNEL",
    "REPORT_BUDGET",
    "Decision",
    "Phase",
    "QuorumState",
    "QuorumTracker",
    "Verdict",
    "describe",
]

QuorumState = Literal["ok", "pending", "lost"]
"""``ok``: serving on a confirmed view; ``pending``: serving, a change is not yet
confirmed; ``lost``: not serving."""

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
MAX_STAMP: Final = (1 << 44) - 1
"""Largest epoch (a start time in ms: the year 2527) or serial (one a second: 557,000
years) an announcement may carry."""
MAX_AGE_MS: Final = 1 << 40
"""Largest age of a view an announcement may carry (about 35 years)."""
FORGET_AFTER: Final = 0.5
"""After this fraction of ``silence_limit`` with no newer announcement from a member, an
older one resets the order (only): a forged ``(epoch, serial)`` far ahead no longer hides
the member's real announcements, whose next one counts, before the member's lease runs
out."""
MAX_REPORTED: Final = 64
"""Most names an announcement may list as unreachable (more are refused as malformed)."""
REPORT_BUDGET: Final = 512
"""Default bytes of names a node lists as unreachable in one announcement, so that it
fits a gossip packet; past it the list is cut (sorted by name; docs/split-brain.md)."""
HEARD_WITHIN: Final = 2.5
"""Seconds a member SUSPECT on another member's word alone still counts as reachable
after its last heartbeat (2.5 announcements)."""
ANNOUNCEMENT_OVERHEAD: Final = 48
"""Bytes of an announcement besides its sender's name and the unreachable names."""


class Verdict(enum.Enum):
    """What a :class:`Decision` says, one of five."""

    SERVE = "serve"
    """Serving on a view not yet confirmed (a fresh node whose first view wins)."""
    CONFIRMED = "confirmed"
    """Serving on a confirmed view; ``Decision.down`` are the members it takes over from."""
    STOP = "stop"
    """Stopped with no rule against this side: a fresh node whose first view loses, a
    silent member of this side, or no confirmed view within the unstable limit."""
    STEP_DOWN = "step-down"
    """Stopped at once: the changed view, not yet confirmed, would lose.  Also given to a
    node already stopped by a ``STOP``, to give up its seniority, when it is still
    stopped ``takeover_margin`` later and the members it reaches and hears would lose:
    a far side may have taken it over by then."""
    LOST = "lost"
    """Stopped on a confirmed view that loses."""


@attrs.frozen
class Decision:
    """A change of this node's quorum state, for the driver to act on."""

    time: float
    verdict: Verdict
    down: frozenset[str]
    """Members to treat as DOWN now (prune their names, fail over their singletons)."""
    reason: str

    @property
    def serving(self) -> bool:
        """Whether this side serves after the decision."""
        return self.verdict in (Verdict.SERVE, Verdict.CONFIRMED)

    @property
    def stable(self) -> bool:
        """Taken on a confirmed view (a takeover, or a confirmed loss)."""
        return self.verdict in (Verdict.CONFIRMED, Verdict.LOST)

    @property
    def downed(self) -> bool:
        """The rule says this side loses, so the far side downs this node: it should give
        up its seniority (re-announce a fresh ``AGE_KEY``) and come back as a new member."""
        return self.verdict in (Verdict.STEP_DOWN, Verdict.LOST)


class Phase(enum.Enum):
    """Where a tracker stands; the ``state`` a user sees is coarser (:data:`QuorumState`)."""

    NEW = "new"
    """No view observed yet."""
    PENDING = "pending"
    """Serving; a change is not confirmed yet."""
    TAKING_OVER = "taking-over"
    """Serving on a confirmed winning view; waiting for the far side's lease to run out."""
    SERVING = "serving"
    """Serving on a confirmed view."""
    STOPPED = "stopped"
    """Not serving; the view is not confirmed (it may win once it is)."""
    LOST = "lost"
    """Not serving on a confirmed view."""


_SERVING: Final = frozenset({Phase.PENDING, Phase.TAKING_OVER, Phase.SERVING})
_DECIDED: Final = frozenset({Phase.SERVING, Phase.LOST})


# ------------------------------------------------------------------------------ tracker


class QuorumTracker:
    """Applies a strategy to a node's changing membership, with stability timing.

    A change of membership, reachability, ages or reports starts a *pending* period.
    The view is *confirmed* when it has been unchanged for ``stable_after`` and every
    member on this side has announced the same side since the last change (gossip on
    :data:`QUORUM_CHANNEL`: :meth:`take_outgoing` / :meth:`receive`, one heartbeat per
    :data:`ANNOUNCE_INTERVAL`).  Announcements also list the members their sender does
    not reach: fresh ones (heard within ``silence_limit``) are the view's ``reports``, so
    the members of one side agree on who is only indirectly connected.  A serving node
    stops when a member of its side has sent no agreeing heartbeat for ``silence_limit``,
    when the rule with the others' reports has not served it for ``silence_limit`` (a
    fence: a side that downs it takes over only after that), or when it cannot confirm within
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
        report_budget: int = REPORT_BUDGET,
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
        self.report_budget = report_budget
        """Bytes of unreachable names an announcement may carry (the driver lowers it to
        fit its packets)."""
        self._takeover_margin = takeover_margin
        self.counters: Counter[str] = Counter()
        self._stable_after = stable_after
        self._unstable = down_all_when_unstable
        self._members: dict[str, MemberInfo] = {}
        self._joiners: dict[str, MemberInfo] = {}
        self._infos: dict[str, MemberInfo] = {}
        """Every member of the last snapshot that has not left."""
        self._reachable: frozenset[str] = frozenset()
        self._reports: frozenset[Pair] = frozenset()
        self._unreached: frozenset[str] = frozenset()
        self._up: frozenset[str] = frozenset()
        """UP here, and not unreached by this node's own probes."""
        self._suspects: frozenset[str] = frozenset()
        """SUSPECT on another member's word only (with ``unreached``): reachable while heard."""
        """Live members this node's own last probe failed to reach (announced even when
        they are no longer members here: a member that lags behind a takeover still
        counts the report)."""
        self._announced: dict[str, tuple[float, frozenset[str]]] = {}
        """Member -> (when heard, the members it announced it does not reach)."""
        self._seen: dict[str, tuple[bytes, float, tuple[int, int]]] = {}
        self._away_since: dict[str, float] = {}
        self._renewed: dict[str, float] = {}
        self._held: dict[bytes, float] = {}
        """Digest -> until when this node held that view (announced it, or left it)."""
        self._holding: bytes | None = None
        """The digest of this node's last announcement."""
        self._phase = Phase.NEW
        self._takeover: tuple[float, Outcome] | None = None
        """In TAKING_OVER: when, and the outcome to apply then."""
        self._waiting_for_peers = False
        """Pending and old enough, but this side does not agree yet: no timer for it,
        the next announcement re-checks."""
        self._host: str | None = None
        self._last_change = 0.0
        self._unstable_since: float | None = 0.0
        """Start of the current unconfirmed period; None once the unstable limit fired."""
        self._renounce_at: float | None = None
        """Stopped on a ``STOP`` (which keeps the seniority): when to check whether a far
        side may have taken this node over (see :meth:`_check_renounce`)."""
        self._left_out_since: float | None = None
        """Since when the rule, with what the others announced, has not served this node
        (its own view still wins): the fence runs from then."""
        self._next_announce: float | None = None
        self._serial = 0
        self._outgoing: list[bytes] = []
        self._decisions: list[Decision] = []

    # -- reading -----------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        """Where the tracker stands (:class:`Phase`)."""
        return self._phase

    @property
    def state(self) -> QuorumState:
        """What users see: ``ok`` (serving on a confirmed view), ``pending`` or ``lost``."""
        if self._phase not in _SERVING:
            return "lost"
        return "ok" if self._phase is Phase.SERVING else "pending"

    @property
    def serving(self) -> bool:
        """Whether this side serves now (``ok`` or ``pending``)."""
        return self._phase in _SERVING

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

    def own_view(self) -> View:
        """This node's view without what others announced: when it loses, the node steps
        down at once; what only the others' reports say waits for the fence or a
        confirmed view, so that a passing suspicion elsewhere stops nobody."""
        return View(self.self_name, self._members.values(), self._reachable, self._reports)

    def view(self) -> View:
        """The view the rule judges now: the decided members, who is reachable, and the
        reports heard from this node and in announcements."""
        announced = (
            (name, subject) for name, (_, names) in self._announced.items() for subject in names
        )
        return View(
            self.self_name,
            self._members.values(),
            self._reachable,
            {*self._reports, *announced},
            self._announced.keys(),
        )

    @property
    def members(self) -> tuple[MemberInfo, ...]:
        """The decided membership, oldest first."""
        return tuple(sorted(self._members.values(), key=lambda m: m.seniority))

    def singleton_host(self) -> str | None:
        """Where singletons live: the oldest member of the confirmed membership.  While a
        change is pending the host can be lost (None) but never moves, so a side that is
        about to lose cannot start a singleton elsewhere."""
        if self._phase not in _SERVING:
            return None
        oldest = min(self._members.values(), key=lambda m: m.seniority).name
        return oldest if self._phase is Phase.SERVING or oldest == self._host else None

    def digest(self) -> bytes:
        """8 bytes naming this node's side (who it counts, and who is kept where members
        are only indirectly connected); not its membership, which differs for a while
        between a node that has taken over and one that has not."""
        view = self.view()
        return _side_digest(view.component, view.kept, view.fully_connected)

    def converged(self) -> bool:
        """Every other member of this side announced this same view since the last change."""
        mine = self.digest()
        for name in self.view().component - {self.self_name}:
            digest, when, _ = self._seen.get(name, (b"", -math.inf, (0, 0)))
            if digest != mine or when < self._last_change:
                return False
        return True

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next run (an announcement, a lease or the stability window
        running out, a takeover); None before the first view."""
        if self._phase is Phase.NEW:
            return None
        times = [] if self._next_announce is None else [self._next_announce]
        times.extend(
            heard + self.silence_limit
            for name, (heard, names) in self._announced.items()
            if names or name not in self._reachable
        )
        times.extend(self._heard(n) + HEARD_WITHIN for n in self._suspects & self._reachable)
        if self._phase in _SERVING:
            times.extend(heard + self.silence_limit for heard in self._renewed.values())
            if self._left_out_since is not None:
                times.append(self._left_out_since + self.silence_limit)
        if self._renounce_at is not None and self._phase not in _SERVING:
            times.append(self._renounce_at)
        if self._takeover is not None:
            times.append(self._takeover[0])
        elif self._phase not in _DECIDED:
            if not self._waiting_for_peers:
                times.append(self._last_change + self.stable_after)
            limit = self.unstable_limit
            if (
                limit is not None
                and self._phase is Phase.PENDING
                and (self._unstable_since is not None)
            ):
                times.append(self._unstable_since + limit)
        return min(times) if times else None

    def take_decisions(self) -> list[Decision]:
        """The decisions since the last call, for the driver to act on."""
        decisions, self._decisions = self._decisions, []
        return decisions

    def take_outgoing(self) -> list[bytes]:
        """Payloads to broadcast on :data:`QUORUM_CHANNEL` (key ``"quorum"``: a newer one
        replaces a queued older one)."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    # -- inputs ------------------------------------------------------------------------------

    def observe(
        self,
        now: float,
        members: Iterable[Member],
        reports: Iterable[Pair] = (),
        unreached: Iterable[str] | None = None,
    ) -> None:
        """Feed the core's current member list (self included), one-way reports, and the
        live members this node's own probes fail to reach (``Swim.unreached``).  With
        ``unreached``, a member is reachable unless DOWN or in it: a SUSPECT member is
        only another member's word (SWIM spreads one member's suspicion to every view,
        so a member cut from one peer flaps everywhere).  Without it, UP members are."""
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
        self._unreached = frozenset(()) if unreached is None else frozenset(unreached)
        up = frozenset(name for name, m in snapshot.items() if m.status is Status.UP)
        suspect = frozenset(n for n, m in snapshot.items() if m.status is Status.SUSPECT)
        self._up = (up - self._unreached) | {self.self_name}
        self._suspects = frozenset() if unreached is None else suspect - self._unreached
        self._reachable = self._reach(now)
        self._infos = infos
        self._find_joiners()
        self._reports = frozen_pairs(reports)
        known = self._members.keys() | self._joiners.keys()
        self._seen = {name: seen for name, seen in self._seen.items() if name in known}
        self._announced = {name: a for name, a in self._announced.items() if name in known}
        self._admit_joiners()
        self._track_side(now)
        if self._phase is Phase.NEW:
            self._start(now)
        elif self._signature() != before:
            self._changed(now)
        self.tick(now)

    def receive(self, now: float, payload: bytes) -> None:
        """Another node's announcement arrived on :data:`QUORUM_CHANNEL`; bad bytes are
        counted (``counters["rejected_announcements"]``) and dropped.  It counts when its
        ``(epoch, serial)`` is above the last one heard from its sender, and its epoch not
        below the start time the sender advertises in membership (:data:`FORGET_AFTER`
        bounds how long one may hold the others back)."""
        try:
            name, digest, epoch, serial, *rest = wire.loads(payload)
            age = rest[0] if rest else None  # absent from older announcements
            unreachable = rest[1] if len(rest) == 2 else []
            valid = (
                isinstance(name, str)
                and 0 < len(name) <= MAX_NAME
                and isinstance(digest, bytes)
                and len(digest) == 8
                and type(epoch) is int
                and type(serial) is int
                and 0 <= epoch <= MAX_STAMP
                and 0 <= serial <= MAX_STAMP
                and len(rest) <= 2
                and (age is None or (type(age) is int and 0 <= age <= MAX_AGE_MS))
                and type(unreachable) is list
                and len(unreachable) <= MAX_REPORTED
                and all(type(n) is str and 0 < len(n) <= MAX_NAME for n in unreachable)
            )
        except (wire.WireError, TypeError, ValueError):
            valid = False
        if not valid:
            self.counters["rejected_announcements"] += 1
            return
        self.counters["announcements_received"] += 1
        if name == self.self_name or (name not in self._members and name not in self._joiners):
            return
        if epoch < self._epoch_of(name):
            self.counters["announcements_past_epoch"] += 1
            return
        previous = self._seen.get(name, (b"", 0.0, (-1, 0)))
        if (epoch, serial) <= previous[2]:  # a late copy, or forged news ahead of it
            if now >= previous[1] + FORGET_AFTER * self.silence_limit:
                self._seen[name] = (b"", previous[1], (epoch, serial))
                self.counters["announcement_order_reset"] += 1
            return
        self._seen[name] = (digest, now, (epoch, serial))
        if name in self._suspects:
            self._recount(now)
        reports = frozenset(unreachable)
        if self._announced.get(name, (0.0, None))[1] == reports:
            self._announced[name] = (now, reports)  # heard again, nothing new
        else:
            before = self._signature()
            self._announced[name] = (now, reports)
            self._after_reports(now, before)
        if name in self._renewed:
            agreed_just_before = previous[2] == (epoch, serial - 1) and previous[0] == self.digest()
            counts_us_in = self._counts_in(digest, reports)
            self._renew(now, name, digest, age if agreed_just_before else None, counts_us_in)
        self.tick(now)

    def _epoch_of(self, name: str) -> int:
        """The start time ``name`` advertises in membership: an announcement with an
        earlier epoch is a late copy from a life before (a later one may be from a
        restart or renouncement whose metadata has not arrived yet)."""
        info = self._infos.get(name) or self._members.get(name) or self._joiners[name]
        return info.started or 0

    def _counts_in(self, digest: bytes, reported: frozenset[str]) -> bool:
        """Whether an announcement names the plain side "every member of ours but the
        ones it reports", with this node on it: its sender then counts this node fully
        connected (no member indirectly connected, nobody kept out).  A list cut by the
        budget hides names the sender counts out, so the digest does not match."""
        side = frozenset(self._members.keys() - reported)
        return self.self_name in side and digest == _side_digest(side, side, side)

    def _renew(
        self, now: float, name: str, digest: bytes, age: int | None, counts_us_in: bool
    ) -> None:
        """The heartbeat lease on a member of this side: a heartbeat naming this node's
        view renews it, or one this node held within ``silence_limit`` (the sender lags
        behind our own change and still counts us in), or one whose plain side holds this
        node (``counts_us_in``: the sender reports a member this node still reaches, the
        first end of a mutual cut before the second end finds it; docs/split-brain.md has
        the safety argument).  Any other view may count us out, and its takeover of us is
        timed from the last agreeing heartbeat.  The first
        heartbeat of another view, right after an agreeing one (``age`` given), renews it up to the
        sender's change, ``age`` ms ago: the sender agreed until then, and it times any
        takeover of this node from that change, so this is as safe as the heartbeat
        before it (and a healed blip does not fence the member it was about)."""
        held_lately = now <= self._held.get(digest, -math.inf) + self.silence_limit
        if digest == self.digest() or held_lately or counts_us_in:
            self._renewed[name] = now
        elif age is not None:
            self._renewed[name] = max(self._renewed[name], now - age / 1000.0)

    def tick(self, now: float) -> None:
        """Do whatever is due at ``now``: announce, confirm, take over or give up."""
        if self._phase is Phase.NEW:
            return
        self._forget_stale_reports(now)
        self._recount(now)
        if self._next_announce is not None and now >= self._next_announce:
            self._announce(now)
        silent = sorted(
            name for name, heard in self._renewed.items() if now >= heard + self.silence_limit
        )
        if self._phase in _SERVING and silent:
            self._takeover = None
            self._stop(
                now,
                Verdict.STOP,
                f"no agreeing heartbeat from {', '.join(silent)} for {self.silence_limit:.1f} s",
            )
        left_out = self._left_out_since
        if (
            self._phase in _SERVING
            and left_out is not None
            and now >= left_out + self.silence_limit
        ):
            self._takeover = None
            reason = self.strategy.decide(self.view()).reason
            self._stop(now, Verdict.STEP_DOWN, f"left out {self.silence_limit:.1f} s: {reason}")
        if self._takeover is not None:
            if now >= self._takeover[0]:
                self._take_over(now, self._takeover[1])
        elif self._phase not in _DECIDED:
            limit = self.unstable_limit
            stable = now >= self._last_change + self.stable_after
            self._waiting_for_peers = stable and (bool(silent) or not self.converged())
            if stable and not self._waiting_for_peers:
                self._confirm(now)
            elif (
                limit is not None
                and self._phase is Phase.PENDING
                and self._unstable_since is not None
                and now >= self._unstable_since + limit
            ):
                self._unstable_since = None
                self._stop(
                    now,
                    Verdict.STOP,
                    f"no confirmed view {limit:.1f} s after the first change: down-all",
                )
        self._check_renounce(now)
        if self._next_announce is None:
            self._next_announce = now + ANNOUNCE_INTERVAL

    # -- internals ---------------------------------------------------------------------------

    def _signature(self) -> tuple[frozenset[Any], ...]:
        """What a change is: of the membership, of what this node reaches, or of where the
        reports put the members (a report that moves nobody is no change)."""
        if self.self_name not in self._members:  # nothing observed yet
            return (frozenset(),)
        view = self.view()
        own = frozenset({self.strategy.decide(self.own_view()).serving})
        oldest = frozenset({view.oldest().name})
        return view.names, oldest, view.component, view.kept, view.fully_connected, own

    def _reach(self, now: float) -> frozenset[str]:
        """Who this node reaches: UP and not unreached by its own probes, or SUSPECT on
        another's word alone and heard within :data:`HEARD_WITHIN` (a member cut from one
        peer flaps in every view, but its heartbeats arrive; a member beyond a clean cut
        falls silent, and is unreachable here long before the lease runs out)."""
        heard = {n for n in self._suspects if now < self._heard(n) + HEARD_WITHIN}
        return self._up | heard

    def _heard(self, name: str) -> float:
        return self._seen.get(name, (b"", -math.inf, (0, 0)))[1]

    def _recount(self, now: float) -> None:
        """A suspect was heard, or fell silent: recount who is reachable."""
        reachable = self._reach(now)
        if reachable != self._reachable and self._phase is not Phase.NEW:
            before = self._signature()
            self._reachable = reachable
            self._find_joiners()
            self._after_reports(now, before)

    def _forget_stale_reports(self, now: float) -> None:
        """A member is heard, and its reports count, while its announcements arrive
        (within ``silence_limit``): one beyond a clean cut stops counting."""
        stale = [
            name
            for name, (heard, _) in self._announced.items()
            if now >= heard + self.silence_limit
        ]
        if stale:
            before = self._signature()
            for name in stale:
                del self._announced[name]
            self._after_reports(now, before)

    def _after_reports(self, now: float, before: tuple[frozenset[Any], ...]) -> None:
        """Reports changed: admit joiners nobody reports any more, note any change."""
        if self._phase is Phase.NEW:
            return
        self._admit_joiners()
        if self._signature() != before:
            self._changed(now)

    def _track_side(self, now: float) -> None:
        """Note when members stopped being fully connected here (a takeover of them waits
        from then) and start the heartbeat lease of members newly counted on this side."""
        view = self.view()
        kept, side = view.fully_connected, view.component
        self._away_since = {
            name: self._away_since.get(name, now) for name in self._members if name not in kept
        }
        self._renewed = {
            name: self._renewed.get(name, now) for name in side if name != self.self_name
        }

    def _find_joiners(self) -> None:
        """Members UP here and not in the membership (new, or downed while reachable)."""
        self._joiners = {
            name: info
            for name, info in self._infos.items()
            if name not in self._members and name in self._reachable
        }

    def _admit_joiners(self) -> None:
        """Members seen UP for the first time join the membership only while nothing is
        unreachable and nobody reports them, so a side cannot outvote the other by
        recruiting during a split, and a downed indirectly connected member stays out
        until its links heal."""
        reported = {name for pair in self._reports for name in pair}
        for name, (_, names) in self._announced.items():
            if names:
                reported |= names | {name}
        joiners = self._joiners.keys()
        if joiners and not self.view().unreachable and not joiners & reported:
            self._members.update(self._joiners)
            self._joiners = {}

    def _announce(self, now: float) -> None:
        """Announce this node's side, with ``(start time, serial)`` and how long ago (ms)
        this view began, so a peer that agreed until the change can tell when it ended,
        and the names it does not reach, if any."""
        self._serial += 1
        epoch = self._members[self.self_name].started or 0  # a restarted node starts later
        age = min(MAX_AGE_MS, max(0, round((now - self._last_change) * 1000)))
        unreachable: list[str] = []
        room = self.report_budget
        for name in sorted((self._members.keys() - self._reachable) | self._unreached):
            room -= len(name.encode()) + 2
            if room < 0 or len(unreachable) == MAX_REPORTED:
                break
            unreachable.append(name)
        digest = self.digest()
        self._held = {d: t for d, t in self._held.items() if now <= t + self.silence_limit}
        self._held[digest] = now
        self._holding = digest
        payload: list[object] = [self.self_name, digest, epoch, self._serial, age]
        if unreachable:  # else the 5-field form, which nodes from before reports accept
            payload.append(unreachable)
        self._outgoing.append(wire.dumps(payload))
        self._next_announce = None

    def _start(self, now: float) -> None:
        """The first view: a fresh node holds nothing yet, so it serves at once if the
        rule agrees, and confirms like any change."""
        self._last_change = self._unstable_since = now
        outcome = self.strategy.decide(self.view())
        self._phase = Phase.PENDING if outcome.serving else Phase.STOPPED
        verdict = Verdict.SERVE if outcome.serving else Verdict.STOP
        self._decisions.append(Decision(now, verdict, frozenset(), outcome.reason))
        self._announce(now)

    def _changed(self, now: float) -> None:
        if self._holding is not None:
            self._held[self._holding] = now  # the view this change ends was held until now
        self._last_change = now
        self._waiting_for_peers = False
        self._takeover = None
        if (
            self._phase in _DECIDED
            or self._phase is Phase.TAKING_OVER
            or not self.view().unreachable
        ):
            self._unstable_since = now  # a new unstable period: a healed view ends one (Akka)
        self._phase = Phase.PENDING if self._phase in _SERVING else Phase.STOPPED
        self._track_side(now)
        self._announce(now)
        if self.strategy.decide(self.view()).serving:
            self._left_out_since = None
        elif self._left_out_since is None:
            self._left_out_since = now
        own = self.strategy.decide(self.own_view())
        if self._phase is Phase.PENDING and not own.serving:
            self._stop(now, Verdict.STEP_DOWN, own.reason)

    def _stop(self, now: float, verdict: Verdict, reason: str) -> None:
        self._phase = Phase.LOST if verdict is Verdict.LOST else Phase.STOPPED
        self._decisions.append(Decision(now, verdict, frozenset(), reason))
        self._renounce_at = now + self.takeover_margin if verdict is Verdict.STOP else None

    def _check_renounce(self, now: float) -> None:
        """A node stopped on a ``STOP`` (a lease, the unstable limit) keeps its seniority,
        so that a side that wins with it keeps it (``keep_oldest``).  But a far side takes
        over a member ``silence_limit + takeover_margin`` after losing sight of it, and
        the member's lease ran out at most ``silence_limit`` (and the gossip latency)
        after that: so if this node is still stopped ``takeover_margin`` after its stop,
        and the members it still reaches *and* hears (announcements within
        ``silence_limit``) would lose, a far side may have taken it over.  It then gives
        up its seniority (a ``STEP_DOWN`` decision, ``downed``), as a downed Akka node
        rejoins as a new one: otherwise it would come back as the oldest member, so as
        the singleton host, and re-create singletons before its registry heard that the
        far side re-created them.  While the members it hears win, it checks again as
        each one's announcements run out."""
        due = self._renounce_at
        if due is None or now < due:
            return
        if self._phase in _SERVING:
            self._renounce_at = None
            return
        heard = {
            n
            for n in self._reachable & self._members.keys()
            if now < self._heard(n) + self.silence_limit
        }
        view = View(self.self_name, self._members.values(), heard | {self.self_name})
        outcome = self.strategy.decide(view)
        if outcome.serving:
            expiries = [self._heard(n) + self.silence_limit for n in heard]
            self._renounce_at = min(expiries, default=None)
            return
        self._renounce_at = None
        self._decisions.append(
            Decision(
                now,
                Verdict.STEP_DOWN,
                frozenset(),
                f"still stopped {self.takeover_margin:.1f} s after a stop, with only the "
                f"members it hears: {outcome.reason}",
            )
        )

    def _confirm(self, now: float) -> None:
        """The view is stable and agreed on this side: apply the rule."""
        outcome = self.strategy.decide(self.view())
        if not outcome.serving:
            if self._phase is Phase.PENDING:
                self._stop(now, Verdict.LOST, outcome.reason)
            self._phase = Phase.LOST
            return
        self._phase = Phase.TAKING_OVER
        at = now
        if outcome.down:
            lost_sight = max(self._away_since.get(name, now) for name in outcome.down)
            at = max(now, lost_sight + self.silence_limit + self.takeover_margin)
        self._takeover = (at, outcome)
        if at <= now:
            self._take_over(now, outcome)

    def _take_over(self, now: float, outcome: Outcome) -> None:
        self._takeover = None
        self._phase = Phase.SERVING
        for name in outcome.down:
            self._members.pop(name, None)
        self._find_joiners()  # downed members this node still reaches
        self._host = min(self._members.values(), key=lambda m: m.seniority).name
        self._decisions.append(Decision(now, Verdict.CONFIRMED, outcome.down, outcome.reason))
        joiners = bool(self._joiners)
        self._admit_joiners()
        self._track_side(now)
        after = self.strategy.decide(self.view())
        if (joiners and not self._joiners) or not after.serving or after.down:
            self._changed(now)  # joiners came in, or members were only connected through
            # the downed ones (their mutual reports went with them): decide again


def _side_digest(
    component: frozenset[str], kept: frozenset[str], fully_connected: frozenset[str]
) -> bytes:
    """8 bytes naming a side: its component alone when nobody is indirectly connected
    (as before announcements had reports), else with its kept and fully connected parts."""
    parts = [component, kept, fully_connected]
    if parts[0] == parts[1] == parts[2]:
        parts = parts[:1]
    text = "|".join(",".join(sorted(part)) for part in parts)
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


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
