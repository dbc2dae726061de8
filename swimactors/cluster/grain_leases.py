"""Leases that let a grain's rendezvous owner activate it without probing (docs/grains.md).

A host *leases* from every other member that is UP or SUSPECT (a :class:`GrainLease`
naming its view: the UP hosts of each rendezvous kind it hosts).  A member grants only if
its own view of those kinds is the same and it holds no activation, in any phase (probing,
active, forwarding, stopping, saving), of a grain the lessee owns under that view; while
the grant lasts it probes the lessee before any activation of such a grain takes it (the
requester of the creating message and members it counts DOWN included), and if the lessee
does not answer it waits until the grant has run out.  The lessee activates a grain it
owns under its current view without probing while it holds a lease from every member that
is UP or SUSPECT: any other activation of that grain either ended before the member
granted, or probes the lessee and meets its activation (a claim) or finds none (then the
lessee drops that member's lease at once).  A lessee drops every lease when its view
changes; its lease ends :data:`LEASE_TIME` x 0.9 after it asked, before the member's grant
does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ..actors.errors import ActorError
from ..actors.message import message
from ..logs import logger
from ..membership import Status
from ..placement import Placement, rendezvous

if TYPE_CHECKING:
    from .grains import Grains
    from .system import Cluster

__all__ = ["LEASE_TIME", "GrainLease", "Leases", "View"]

log = logger("swimactors.grains")

LEASE_TIME = 3.0
"""Seconds a member's grant lasts from when it answered (the lessee counts 0.9 of it
from when it asked)."""
LEASE_RENEW = 1.0
"""Renew a lease when less than this many seconds of it are left."""
LEASE_WANTED = 60.0
"""Seconds after this node's last activation of a rendezvous grain that it keeps leasing."""
LEASE_POLL = 0.1
"""Seconds between the lease keeper's rounds (also the retry delay after a refusal)."""
LEASE_ASK_TIMEOUT = 2.0
STRANGER_TIME = 60.0
"""Seconds a stranger (below) stops skipping if this node hears nothing of it meanwhile
(no probe reaches a member unknown here either)."""
MAX_STRANGERS = 1024
MAX_LESSEES = 4096
"""Members this node remembers having granted a lease (beyond, it treats every member as
one), and running grants it keeps (beyond, it refuses)."""
_REACHABLE = (Status.UP, Status.SUSPECT)

View = tuple[tuple[str, tuple[str, ...]], ...]
"""The UP hosts of each rendezvous kind, sorted by kind."""


@message("swimactors.GrainLease")
class GrainLease:
    """``node`` asks for a lease under its view (``kinds[i]`` hosted by ``hosts[i]``):
    answered True (granted for :data:`LEASE_TIME`) or False."""

    node: str
    kinds: list[str]
    hosts: list[list[str]]


class Grant:
    """What this node granted a lessee: its view and until when (this node's clock)."""

    __slots__ = ("hosts", "until")

    def __init__(self, hosts: dict[str, tuple[str, ...]], until: float) -> None:
        self.hosts = hosts
        self.until = until


class Leases:
    """One node's leases, both ways: those it holds (lessee) and those it granted."""

    def __init__(self, grains: Grains) -> None:
        self.grains = grains
        self.view: View = ()
        """The view the held leases are for (observed at every decision)."""
        self.epoch = 0
        """Bumped whenever :attr:`view` changes (answers to older asks are dropped)."""
        self.held: dict[str, float] = {}
        """Member -> until when its lease lasts (this node's clock)."""
        self.granted: dict[str, Grant] = {}
        self.lessees: set[str] = set()
        """Every member this node (this process) ever granted a lease."""
        self.lessees_overflow = False
        self.strangers: dict[str, float] = {}
        """Members not UP or SUSPECT here whose probe found no activation, and when: no
        lease can be asked of them, so no probe is skipped until they are UP or SUSPECT
        (then their lease is needed), DOWN or LEFT, or :data:`STRANGER_TIME` passed."""
        self.wanted_until = -1.0
        self._asking: dict[str, int] = {}
        """Member asked now -> revocations since (an answer counts only if none)."""
        self._keeping = False
        self.skipped = 0
        """Activations that took their grain without probing (a counter)."""

    # -- the lessee ------------------------------------------------------------------------

    def observe(self) -> View:
        """This node's view now; if it changed, every held lease is dropped."""
        grains = self.grains
        view = tuple(
            (name, tuple(grains.hosts(name)))
            for name, kind in sorted(grains.kinds.items())
            if kind.placement is Placement.RENDEZVOUS
        )
        if view != self.view:
            self.view = view
            self.epoch += 1
            self.held.clear()
        return view

    def may_skip_probes(self, kind: str, identity: str) -> bool:
        """Whether a new activation here may take the grain without probing: it is a
        rendezvous grain this node owns under its view, every member whose activations
        may serve (:meth:`Grains.unsettled`: UP or SUSPECT, or DOWN but still counted by
        the split-brain rule) has leased to it, no stranger probed, and the registry
        records no activation of it.
        (The caller has checked that no member this node granted owns it.)"""
        grains = self.grains
        cluster = grains.system.cluster
        if cluster is None:
            return False
        me = grains.system.name
        view = dict(self.observe())
        hosts = view.get(kind)
        if hosts is None or rendezvous(identity, hosts) != me:
            return False
        now = trio.current_time()
        reachable = {m.name for m in cluster.node.members() if m.status in _REACHABLE}
        if self.strangers:
            self.strangers = {
                name: since
                for name, since in self.strangers.items()
                if name not in reachable
                and not _gone(cluster, name)
                and now - since < STRANGER_TIME
            }
            if self.strangers:
                return False
        for name in grains.unsettled():
            if self.held.get(name, -1.0) <= now:
                return False
        return grains.registration(kind, identity) is None

    def want(self) -> None:
        """An activation of a rendezvous grain started here: keep leases for a while."""
        self.wanted_until = trio.current_time() + LEASE_WANTED
        if not self._keeping:
            self._keeping = True
            self.grains.system.nursery.start_soon(self._keep)

    async def _keep(self) -> None:
        """Ask every member UP or SUSPECT whose lease is missing or running out."""
        cluster = self.grains.system.cluster
        assert cluster is not None
        me = self.grains.system.name
        try:
            while trio.current_time() < self.wanted_until and not self.grains.system.closing:
                self.observe()
                now = trio.current_time()
                for member in cluster.node.members():
                    name = member.name
                    if (
                        name != me
                        and member.status in _REACHABLE
                        and name not in self._asking
                        and self.held.get(name, -1.0) - now < LEASE_RENEW
                    ):
                        self._asking[name] = 0
                        self.grains.system.nursery.start_soon(self._ask, name)
                await trio.sleep(LEASE_POLL)
        finally:
            self._keeping = False

    async def _ask(self, node: str) -> None:
        cluster = self.grains.system.cluster
        assert cluster is not None
        try:
            view = self.observe()
            epoch = self.epoch
            asked = trio.current_time()
            request = GrainLease(
                self.grains.system.name, [k for k, _ in view], [list(h) for _, h in view]
            )
            try:
                granted = await cluster.transport.request(node, request, LEASE_ASK_TIMEOUT)
            except ActorError as exc:
                log.debug("lease from %s: %s", node, exc)
                granted = False
            self.observe()
            if granted is True and self.epoch == epoch and not self._asking[node]:
                self.held[node] = asked + LEASE_TIME * 0.9
            elif granted is not True:
                await trio.sleep(LEASE_POLL)
        finally:
            del self._asking[node]

    def revoke(self, node: str) -> None:
        """A probe from ``node`` found no activation here: it may take the grain, so its
        lease (and any ask of one in flight) is void."""
        self.held.pop(node, None)
        if node in self._asking:
            self._asking[node] += 1
        cluster = self.grains.system.cluster
        if cluster is not None:
            member = cluster.node.member(node)
            if (member is None or member.status not in _REACHABLE) and len(
                self.strangers
            ) < MAX_STRANGERS:
                self.strangers[node] = trio.current_time()

    # -- the lessor ------------------------------------------------------------------------

    def serve(self, request: GrainLease) -> bool:
        """Grant ``request`` if this node sees the same hosts and holds no activation of
        a grain the lessee owns under them."""
        if (
            type(request.node) is not str
            or len(request.kinds) != len(request.hosts)
            or not all(type(k) is str for k in request.kinds)
            or not all(type(n) is str for h in request.hosts for n in h)
        ):
            raise TypeError("a grain lease names kinds and their hosts as strings")
        self.observe()  # a change of this node's own view drops its own leases first
        hosts = {k: tuple(h) for k, h in zip(request.kinds, request.hosts, strict=True)}
        grains = self.grains
        if any(tuple(grains.hosts(kind)) != view for kind, view in hosts.items()):
            return False
        lessee = request.node
        if len(self.granted) >= MAX_LESSEES:
            self.grantees("", "")  # drops the grants that ran out
            if len(self.granted) >= MAX_LESSEES and lessee not in self.granted:
                return False
        for kind, identity in grains.held_keys():
            view = hosts.get(kind)
            if view is not None and rendezvous(identity, view) == lessee:
                return False
        self.granted[lessee] = Grant(hosts, trio.current_time() + LEASE_TIME)
        if lessee not in self.lessees:
            if len(self.lessees) < MAX_LESSEES:
                self.lessees.add(lessee)
            else:
                self.lessees_overflow = True
        return True

    def ever_granted(self, node: str) -> bool:
        """Whether this node may ever have granted ``node`` a lease (then it may skip
        probes, and an activation made by its message must probe it)."""
        return self.lessees_overflow or node in self.lessees

    def grantees(self, kind: str, identity: str) -> dict[str, float]:
        """Members this node granted a lease that is still running and under which they
        own the grain: each until when (an activation here must hear from them first)."""
        now = trio.current_time()
        owners: dict[str, float] = {}
        for node, grant in list(self.granted.items()):
            if grant.until <= now:
                del self.granted[node]
                continue
            hosts = grant.hosts.get(kind)
            if hosts is not None and rendezvous(identity, hosts) == node:
                owners[node] = grant.until
        return owners


def _gone(cluster: Cluster, name: str) -> bool:
    member = cluster.node.member(name)
    return member is not None and member.status in (Status.DOWN, Status.LEFT)
