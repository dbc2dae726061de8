"""The SWIM membership protocol as a sans-IO state machine.

One :class:`Swim` object is one node.  It is fed packets (:meth:`Swim.receive`) and the
passage of time (:meth:`Swim.tick`), and hands back packets to send, events and its next
deadline.  It reads no clock, does no I/O and owns no task; randomness comes from the
``random.Random`` it is given.  The protocol is SWIM (Das, Gupta, Motivala 2002) with the
Lifeguard extensions (Dadgar, Phillips, Currey 2018), shaped after HashiCorp memberlist.

Reading order, following one message from arrival to effect: :meth:`Swim.receive`
decodes the packet and dispatches each message to a ``_on_<kind>`` handler; failure
detection lives in the probe section, membership updates in ``_apply_*`` (carrying out
the SWIM precedence rules, stated once in :mod:`.rules`), dissemination in ``_send`` /
``_gossip``, full-state sync in ``_push_pull`` / ``_on_pushpull``.  docs/protocol.md
describes the same rules in prose.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import heapq
import itertools
import math
import operator
import random
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import attrs

from .. import wire
from ..errors import SwimactorsError
from ..security import OVERHEAD as SEALING_OVERHEAD
from . import rules
from .awareness import Awareness
from .broadcasts import BroadcastQueue
from .config import Config
from .delegate import Delegate
from .messages import (
    MAX_INCARNATION,
    MAX_META,
    MAX_NAME,
    Ack,
    Alive,
    Dead,
    Left,
    MemberState,
    Nack,
    Ping,
    PingReq,
    PushPull,
    Suspect,
    UserMessage,
    ack_item,
    datagram_head,
    decode_value,
    encode_message,
    encode_packet,
    kind_and_bytes,
    load_packet,
    packet_overhead,
    ping_item,
    probe_exchange,
    valid_host,
)
from .meta import announced_reap
from .rate import TokenBucket
from .ring import ProbeRing
from .suspicion import Suspicion
from .types import (
    Address,
    Member,
    MemberAlive,
    MemberConflict,
    MemberDown,
    MemberEvent,
    MemberLeft,
    MemberSuspect,
    MemberUp,
    MemberUpdated,
    Packet,
    Status,
)

__all__ = ["BroadcastTooLarge", "FormedCluster", "Swim"]

UP, SUSPECT, DOWN, LEFT = Status.UP, Status.SUSPECT, Status.DOWN, Status.LEFT
"""Read as module constants: an Enum member read off its class costs about 200 ns on
Python 3.11 (a global about 15), and the core reads them per probe and per member."""

MAX_MEMBERS = 100_000
"""Members beyond this are refused (and counted): a bound against forged Alive floods."""
MAX_RELAYS = 1024
"""Ping-req relays in flight at once; more are refused and counted."""
MAX_RECHECKS = 64
"""Pings outside the probe ring (rechecks, buddy pings), remembered for their acks
(oldest go)."""
INTRODUCTIONS_PER_PERIOD = 4
"""Full-state swaps with unknown senders allowed per probe interval (see ``_introduce``)."""
SEEN_USER_MESSAGES = 4096
"""How many user-message digests are remembered to stop re-gossiping duplicates."""

_wire_state = functools.lru_cache(maxsize=1 << 17)(MemberState.of)
"""A member's push/pull entry, built (and validated) once per version of it: a full
state of 1,000 members is mostly entries that have not changed since the last one."""


class _SentCounters(dict[str, tuple[str, str]]):
    """``sent_KIND`` and ``bytes_sent_KIND`` for each message kind, named once per kind."""

    def __missing__(self, kind: str) -> tuple[str, str]:
        names = self[kind] = (f"sent_{kind}", f"bytes_sent_{kind}")
        return names


_SENT_COUNTERS = _SentCounters()
_BYTES = operator.itemgetter(1)
"""The bytes of a ``(kind, bytes)`` pair (what :func:`kind_and_bytes` and the queue give)."""


class BroadcastTooLarge(SwimactorsError, ValueError):
    """A user broadcast does not fit in one packet; split it (see ``max_broadcast_size``)."""


@attrs.define(weakref_slot=False)
class _MemberState:
    name: str
    address: Address
    incarnation: int
    status: Status
    meta: bytes
    since: float
    """When the status last changed."""
    shared: bool = False
    """Shared by the cores started from one :class:`FormedCluster`: copy before changing."""

    def snapshot(self) -> Member:
        return Member(self.name, self.address, self.incarnation, self.status, self.meta)

    def alive_message(self) -> Alive:
        return Alive(self.name, self.address, self.incarnation, self.meta)


class FormedCluster:
    """A converged membership that many cores start from (:meth:`Swim.assume_formed`),
    sharing one record per member until a core changes it: a simulated cluster of
    10,000 nodes would otherwise hold 10^8 records."""

    def __init__(self, members: Iterable[Member], now: float) -> None:
        self.states = {
            m.name: _MemberState(m.name, m.address, m.incarnation, UP, m.meta, now, True)
            for m in members
        }
        if len(self.states) > MAX_MEMBERS:
            raise ValueError(f"a cluster of {len(self.states)} exceeds {MAX_MEMBERS} members")
        self.names = list(self.states)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.ring = ProbeRing(self.names)


@attrs.define
class _Probe:
    """The probe in progress: one per protocol period."""

    target: str
    seq: int
    indirect_at: float
    ends_at: float
    acked: bool = False
    indirect_sent: bool = False
    helpers: frozenset[str] = frozenset()
    """The members asked to ping the target for us."""
    nacked: set[str] = attrs.Factory(set)
    """The helpers that pinged it and heard nothing."""
    failed: bool = False
    """Suspected before the period ended: every helper had nacked."""


@attrs.frozen
class _Relay:
    """A ping we send on behalf of a ping-req; its ack or nack goes back to ``requester``."""

    requester: Address
    requester_seq: int
    deadline: float
    """Until when the target's ack is still relayed (``probe_timeout``)."""


def _validate_name(name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name.encode()) <= MAX_NAME:
        raise ValueError(f"node name must be a string of 1..{MAX_NAME} UTF-8 bytes: {name!r}")
    if not name.isprintable():
        raise ValueError(f"node name must be printable (no control characters): {name!r}")


INCARNATION_HORIZON = 2**40
"""How far ahead of the wall clock (in ms) an incarnation may be, about 35 years: a node
starts at the wall clock and climbs by one per refutation, so news beyond this is forged.
Refusing it keeps every accepted incarnation far below ``MAX_INCARNATION`` (until the year
2490), so whoever news is about can always outbid it with one more."""


def _validate_incarnation(incarnation: int) -> None:
    if isinstance(incarnation, bool) or not isinstance(incarnation, int):
        raise TypeError(f"incarnation must be an int: {incarnation!r}")
    if not 0 <= incarnation <= MAX_INCARNATION:
        raise ValueError(f"incarnation must be in 0..{MAX_INCARNATION}: {incarnation}")


def _validate_address(address: Address) -> None:
    if (
        not isinstance(address, tuple)
        or len(address) != 2
        or not valid_host(address[0])
        or not isinstance(address[1], int)
        or not 0 < address[1] <= 65535
    ):
        raise ValueError(
            "address must be (host, port): an IP or ASCII host name (xn-- for others), "
            f"a port in 1..65535: {address!r}"
        )


def _validate_meta(meta: bytes, limit: int) -> None:
    if not isinstance(meta, bytes):
        raise TypeError("meta must be bytes")
    if len(meta) > min(limit, MAX_META):
        raise ValueError(f"meta is {len(meta)} bytes; the limit is {min(limit, MAX_META)}")


NEWS = (Alive, Suspect, Dead, Left)
"""The messages that carry an incarnation: membership news."""


def _update(
    apply: Callable[[float, Any], None],
) -> Callable[[float, str, Address, bool, Any], None]:
    """A message handler for membership news: only the time and the message matter."""

    def handle(now: float, sender: str, reply_to: Address, reliable: bool, msg: Any) -> None:
        apply(now, msg)

    return handle


class Swim:
    """One node of a SWIM cluster, as a pure state machine.  See the module docstring."""

    def __init__(
        self,
        name: str,
        address: Address,
        config: Config | None = None,
        rng: random.Random | None = None,
        meta: bytes = b"",
        incarnation: int = 0,
        wall_ms: int | None = None,
    ) -> None:
        """``wall_ms``: the wall clock now, in ms (what ``open_node`` starts incarnations
        at); with it, news more than :data:`INCARNATION_HORIZON` ahead of the wall clock is
        refused (``rejected_future``).  None (simulations, unit tests): no horizon."""
        self.config = config or Config.lan()
        _validate_name(name)
        _validate_address(address)
        _validate_meta(meta, self.config.max_meta_size)
        _validate_incarnation(incarnation)
        self.name = name
        self.address = address
        self.rng = rng or random.Random()
        self.counters: collections.Counter[str] = collections.Counter()
        self._self = _MemberState(name, address, incarnation, UP, meta, 0.0)
        self._members: dict[str, _MemberState] = {name: self._self}
        self._alive: list[str] = []  # other UP/SUSPECT members, for O(1) random picks
        self._alive_index: dict[str, int] = {}
        self._recently_down: dict[str, float] = {}  # name -> since, oldest first
        self._ring = ProbeRing([name])
        """The live members and this node, in the order every view shares (see .ring)."""
        self._probe_turn = 0
        self._pass_left = 0
        """Turns left in the current pass of the probe ring (``_next_probe_target``)."""
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._nacks: collections.deque[tuple[float, int]] = collections.deque()
        """(when, seq) of the relays still to nack if no ack came, earliest first."""
        self._suspicions: dict[str, Suspicion] = {}
        self._unreached: set[str] = set()
        """Members whose last probe from this node failed, until a probe succeeds, a packet
        comes from them directly, or they are forgotten (a refuted death is not a reach)."""
        self._heard: set[str] = set()
        """Members that have sent this node a packet themselves, until forgotten."""
        self._rechecks: dict[int, None] = {}
        """Seqs of the pings sent outside the probe ring (``_recheck``, ``_ask_suspect``):
        their acks are expected, not late."""
        self._told_down: dict[str, float] = {}
        """DOWN or LEFT members we told so, and when (``_tell_down``, ``_notify_down``)."""
        self._suspicion_heap: list[tuple[float, str, int]] = []
        self._withheld: collections.deque[tuple[float, str, int]] = collections.deque()
        """(until, name, incarnation) of the suspicions this node raised that wait for
        the suspect's answer before they spread (``_ask_suspect``), earliest first."""
        self._queue = BroadcastQueue()
        self._awareness = Awareness(self.config.awareness_max_multiplier)
        self._delegates: dict[str, Delegate] = {}
        self._seen_user: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._introductions: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._seq = self.rng.randrange(1 << 30)
        self._seeds: list[Address] = []
        self.outgoing: list[Packet] = []
        """The packets :meth:`take_outgoing` hands over next (read, do not change: a
        driver looks whether there are any before it takes them)."""
        self.events: list[MemberEvent] = []
        """The events :meth:`take_events` hands over next (read, do not change)."""
        self._loads = wire.Loader().loads
        """This core's CBOR decoder, made once (a core is driven by one thread)."""
        self._datagram_head = datagram_head(self.config.label)
        """How this cluster's datagrams start (what ``probe_exchange`` looks for)."""
        self._encoded_name = wire.dumps(name)
        """This node's name as a ping for it names it (what ``probe_exchange`` looks for)."""
        self._started = False
        self._wall_ms = wall_ms
        self._wall_origin = 0.0
        """The ``now`` at which the wall clock read ``wall_ms`` (when the core started)."""
        self._leaving = False
        self._newcomers = 0  # unknown members named by the packet being received
        self._replies = TokenBucket(self.config.push_pull_max_replies)
        """Push/pull requests this node may answer (``push_pull_max_replies`` a second)."""
        self._newcomers_allowed = TokenBucket(
            self.config.newcomer_rate, burst=self.config.newcomer_burst
        )
        """Unknown members this node may add (``newcomer_rate`` a second, a burst of
        ``newcomer_burst``), whatever packets name them."""
        self._allowed = self.config.allow_list()
        """``Config.cidrs_allowed`` as a test of advertised hosts (None: all allowed)."""
        self._overhead = packet_overhead(self.config.label, name) + (
            SEALING_OVERHEAD if self.config.keyring is not None else 0
        )
        self._next_probe = 0.0
        self._next_gossip = 0.0
        self._gossip_now: float | None = None
        self._next_push_pull = 0.0
        self._next_reconnect = 0.0
        self._next_join: float | None = None
        self._join_backoff = self.config.probe_interval
        self._handlers: dict[type, Callable[[float, str, Address, bool, Any], None]] = {
            Ping: self._on_ping,
            Ack: self._on_ack,
            PingReq: self._on_pingreq,
            Nack: self._on_nack,
            Alive: _update(self._apply_alive),  # membership news goes straight to the
            Suspect: _update(self._apply_suspect),  # precedence rules (_apply_*)
            Dead: self._on_dead,
            Left: _update(self._apply_left),
            UserMessage: self._on_usermessage,
            PushPull: self._on_pushpull,
        }
        self._received = {kind: f"received_{kind.__name__.lower()}" for kind in self._handlers}
        """Each message type's counter (``received_`` and its :func:`message_kind`)."""

    # ===================================================================== public API

    @property
    def incarnation(self) -> int:
        """This node's current incarnation (raised to refute a suspicion)."""
        return self._self.incarnation

    @property
    def awareness(self) -> int:
        """Lifeguard local health score: 0 is healthy, higher stretches our timeouts."""
        return self._awareness.score

    @property
    def leave_finished(self) -> bool:
        """After :meth:`leave`: the LEFT news has been sent as often as the limit asks."""
        return self._leaving and (("m", self.name) not in self._queue or not self._alive)

    @property
    def max_broadcast_size(self) -> int:
        """Largest payload :meth:`broadcast` accepts on a channel name of 16 bytes."""
        return self.config.packet_budget - self._overhead - 64

    def members(self) -> list[Member]:
        """Every member this node knows, itself included, sorted by name."""
        return [self._members[n].snapshot() for n in sorted(self._members)]

    def member(self, name: str) -> Member | None:
        """A snapshot of the member called ``name``, or None."""
        state = self._members.get(name)
        return None if state is None else state.snapshot()

    def unreached(self) -> frozenset[str]:
        """Members whose last probe from this node failed, directly and through every
        helper (until a probe succeeds, a packet comes from them directly, or they are
        forgotten): this node's own failure detector.  SUSPECT is anyone's word and
        spreads to every view; this is not (the split-brain rules need who cannot reach
        whom)."""
        return frozenset(self._unreached)

    def heard_from(self, address: Address) -> bool:
        """Whether a member at ``address`` has sent this node a packet itself (a driver
        looks its host name up before names only gossip has told of)."""
        heard, members = self._heard, self._members
        return any(members[name].address == address for name in heard if name in members)

    def alive_count(self) -> int:
        """Members UP or SUSPECT, this node included."""
        return len(self._alive) + 1

    def take_outgoing(self) -> list[Packet]:
        """The packets to send since the last call; the driver sends them."""
        packets, self.outgoing = self.outgoing, []
        return packets

    def take_events(self) -> list[MemberEvent]:
        """The member events since the last call; the driver hands them to subscribers."""
        events, self.events = self.events, []
        return events

    def register_delegate(self, channel: str, delegate: Delegate) -> None:
        """Let ``delegate`` ride on the gossip under ``channel`` (see :class:`Delegate`)."""
        _validate_name(channel)
        self._delegates[channel] = delegate

    def broadcast(self, channel: str, payload: bytes, key: str | None = None) -> None:
        """Spread ``payload`` to every member by piggybacking (epidemic, at most once
        per node); a later broadcast with the same ``key`` replaces a queued one."""
        data = encode_message(UserMessage(channel, payload))
        room = self.config.packet_budget - self._overhead
        if len(payload) > self.max_broadcast_size or len(data) > room:
            raise BroadcastTooLarge(
                f"broadcast of {len(payload)} bytes on {channel!r} does not fit in a packet "
                f"(at most {self.max_broadcast_size} bytes on a short channel name); split it"
            )
        digest = self._remember_user_message(data)
        self._queue.push(("u", channel, key if key is not None else digest), "user", data)

    def join(self, seeds: Iterable[Address], now: float) -> None:
        """Contact ``seeds`` with a full-state push/pull; retried until someone answers.
        A core that has left stays left: make a new one to rejoin."""
        self._start(now)
        if self._leaving:
            return
        given: list[Address] = []
        for seed in seeds:
            _validate_address(seed)
            if seed != self.address and seed not in given:
                given.append(seed)
                if seed not in self._seeds:
                    self._seeds.append(seed)
        self._enqueue(self._self.alive_message())  # announce ourselves by gossip too
        if self._alive:  # already in a cluster (merging with another): contact them once
            for seed in given:
                self._push_pull(now, seed, join=True)
        elif self._seeds:
            self._join_seeds(now)

    def assume_formed(self, formed: FormedCluster, now: float) -> None:
        """Start as one node of a cluster that has already converged on ``formed``: its
        members are UP here with no news to spread and no events, and the push/pull timer
        is at a random point of its period, as in a steady state.  For simulations of a
        formed cluster (forming 1,000 nodes by gossip costs more than the run itself)."""
        if self._started or len(self._members) > 1:
            raise ValueError("assume_formed() needs a core that has not started")
        self._start(now)
        self._members = dict(formed.states)
        self._members[self.name] = self._self  # our own record is never shared
        self._alive = list(formed.names)
        self._alive_index = dict(formed.index)
        self._drop_alive(self.name)
        self._ring = formed.ring.copy()
        self._ring.add(self.name)
        period = self.config.push_pull_period(self.alive_count())
        self._next_push_pull = now + self.rng.random() * period

    def sync_soon(self) -> None:
        """Swap full states with a random alive member at the next tick, not at the end of
        the push/pull period (for a layer whose state another member must repair now)."""
        self._next_push_pull = -math.inf

    def leave(self, now: float) -> None:
        """Leave gracefully: spread LEFT; keep ticking until :attr:`leave_finished`."""
        if self._leaving:
            return
        self._start(now)
        self._leaving = True
        self._probe = None
        self._self.status = LEFT
        self._self.since = now
        self._enqueue(Left(self.name, self.incarnation))
        self._gossip(now)

    def force_leave(self, name: str, now: float) -> bool:
        """Serf's force-leave: a DOWN member becomes LEFT here and, by its Left at its own
        incarnation, everywhere (a LEFT member is no longer reported as failed and is reaped
        on schedule).  False, and nothing done, unless ``name`` is DOWN."""
        state = self._members.get(name)
        if state is None or state.status is not DOWN:
            return False
        self._apply_left(now, Left(name, state.incarnation))
        return True

    def set_meta(self, meta: bytes, now: float) -> None:
        """Change this node's metadata; re-announced under a new incarnation."""
        _validate_meta(meta, self.config.max_meta_size)
        self._start(now)
        self._self.meta = meta
        if self._leaving:  # no announcement: an Alive would outbid our Left everywhere
            return
        self._self.incarnation = min(self.incarnation + 1, MAX_INCARNATION)
        self._enqueue(self._self.alive_message())
        self._emit(MemberUpdated(self._self.snapshot(), now))

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called; None before the node has started or
        when nothing is pending (a node that has left and has nothing more to say)."""
        if not self._started:
            return None
        # one wake-up's worth of work: compared in place, no list built per call
        deadline = math.inf  # no news: no wake-ups
        if self._queue:
            deadline = self._next_gossip
            if self._gossip_now is not None:
                deadline = min(deadline, self._gossip_now)
        if not self._leaving:
            probe = self._probe
            if probe is None:
                due = self._next_probe
            elif not probe.acked and not probe.indirect_sent:
                due = probe.indirect_at
            else:
                due = probe.ends_at
            deadline = min(deadline, due, self._next_push_pull, self._next_reconnect)
            if self._next_join is not None:  # join retries stop once leaving, as in tick()
                deadline = min(deadline, self._next_join)
        if self._suspicion_heap:
            deadline = min(deadline, self._suspicion_heap[0][0])
        if self._withheld:
            deadline = min(deadline, self._withheld[0][0])
        if self._relays:
            deadline = min(deadline, next(iter(self._relays.values())).deadline)
        if self._nacks:
            deadline = min(deadline, self._nacks[0][0])
        return None if deadline == math.inf else deadline

    def tick(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        if not self._started:
            self._start(now)
        self._expire_relays(now)
        if not self._leaving:
            self._advance_probe(now)
            if now >= self._next_push_pull:
                self._next_push_pull = now + self.config.push_pull_period(self.alive_count())
                self._push_pull_random(now)
            if now >= self._next_reconnect:
                self._next_reconnect = now + self.config.reconnect_interval
                self._reconnect(now)
                self._reap(now)
            if self._next_join is not None and now >= self._next_join:
                self._join_seeds(now)
        self._expire_suspicions(now)  # after our own probe, whose failure may confirm one
        self._spread_unanswered(now)  # before the gossip, which carries them
        regular = now >= self._next_gossip
        if regular:  # on to our next beat: the phase drawn at start is kept
            interval = self.config.gossip_interval
            self._next_gossip += interval * (math.floor((now - self._next_gossip) / interval) + 1)
            if self._next_gossip <= now:  # (rounding)
                self._next_gossip += interval
        if regular or (self._gossip_now is not None and now >= self._gossip_now):
            self._gossip_now = None
            self._gossip(now)

    def receive(
        self, now: float, source: Address, data: bytes, peer: frozenset[str] | None = None
    ) -> str | None:
        """Handle one datagram or reliable-channel frame from ``source``; never raises.
        ``peer``: the node names a TLS certificate proved for the connection the frame came
        on; the packet's sender must be one of them (``rejected_certificate``).  Returns
        why a packet that did not decode was refused (``label``, ``version``, ...: its
        ``rejected_<reason>`` counter), else None."""
        if not self._started:
            self._start(now)
        counters, config = self.counters, self.config
        counters["packets_received"] += 1
        counters["bytes_received"] += len(data)
        self._newcomers = 0
        if peer is None and self._answered_at_once(source, data):
            return None
        try:
            value = load_packet(data, config.packet_budget, self._loads)
            sender, messages, sender_address, stale_alives = decode_value(
                value, config.label, self._stale_alive, self._members
            )
        except wire.WireError as exc:
            counters[f"rejected_{exc.reason}"] += 1
            return exc.reason
        if sender == self.name:
            counters["rejected_own_name"] += 1
            return None
        if peer is not None and sender not in peer:
            counters["rejected_certificate"] += 1
            return None
        if (  # a stream's answers go to the address it names: never outside the allow-list
            sender_address is not None
            and self._allowed is not None
            and not self._allowed(sender_address[0])
        ):
            counters["rejected_not_allowed"] += 1
            return None
        if stale_alives:
            counters["received_alive"] += stale_alives
        self._unreached.discard(sender)  # it reached us directly: not cut both ways
        reliable = sender_address is not None
        reply_to = sender_address or source
        for message in messages:
            kind = type(message)
            counters[self._received[kind]] += 1
            if isinstance(message, NEWS) and self._from_the_future(now, message.incarnation):
                continue
            self._handlers[kind](now, sender, reply_to, reliable, message)
        state = self._members.get(sender)
        if state is None:
            self._introduce(now, sender, reply_to, messages)
        else:
            self._heard.add(sender)
            if state.status is DOWN or state.status is LEFT:
                self._tell_down(now, state)
        return None

    def _answered_at_once(self, source: Address, data: bytes) -> bool:
        """A lone ping or ack from a live member (``probe_exchange``: most of what a node
        receives) handled as the rest of :meth:`receive` would, read from its bytes without
        decoding CBOR or building message objects; False, nothing done, for anything else
        (tests/membership compare both paths)."""
        if len(data) > self.config.packet_budget:
            return False  # (refused as oversized on the general path)
        exchange = probe_exchange(data, self._datagram_head, self._encoded_name)
        if exchange is None:
            return False
        sender, seq, ping = exchange
        state = self._members.get(sender)
        if state is None or state.status is DOWN or state.status is LEFT or sender == self.name:
            return False  # (one held DOWN or LEFT is told so: the general path)
        if not ping and not self._probe_acked(seq):
            return False  # a relayed, rechecked or late ack
        self.counters[self._received[Ping if ping else Ack]] += 1
        self._unreached.discard(sender)
        if ping:
            self._send_encoded(source, [ack_item(seq)])
        self._heard.add(sender)
        return True

    # ===================================================================== start-up

    def _start(self, now: float) -> None:
        """Arm the periodic timers, staggered so that nodes do not act in lock step."""
        if self._started:
            return
        self._started = True
        self._self.since = now
        self._wall_origin = now
        jitter = self.rng.random
        self._next_probe = now + jitter() * self.config.probe_interval
        self._next_gossip = now + jitter() * self.config.gossip_interval
        self._next_push_pull = now + self.config.push_pull_interval * (0.5 + jitter())
        self._next_reconnect = now + self.config.reconnect_interval * (0.5 + jitter())

    def _from_the_future(self, now: float, incarnation: int) -> bool:
        """News at an incarnation past the horizon (the wall clock plus
        :data:`INCARNATION_HORIZON`): forged, and dropped (counted) lest it climb to the
        maximum, where the member it is about could no longer outbid it."""
        if self._wall_ms is None:
            return False
        horizon = self._wall_ms + (now - self._wall_origin) * 1000 + INCARNATION_HORIZON
        if incarnation <= horizon:
            return False
        self.counters["rejected_future"] += 1
        return True

    def _introduce(self, now: float, sender: str, reply_to: Address, messages: Any) -> None:
        """A packet from a member we do not know: it knows us, so swap full states with it
        (once per probe interval per name, and at most ``INTRODUCTIONS_PER_PERIOD`` in all,
        so forged senders cannot turn us into an amplifier), or news of it may never reach
        us when it joined while the cluster was still forming."""
        if any(isinstance(m, PushPull) for m in messages):
            return
        last = self._introductions.get(sender)
        if last is not None and now - last < self.config.probe_interval:
            return
        recent = itertools.takewhile(  # newest last: count back to one interval ago
            lambda t: now - t < self.config.probe_interval, reversed(self._introductions.values())
        )
        if sum(1 for _ in recent) >= INTRODUCTIONS_PER_PERIOD:
            self.counters["introductions_limited"] += 1
            return
        self._introductions[sender] = now
        self._introductions.move_to_end(sender)
        if len(self._introductions) > MAX_RELAYS:
            self._introductions.popitem(last=False)
        self.counters["introductions"] += 1
        self._push_pull(now, reply_to, join=False)

    def _join_seeds(self, now: float) -> None:
        """Push/pull with every seed; retry with backoff while we know nobody alive."""
        if self._alive or not self._seeds:
            self._next_join = None
            return
        for seed in self._seeds:
            self._push_pull(now, seed, join=True)
        self._next_join = now + self._join_backoff
        self._join_backoff = min(self._join_backoff * 2, self.config.reconnect_interval)

    # ===================================================================== handlers

    def _on_ping(
        self, now: float, sender: str, reply_to: Address, reliable: bool, msg: Ping
    ) -> None:
        if msg.target and msg.target != self.name:
            self.counters["rejected_misdirected"] += 1
            return
        self._send_encoded(reply_to, [ack_item(msg.seq)], reliable=reliable)

    def _on_ack(self, now: float, sender: str, reply_to: Address, reliable: bool, msg: Ack) -> None:
        if self._probe_acked(msg.seq):
            if reliable:  # the direct datagram ping went unanswered, the stream got through
                self.counters["reliable_probe_acks"] += 1
            return
        relay = self._relays.pop(msg.seq, None)
        if relay is not None:
            self._send(relay.requester, [Ack(relay.requester_seq)])
            return
        if self._rechecks.pop(msg.seq, 0) is None:
            return  # its arrival ended the verdict (receive)
        self.counters["late_acks"] += 1

    def _probe_acked(self, seq: int) -> bool:
        """Whether ``seq`` answers our probe in progress, now marked acked."""
        probe = self._probe
        if probe is None or probe.seq != seq or probe.acked or probe.failed:
            return False
        probe.acked = True
        self._unreached.discard(probe.target)
        self._awareness.apply(-1)
        return True

    def _on_nack(
        self, now: float, sender: str, reply_to: Address, reliable: bool, msg: Nack
    ) -> None:
        probe = self._probe
        if probe is None or probe.seq != msg.seq or sender not in probe.helpers:
            return
        probe.nacked.add(sender)
        if probe.nacked == probe.helpers and not probe.acked and not probe.failed:
            # every path has been tried and failed: the direct ping for probe_timeout +
            # nack_timeout, each helper's for nack_timeout; only an ack late on all of
            # them could still come, so the verdict need not wait for the period's end
            probe.failed = True
            self._probe_failed(now, probe)

    def _on_pingreq(
        self, now: float, sender: str, reply_to: Address, reliable: bool, msg: PingReq
    ) -> None:
        if msg.target == self.name:  # we are the member asked about: alive, so say so now
            self._send_encoded(reply_to, [ack_item(msg.seq)], reliable=reliable)
            return
        if len(self._relays) >= MAX_RELAYS:
            self.counters["rejected_relays"] += 1
            return
        seq = self._next_seq()
        self._relays[seq] = _Relay(reply_to, msg.seq, now + self.config.probe_timeout)
        self._nacks.append((now + self.config.nack_timeout, seq))
        self._send(msg.address, [Ping(seq, msg.target)])

    def _on_dead(
        self, now: float, sender: str, reply_to: Address, reliable: bool, msg: Dead
    ) -> None:
        """Dead news.  News that we are dead is answered to its sender at once with our
        Alive (refuted if need be): the sender holds us DOWN, and the gossip of our
        refutation, sent a bounded number of times to random members, may miss it."""
        self._apply_dead(now, msg)
        if msg.name == self.name and not self._leaving:
            self._send(reply_to, [self._self.alive_message()])

    def _on_usermessage(
        self, now: float, sender: str, reply_to: Address, reliable: bool, msg: UserMessage
    ) -> None:
        data = encode_message(msg)
        digest = hashlib.blake2b(data, digest_size=8).digest()
        if digest in self._seen_user:
            self.counters["duplicate_user_messages"] += 1
            return
        self._remember_user_message(data)
        self._queue.push(("u", msg.channel, digest), "user", data)  # epidemic: pass it on
        delegate = self._delegates.get(msg.channel)
        if delegate is None:
            self.counters["unhandled_user_messages"] += 1
        else:
            delegate.notify_message(msg.payload, now)

    def _on_pushpull(
        self, now: float, sender: str, reply_to: Address, reliable: bool, msg: PushPull
    ) -> None:
        self._merge_state(now, sender, msg.members)
        for channel, data in msg.user_state.items():
            delegate = self._delegates.get(channel)
            if delegate is not None:
                delegate.merge_remote_state(data, msg.join, now)
        if not msg.reply:
            if self._replies.take(now):
                self._push_pull(now, reply_to, join=msg.join, reply=True)
            else:
                self.counters["push_pull_replies_refused"] += 1

    # ===================================================================== failure detection

    def _advance_probe(self, now: float) -> None:
        """Run the probe state machine: ping, then ping-req + reliable ping, then verdict."""
        probe = self._probe
        if probe is None:
            if now >= self._next_probe:
                self._start_probe(now)
            return
        if not probe.acked and not probe.indirect_sent and now >= probe.indirect_at:
            self._probe_indirectly(now, probe)
        if now >= probe.ends_at:
            self._probe = None
            if not probe.acked and not probe.failed:
                self._probe_failed(now, probe)
            self._start_probe(now)

    def _start_probe(self, now: float) -> None:
        target = self._next_probe_target(now)
        interval = self._awareness.scale(self.config.probe_interval)
        if target is None:
            self._next_probe = now + interval
            return
        self.counters["probes"] += 1
        seq = self._next_seq()
        self._probe = _Probe(
            target=target.name,
            seq=seq,
            indirect_at=now + self._awareness.scale(self.config.probe_timeout),
            ends_at=now + interval,
        )
        encoded = [ping_item(seq, target.name)]
        if target.status is SUSPECT:  # Lifeguard buddy system: let it refute now
            encoded.insert(0, kind_and_bytes(Suspect(target.name, target.incarnation, self.name)))
        self._send_encoded(target.address, encoded)

    def _probe_indirectly(self, now: float, probe: _Probe) -> None:
        probe.indirect_sent = True
        target = self._members.get(probe.target)
        if target is None or not target.status.is_alive:
            return
        # helpers in good standing only (memberlist's rule): a suspect's silence would
        # count against our own health as a missing nack
        avoid = {probe.target, *self._suspicions}
        helpers = self._random_alive(self.config.indirect_checks, exclude=avoid)
        for helper in helpers:
            self._send(helper.address, [PingReq(probe.seq, target.name, target.address)])
        probe.helpers = frozenset(helper.name for helper in helpers)
        self.counters["indirect_probes"] += 1
        self._send(target.address, [Ping(probe.seq, target.name)], reliable=True)

    def _probe_failed(self, now: float, probe: _Probe) -> None:
        """No ack by the end of the period, or every helper nacked: distrust ourselves a
        little (by the helpers that did not nack), suspect the target.  A target that
        went DOWN or LEFT meanwhile (no ping-reqs went out then) settles nothing."""
        target = self._members.get(probe.target)
        if target is None or not target.status.is_alive:
            return
        self.counters["probe_failures"] += 1
        self._unreached.add(target.name)
        if probe.helpers:
            self._awareness.apply(len(probe.helpers - probe.nacked))
        else:
            self._awareness.apply(1)
        self.counters["suspicions_raised"] += 1
        suspect = Suspect(target.name, target.incarnation, self.name)
        if target.status is UP and self.config.buddy_first:
            self._apply_suspect(now, suspect, spread=False)
            self._ask_suspect(now, target, suspect)
        else:
            self._apply_suspect(now, suspect)

    def _ask_suspect(self, now: float, target: _MemberState, suspect: Suspect) -> None:
        """Lifeguard's buddy system, first: tell the member we have just suspected, by a
        ping carrying the suspicion, now rather than at our next probe of it, and hold the
        news back for a round trip (``Config.buddy_timeout``).  A live member's refutation
        rides back on its ack (``_refuted``) and ends the suspicion before anyone else
        has heard of it; if none comes, the suspicion spreads then
        (``_spread_unanswered``).  Under loss a raised suspicion reached nearly every node
        before the refutation caught up.  The wait is short and not stretched by local
        health: while it lasts our view differs from everyone else's (a split-brain
        tracker compares views), and on a real crash every other node starts its
        suspicion timer that much later."""
        self.counters["suspects_asked"] += 1
        self._send(target.address, [suspect, Ping(self._expected_ack(), target.name)])
        until = now + self.config.buddy_timeout
        self._withheld.append((until, suspect.name, suspect.incarnation))

    def _spread_unanswered(self, now: float) -> None:
        """Spread the suspicions held back (``_ask_suspect``) that are still standing."""
        while self._withheld and self._withheld[0][0] <= now:
            _, name, incarnation = self._withheld.popleft()
            suspicion = self._suspicions.get(name)
            if suspicion is not None and suspicion.incarnation == incarnation:
                self._enqueue(Suspect(name, incarnation, self.name))
                self._gossip_soon(now)

    def _recheck(self, state: _MemberState) -> None:
        """Ping a member back from DOWN that this node's last probe could not reach: after
        a split heals its answer ends the verdict within a round trip, not at its turn on
        the ring (up to a pass later); a link still cut leaves it unreached.  Over the
        reliable channel, which carries no news: a datagram would spend retransmissions
        of the heal's news on a member that has it (so sent, heals were no faster)."""
        self.counters["rechecks"] += 1
        self._send(state.address, [Ping(self._expected_ack(), state.name)], reliable=True)

    def _expected_ack(self) -> int:
        """A seq for a ping outside the probe ring, whose ack is expected, not late."""
        seq = self._next_seq()
        self._rechecks[seq] = None
        if len(self._rechecks) > MAX_RECHECKS:
            del self._rechecks[next(iter(self._rechecks))]
        return seq

    def _tell_down(self, now: float, state: _MemberState) -> None:
        """A member we hold DOWN or LEFT spoke to us: tell it, so that it outbids the news
        (its answer, ``_on_dead``, comes straight back).  After a heal, a node that missed
        the gossip of a member's return would otherwise hold it DOWN until a push/pull,
        and a forged Left kept a live member LEFT until one; a crashed member sends
        nothing, and a leaving one does not outbid, so nothing here brings either back.
        Sent to the address on record (a forged sender aims nothing), once per probe
        interval."""
        if not self._may_tell_down(now, state.name):
            return
        self.counters["told_down"] += 1
        news = (
            Left(state.name, state.incarnation)
            if state.status is LEFT
            else Dead(state.name, state.incarnation, self.name)
        )
        self._send(state.address, [news])

    def _may_tell_down(self, now: float, name: str) -> bool:
        """Whether ``name`` may be told it is DOWN (or LEFT) now: once per probe interval
        per member, whichever way (``_tell_down``, ``_notify_down``); remembered if so."""
        last = self._told_down.get(name)
        if last is not None and now - last < self.config.probe_interval:
            return False
        self._told_down[name] = now
        return True

    def _notify_down(self, now: float, name: str) -> None:
        """Our suspicion timer has just declared ``name`` DOWN: tell it, in a datagram of
        its own (no news piggybacked: a crashed member would waste its retransmissions),
        so that a live member refutes now rather than when it next speaks to a node
        holding it DOWN (``Config.notify_down_members``; foca's, which sends
        ``TurnUndead``).  Only the declaring node sends, once per declaration, and it
        shares ``_tell_down``'s limit of one notice per member per probe interval, so a
        member declared again and again buys no more than that."""
        if not self._may_tell_down(now, name):
            return
        state = self._members[name]
        self.counters["notified_down"] += 1
        news = kind_and_bytes(Dead(name, state.incarnation, self.name))
        self._send_encoded(state.address, [news], piggyback=False)

    def _next_probe_target(self, now: float) -> _MemberState | None:
        """The next member on the probe ring: one turn on from the last, and a pass (one
        turn for every other member) starts at the cluster's period number while our
        periods are the base interval (then every member is probed once per period
        cluster-wide).  Only between passes may the turn jump: jumping whenever our
        periods were back to the base one skipped the turns a stretched period had
        spanned, and a member whose suspicion of us we refuted once a pass, always at
        the same turn, went unprobed for good (its side of a mutual cut was found 40 s
        late).  See :mod:`.ring`."""
        if self._pass_left <= 0 and self._awareness.score == 0:
            self._probe_turn = math.floor(self._cluster_clock(now) / self.config.probe_interval)
        else:
            self._probe_turn += 1
        if self._pass_left <= 0:
            self._pass_left = len(self._ring) - 1
        self._pass_left -= 1
        name = self._ring.target(self.name, self._probe_turn)
        return None if name is None else self._members[name]

    def _cluster_clock(self, now: float) -> float:
        """The clock the probe turns are counted on, the same on every node: the wall
        clock when the driver gave it (``wall_ms``), else ``now`` (a simulation's clock)."""
        if self._wall_ms is None:
            return now
        return self._wall_ms / 1000 + (now - self._wall_origin)

    def _expire_relays(self, now: float) -> None:
        """Nack the relays whose target has not answered by ``nack_timeout`` (early enough
        for the prober to count it), and forget them at ``probe_timeout`` (a later ack is
        still relayed)."""
        while self._nacks and self._nacks[0][0] <= now:
            _, seq = self._nacks.popleft()
            relay = self._relays.get(seq)
            if relay is not None:
                self._send(relay.requester, [Nack(relay.requester_seq)])
        while self._relays:
            seq, relay = next(iter(self._relays.items()))
            if relay.deadline > now:
                break
            del self._relays[seq]

    def _expire_suspicions(self, now: float) -> None:
        while self._suspicion_heap and self._suspicion_heap[0][0] <= now:
            _, name, incarnation = heapq.heappop(self._suspicion_heap)
            suspicion = self._suspicions.get(name)
            if suspicion is None or suspicion.incarnation != incarnation:
                continue  # refuted or superseded
            if suspicion.deadline > now:  # not yet: re-armed at its current deadline
                heapq.heappush(self._suspicion_heap, (suspicion.deadline, name, incarnation))
                continue
            self._apply_dead(now, Dead(name, incarnation, self.name))
            if self.config.notify_down_members:
                self._notify_down(now, name)

    # ===================================================================== membership news
    # Whether news applies is decided by rules.supersedes / rules.refutes alone; these
    # methods carry it out (state, suspicion timers, events, gossip).

    def _apply_alive(self, now: float, msg: Alive) -> None:
        """Alive news: a new member, a refutation, a rejoin or new metadata; a name claimed
        from another address is a conflict and is refused unless ``rules.may_move``
        allows the move (the member LEFT, or has been DOWN ``dead_node_reclaim_time``)."""
        if msg.name == self.name:
            self._on_news_about_self_alive(now, msg)
            return
        state = self._members.get(msg.name)
        if state is None:
            if self._not_allowed(msg):
                return
            if len(self._members) >= MAX_MEMBERS:
                self.counters["rejected_member_limit"] += 1
                return
            if not self._newcomers_allowed.take(now):
                self.counters["rejected_newcomer_rate"] += 1
                return
            state = _MemberState(msg.name, msg.address, msg.incarnation, UP, msg.meta, now)
            self._members[msg.name] = state
            self._mark_alive(state)
            self._enqueue(msg)
            self._emit(MemberUp(state.snapshot(), now))
            return
        if state.address != msg.address and self._not_allowed(msg):
            return
        if state.address != msg.address and not rules.may_move(
            state.status, now - state.since, self.config.dead_node_reclaim_time
        ):
            self.counters["name_conflicts"] += 1
            self._emit(MemberConflict(state.snapshot(), now, other=msg.address))
            return
        if not rules.supersedes(state.status, state.incarnation, msg):
            return
        state = self._own(state)
        previous = state.status
        changed = (state.address, state.meta) != (msg.address, msg.meta)
        state.incarnation = msg.incarnation
        state.address = msg.address
        state.meta = msg.meta
        self._enqueue(msg)
        if previous is UP:
            if changed:
                self._emit(MemberUpdated(state.snapshot(), now))
            return
        state.status = UP
        state.since = now
        self._suspicions.pop(state.name, None)
        if previous is SUSPECT:
            self.counters["suspicions_refuted"] += 1
            self._emit(MemberAlive(state.snapshot(), now))
            if changed:
                self._emit(MemberUpdated(state.snapshot(), now))
        else:
            self._recently_down.pop(state.name, None)
            self._told_down.pop(state.name, None)
            self._mark_alive(state)
            if state.name in self._unreached:
                self._recheck(state)
            self._emit(MemberUp(state.snapshot(), now))

    def _not_allowed(self, msg: Alive) -> bool:
        """True (counted) when ``msg`` advertises an address outside
        ``Config.cidrs_allowed``: such a member is never added nor moved there, so this
        node never probes or gossips to it (memberlist refuses it likewise)."""
        allowed = self._allowed
        if allowed is None or allowed(msg.address[0]):
            return False
        self.counters["rejected_not_allowed"] += 1
        return True

    def _stale_alive(self, name: str, host: str, port: int, incarnation: int) -> bool:
        """An Alive that ``_apply_alive`` would ignore: about a member we know at that
        address and at least that incarnation (a conflict needs another address, news
        about ourselves is always looked at), or about a member we do not know once this
        packet has named ``push_pull_max_newcomers`` of them (dropped and counted before
        decoding, so a forged push/pull of 20,000 strangers costs little)."""
        state = self._members.get(name)
        if state is None:
            return self._past_newcomer_limit()
        return (
            not rules.wins(Alive, incarnation, state.status, state.incarnation)
            and state.address[1] == port
            and state.address[0] == host
            and name != self.name
        )

    def _past_newcomer_limit(self) -> bool:
        """Count one more unknown member named by the packet being received; True (and
        counted as dropped) once there were more than ``push_pull_max_newcomers``."""
        self._newcomers += 1
        if self._newcomers <= self.config.push_pull_max_newcomers:
            return False
        self.counters["rejected_newcomer_limit"] += 1
        return True

    def _apply_suspect(self, now: float, msg: Suspect, spread: bool = True) -> None:
        """Suspect news starts a suspicion; a repeated Suspect(i) from a new source is an
        independent confirmation that shortens the timeout.  ``spread=False``: the news is
        not queued (``_ask_suspect`` holds it back)."""
        if self._refuted(now, msg):
            return
        state = self._members.get(msg.name)
        if state is None or not rules.supersedes(state.status, state.incarnation, msg):
            return
        suspicion = self._suspicions.get(msg.name)
        if suspicion is not None and msg.incarnation == suspicion.incarnation:
            if suspicion.confirm(msg.source):
                self._enqueue(msg)
                heapq.heappush(
                    self._suspicion_heap, (suspicion.deadline, msg.name, msg.incarnation)
                )
            return
        state = self._own(state)
        state.incarnation = msg.incarnation
        if state.status is UP:
            state.status = SUSPECT
            state.since = now
            self._emit(MemberSuspect(state.snapshot(), now))
            # it keeps its place in our probe pass: moving it to the front broke round
            # robin (a starved member, suspected anew each period, took nearly every probe
            # and a crashed one behind it was never probed)
            if spread:
                self._gossip_soon(now)
        self._start_suspicion(now, state, msg.source)
        if spread:
            self._enqueue(msg)

    def _apply_dead(self, now: float, msg: Dead) -> None:
        """Dead news marks the member DOWN."""
        if self._refuted(now, msg):
            return
        state = self._members.get(msg.name)
        if state is None or not rules.supersedes(state.status, state.incarnation, msg):
            return
        state = self._mark_gone(now, state, DOWN, msg.incarnation)
        self._enqueue(msg)
        self._emit(MemberDown(state.snapshot(), now))
        self._gossip_soon(now)

    def _apply_left(self, now: float, msg: Left) -> None:
        """Left news marks the member LEFT (a DOWN member may still become LEFT)."""
        if self._refuted(now, msg):
            return
        state = self._members.get(msg.name)
        if state is None or not rules.supersedes(state.status, state.incarnation, msg):
            return
        state = self._mark_gone(now, state, LEFT, msg.incarnation)
        self._enqueue(msg)
        self._emit(MemberLeft(state.snapshot(), now))
        self._gossip_soon(now)

    def _on_news_about_self_alive(self, now: float, msg: Alive) -> None:
        """Someone spreads an Alive about us that is not ours: conflict or stale life."""
        if msg.address != self.address:
            self.counters["name_conflicts"] += 1
            self._emit(MemberConflict(self._self.snapshot(), now, other=msg.address))
        if msg.incarnation >= self.incarnation and (
            msg.incarnation > self.incarnation or msg != self._self.alive_message()
        ):
            self._refute(now, msg.incarnation)

    def _refuted(self, now: float, msg: Suspect | Dead | Left) -> bool:
        """News that we are suspect, dead or gone: outbid it unless it is older than this
        life of ours.  True when the news was about us (nothing else applies then).
        News of an earlier life means its sender missed our refutation: our current Alive
        goes out again (no new incarnation) and rides on what we send next, the ack when
        the news came with a probe (Lifeguard's buddy system), so a prober that holds a
        suspicion we have already refuted does not keep it until it times out."""
        if msg.name != self.name:
            return False
        if rules.refutes(self.incarnation, msg):
            self._refute(now, msg.incarnation)
        elif not self._leaving and ("m", self.name) not in self._queue:
            self._enqueue(self._self.alive_message())
        return True

    def _refute(self, now: float, seen: int) -> None:
        """Outbid news of our death with a higher incarnation (Lifeguard: and distrust
        ourselves, since being suspected hints that we were slow)."""
        if self._leaving:
            return
        self._self.incarnation = min(max(self.incarnation, seen) + 1, MAX_INCARNATION)
        self.counters["refutations"] += 1
        self._awareness.apply(1)
        self._enqueue(self._self.alive_message())
        self._gossip_soon(now)

    def _start_suspicion(self, now: float, state: _MemberState, source: str) -> None:
        low, high = self.config.suspicion_timeouts(self.alive_count())
        expected = self.config.suspicion_mult - 2
        if self.alive_count() - 2 < expected:
            expected = 0
        suspicion = Suspicion(state.incarnation, now, low, high, expected, {source})
        self._suspicions[state.name] = suspicion
        heapq.heappush(self._suspicion_heap, (suspicion.deadline, state.name, state.incarnation))

    def _merge_state(self, now: float, sender: str, members: Sequence[MemberState]) -> None:
        """Apply a push/pull: a peer's DOWN becomes our suspicion (memberlist's rule:
        verify before declaring death), everything else applies as a message would."""
        known = self._members.get
        for remote in members:
            if self._from_the_future(now, remote.incarnation):
                continue
            status = remote.status
            local = known(remote.name)
            if local is None and status is SUSPECT and self._past_newcomer_limit():
                continue  # (unknown UP entries were counted while decoding: _stale_alive)
            if (  # what we hold already: no rule below would change anything
                local is not None
                and local.status is status
                and status is not SUSPECT  # a suspicion from a new source confirms
                and local.incarnation == remote.incarnation
                and local.address == remote.address
                and local.meta == remote.meta
            ):
                continue
            if status is LEFT:
                self._apply_left(now, Left(remote.name, remote.incarnation))
                continue
            if status is not DOWN:
                alive = Alive(remote.name, remote.address, remote.incarnation, remote.meta)
                self._apply_alive(now, alive)
            if status is not UP:
                source = sender if status is SUSPECT else self.name
                self._apply_suspect(now, Suspect(remote.name, remote.incarnation, source))

    # ===================================================================== member bookkeeping

    def _mark_alive(self, state: _MemberState) -> None:
        if state.name in self._alive_index:
            return
        self._alive_index[state.name] = len(self._alive)
        self._alive.append(state.name)
        self._ring.add(state.name)
        if self._next_join is not None:
            self._next_join = None

    def _mark_gone(self, now: float, state: _MemberState, status: Status, inc: int) -> _MemberState:
        state = self._own(state)
        state.status = status
        state.incarnation = inc
        state.since = now
        self._suspicions.pop(state.name, None)
        self._drop_alive(state.name)
        self._recently_down.pop(state.name, None)
        self._recently_down[state.name] = now
        return state

    def _drop_alive(self, name: str) -> None:
        index = self._alive_index.pop(name, None)
        if index is not None:  # swap-remove from the alive list
            self._ring.discard(name)
            last = self._alive.pop()
            if last != name:
                self._alive[index] = last
                self._alive_index[last] = index

    def _own(self, state: _MemberState) -> _MemberState:
        """The record to change: one shared with other cores is copied in first."""
        if not state.shared:
            return state
        mine = attrs.evolve(state, shared=False)
        self._members[state.name] = mine
        return mine

    def _reap(self, now: float) -> None:
        """Forget DOWN and LEFT members after ``reap_time``, or the shorter time they
        announced (clients), but never before two push/pull periods: by then every peer
        has heard of the departure, so no exchange brings back an older, alive record."""
        config = self.config
        soonest = min(config.reap_time, 2 * config.push_pull_period(self.alive_count()))
        for name in [n for n, s in self._members.items() if not s.status.is_alive]:
            state = self._members[name]
            announced = announced_reap(state.meta)
            keep = config.reap_time if announced is None else max(announced, soonest)
            if now - state.since >= min(keep, config.reap_time) and name != self.name:
                del self._members[name]
                self._recently_down.pop(name, None)
                self._told_down.pop(name, None)
                self._unreached.discard(name)
                self._heard.discard(name)
                self._queue.discard(("m", name))  # news of a forgotten member goes too

    def _random_alive(self, k: int, exclude: Collection[str] = ()) -> list[_MemberState]:
        """Up to ``k`` distinct random UP/SUSPECT members other than ``exclude``."""
        pool = self._alive
        if k <= 0 or not pool:
            return []
        if len(pool) <= 4 * (k + len(exclude)):
            names = [n for n in pool if n not in exclude]
            chosen = self.rng.sample(names, min(k, len(names)))
        else:  # rejection sampling keeps large clusters O(k)
            picked: dict[str, None] = {}
            while len(picked) < k:
                name = pool[self.rng.randrange(len(pool))]
                if name not in exclude:
                    picked[name] = None
            chosen = list(picked)
        return [self._members[n] for n in chosen]

    # ===================================================================== dissemination

    def _enqueue(self, msg: Alive | Suspect | Dead | Left) -> None:
        """Queue membership news for piggybacking; newer news about a member replaces older."""
        self._queue.push(("m", msg.name), *kind_and_bytes(msg))

    def _gossip_soon(self, now: float) -> None:
        """Gossip at the next tick as well as at the next beat: news of a suspicion, a
        death, a leave or a refutation is worth a packet of its own (it is sent no more
        often in all, only earlier: each hop saves up to one gossip interval).  The beat
        keeps its phase: were it restarted here, every node that heard the news in one
        burst would gossip in step from then on, and a node the burst missed would wait
        a whole interval for the next round instead of the first of many beats."""
        self._gossip_now = now if self._gossip_now is None else min(self._gossip_now, now)

    def _gossip(self, now: float) -> None:
        """Send queued news to ``gossip_nodes`` random members, recently DOWN ones included."""
        horizon = now - self.config.gossip_to_the_dead_time
        while self._recently_down:
            name, since = next(iter(self._recently_down.items()))
            if since > horizon:
                break
            del self._recently_down[name]
        if not self._queue:
            return
        targets = self._random_alive(self.config.gossip_nodes)
        if self._recently_down:
            dead = [self._members[n] for n in self._recently_down if n in self._members]
            pool = len(self._alive) + len(dead)
            for candidate in dead:
                if self.rng.random() * pool < self.config.gossip_nodes:
                    targets.append(candidate)
        for target in targets:
            if not self._send(target.address, [], require_payload=True):
                break

    def _send(
        self,
        destination: Address,
        messages: Sequence[Any],
        reliable: bool = False,
        require_payload: bool = False,
    ) -> bool:
        """Encode ``messages`` into one packet, filling the rest of a datagram's budget
        with queued news (piggybacking).  False when ``require_payload`` found none."""
        return self._send_encoded(
            destination, list(map(kind_and_bytes, messages)), reliable, require_payload
        )

    def _send_encoded(
        self,
        destination: Address,
        encoded: list[tuple[str, bytes]],
        reliable: bool = False,
        require_payload: bool = False,
        piggyback: bool = True,
    ) -> bool:
        """:meth:`_send` of messages already encoded (``kind_and_bytes`` pairs);
        ``piggyback=False``: no queued news rides along."""
        if not reliable and self._queue and piggyback:
            room = self.config.packet_budget - self._overhead - sum(len(d) for _, d in encoded)
            limit = self.config.retransmit_limit(self.alive_count())
            encoded += self._queue.take(room, limit)
        if require_payload and not encoded:
            return False
        items = list(map(_BYTES, encoded))
        reply_to = self.address if reliable else None  # (a stream's source port is ephemeral)
        data = encode_packet(self.config.label, self.name, items, reply_to)
        self.outgoing.append(Packet(destination, data, reliable))
        counters = self.counters
        counters["packets_sent"] += 1
        counters["bytes_sent"] += len(data)
        for kind, item in encoded:
            sent, bytes_sent = _SENT_COUNTERS[kind]
            counters[sent] += 1
            counters[bytes_sent] += len(item)
        return True

    def _remember_user_message(self, data: bytes) -> bytes:
        digest = hashlib.blake2b(data, digest_size=8).digest()
        self._seen_user[digest] = None
        if len(self._seen_user) > SEEN_USER_MESSAGES:
            self._seen_user.popitem(last=False)
        return digest

    # ===================================================================== full-state sync

    def _push_pull(self, now: float, destination: Address, join: bool, reply: bool = False) -> None:
        states = tuple(
            _wire_state(s.name, s.address, s.incarnation, s.status, s.meta)
            for s in self._members.values()
        )
        user_state = {ch: d.local_state(join) for ch, d in self._delegates.items()}
        message = PushPull(join, reply, states, {ch: s for ch, s in user_state.items() if s})
        self.counters["push_pulls"] += 0 if reply else 1
        self._send(destination, [message], reliable=True)

    def _push_pull_random(self, now: float) -> None:
        peers = self._random_alive(1)
        if peers:
            self._push_pull(now, peers[0].address, join=False)

    def _reconnect(self, now: float) -> None:
        """Re-contact one DOWN member and one absent seed, so that a partition that
        outlasted ``gossip_to_the_dead_time`` still heals (Serf's reconnect)."""
        down = [s for s in self._members.values() if s.status is DOWN]
        if down:
            self._push_pull(now, self.rng.choice(down).address, join=False)
        present = {self._members[n].address for n in self._alive}
        absent = [seed for seed in self._seeds if seed not in present]
        if absent:
            self._push_pull(now, self.rng.choice(absent), join=True)

    # ===================================================================== small helpers

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % (1 << 62)
        return self._seq

    def _emit(self, event: MemberEvent) -> None:
        self.events.append(event)
        for delegate in self._delegates.values():
            delegate.on_member_event(event)
