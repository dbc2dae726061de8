"""Group routers: one ref whose routees are a group's members, wherever they run.

A group router is a cell on the node that made it (an ordinary :class:`ActorRef`, public
if asked).  A message to it goes straight to the member the routing picks among the
members this node knows (``system.group_members``: its own first, then by node), with no
hop through a router mailbox: to a local member's mailbox, or onto the connection to the
member's node.  The routees follow the group: a member joins the routing once its
registration reaches this node and leaves it when it leaves the group, stops, or its node
goes DOWN.  Routings: ``round-robin``, ``random``, ``consistent-hash`` (rendezvous on the
member's address, so a key stays with its member while that member stays), ``broadcast``
(every member gets every tell; an ask is a TypeError).  An empty group turns a tell into
a dead letter and an ask into :class:`ActorStopped`; the router itself stays.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import outcome
import trio

from ..actors.actor import Actor
from ..actors.cell import RUNNING, ActorCell
from ..actors.errors import ActorError, ActorStopped
from ..actors.ref import DEFAULT_ASK_TIMEOUT, READY, ActorRef, Target, sender_now
from ..actors.routers import check_routing, rendezvous

if TYPE_CHECKING:
    from ..actors.reply import Reply
    from .groups import Groups

__all__ = ["GROUP_ROUTINGS", "GroupRouterCell", "RouterActor", "check_group_routing"]

GROUP_ROUTINGS = ("round-robin", "random", "consistent-hash", "broadcast")
"""Routings a group router has (smallest-mailbox needs local routees: use a pool)."""


def check_group_routing(routing: str, key: Callable[[Any], Any] | None) -> None:
    """ValueError unless ``routing`` (with ``key``) is one a group router takes."""
    check_routing(routing, key)
    if routing not in GROUP_ROUTINGS:
        raise ValueError(f"a group router routes {', '.join(GROUP_ROUTINGS)}, not {routing!r}")


class RouterActor(Actor):
    """The router's own actor: messages go to the routees, never here."""

    def receive(self, msg: Any, ctx: Any) -> None:
        pass


class _Forget:
    """Takes a stopped router off its groups' list."""

    __slots__ = ("groups",)

    def __init__(self, groups: Groups) -> None:
        self.groups = groups

    def notify_terminated(self, ref: ActorRef, reason: str | None) -> None:
        router = ref.target
        assert isinstance(router, GroupRouterCell)
        self.groups.routers.discard(router)
        router.stale()


def _address(ref: ActorRef) -> str:
    return f"{ref.node}/{ref.path}#{ref.uid}"


class GroupRouterRef(ActorRef):
    """The ref of a group router: round robin takes its turn here and queues into a
    plain local member's mailbox when it has room (one Python call a tell, like a direct
    tell), or hands the message to the member's ref (a pool) or its target (remote);
    anything else goes to the router's tell."""

    __slots__ = ()

    def tell(self, msg: Any) -> Awaitable[None]:
        """Deliver ``msg`` to a member (see :meth:`ActorRef.tell`)."""
        router: GroupRouterCell = self._target  # type: ignore[assignment]
        targets = router._fast
        if targets:
            turn = router._turn + 1  # type: ignore[operator]  # _route's round robin inline
            if turn >= len(targets):
                turn = 0
            router._turn = turn
            target = targets[turn]
            if type(target) is ActorCell:
                queue = target.queue
                if len(queue) < target.limit:  # CellRef.tell's fast path, inlined
                    queue.append((msg, sender_now(), None))
                    if target._parked:
                        target._wake()
                    return READY
            if isinstance(target, ActorCell) and target.state is RUNNING:
                return target.ref.tell(msg)  # a local member: through its own ref
            return target.tell(msg, sender_now())
        return router.tell(msg, sender_now())


class GroupRouterCell(ActorCell):
    """A cell that delivers what is sent to it to members of a group (or all of them)."""

    ref_type = GroupRouterRef

    __slots__ = (
        "_fast",
        "_groups",
        "_hash_key",
        "_members",
        "_random",
        "_turn",
        "broadcast",
        "group",
    )

    def configure(
        self, groups: Groups, group: str, routing: str, key: Callable[[Any], Any] | None
    ) -> None:
        self._groups = groups
        self.group = group
        self._hash_key = key
        self._random = random.Random() if routing == "random" else None
        self._turn = -1 if routing == "round-robin" else None
        self._members: list[ActorRef] | None = None
        self._fast: list[Target] = []
        """The members' targets while round robin may take its turn inline (fresh and
        running); emptied whenever the group changes or the router stops."""
        self.broadcast = routing == "broadcast"
        groups.routers.add(self)
        self.add_watcher(_Forget(groups))

    def stale(self) -> None:
        """The group's members may have changed: re-read them on the next message."""
        self._members = None
        self._fast = []

    def members(self) -> list[ActorRef]:
        """The group's members as this node knows them now (re-read when they change);
        none once the router is stopped."""
        if self.state is not RUNNING:
            return []
        if self._members is None:
            self._members = self._groups.members(self.group)
            if self._turn is not None:
                self._fast = [member.target for member in self._members]
        return self._members

    def _route(self, msg: Any) -> ActorRef | None:
        members = self.members()
        if not members:
            return None
        if self._turn is not None:
            turn = self._turn + 1
            if turn >= len(members):
                turn = 0
            self._turn = turn
            return members[turn]
        if self._random is not None:
            return members[self._random.randrange(len(members))]
        assert self._hash_key is not None
        return rendezvous(members, str(self._hash_key(msg)), _address)

    def _lost(self, msg: Any, sender: ActorRef | None) -> None:
        self.system.dead_letters.publish(self.ref, msg, sender)

    def _empty(self) -> ActorStopped:
        if self.state is not RUNNING:
            return ActorStopped(f"{self.ref} is stopped")
        return ActorStopped(f"{self.ref} routes to group {self.group!r}, which has no members")

    # -- from this node (the Target protocol) ---------------------------------------------

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        if self.broadcast:
            return self._tell_all(msg, sender, self.members())
        member = self._route(msg)
        if member is None:
            self._lost(msg, sender)
            return trio.lowlevel.checkpoint()
        return member.target.tell(msg, sender)

    async def _tell_all(
        self, msg: Any, sender: ActorRef | None, members: Sequence[ActorRef]
    ) -> None:
        if not members:
            self._lost(msg, sender)
        for member in members:
            await member.target.tell(msg, sender)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        members = self.members() if self.broadcast else [self._route(msg)]
        if not members or members[0] is None:
            self._lost(msg, sender)
            return
        for member in members:
            assert member is not None
            member.target.tell_nowait(msg, sender)

    def ask(
        self, msg: Any, sender: ActorRef | None, timeout: float | None
    ) -> Coroutine[Any, Any, Any]:
        if self.broadcast:
            raise TypeError(f"{self.ref} broadcasts: it cannot answer an ask")
        member = self._route(msg)
        if member is None:
            return _raise(self._empty())
        return member.target.ask(msg, sender, timeout)

    # -- from another node (what the transport calls on a local cell) ---------------------

    def offer(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> bool:
        """Pass a delivery from the wire on without waiting: into a local member's mailbox,
        or onto another node's connection (an ask is awaited in a task of its own); a
        member with no room drops it (a dead letter, counted)."""
        if self.broadcast:
            if reply is not None:
                reply.set(outcome.Error(TypeError(f"{self.ref} broadcasts: it cannot answer")))
                return True
            members = self.members()
            if not members:
                self._lost(msg, sender)
            for member in members:
                self._pass_on(member, msg, sender, None)
            return True
        routee = self._route(msg)
        if routee is None:
            self._lost(msg, sender)
            if reply is not None:
                reply.set(outcome.Error(self._empty()))
            return True
        self._pass_on(routee, msg, sender, reply)
        return True

    def _pass_on(
        self, member: ActorRef, msg: Any, sender: ActorRef | None, reply: Reply | None
    ) -> None:
        target = member.target
        if isinstance(target, ActorCell):
            if not target.offer(msg, sender, reply):
                self.system.stats.mailbox_drops += 1
                self.system.dead_letters.publish(member, msg, sender)
                if reply is not None:
                    reply.set(outcome.Error(target._full()))
        elif reply is None:
            try:
                target.tell_nowait(msg, sender)
            except ActorError:  # no credit to that node: drop rather than stall this one
                self.system.stats.mailbox_drops += 1
                self.system.dead_letters.publish(member, msg, sender)
        else:
            self.system.nursery.start_soon(_forward_ask, member, msg, sender, reply)

    async def put(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> None:
        self.offer(msg, sender, reply)
        await trio.lowlevel.checkpoint()

    def ask_now(self, msg: Any, sender: ActorRef | None) -> outcome.Outcome[Any] | None:
        return None  # always through offer: the member may be on another node


async def _forward_ask(member: ActorRef, msg: Any, sender: ActorRef | None, reply: Reply) -> None:
    """Ask ``member`` for another node's asker and hand back what it answers."""
    reply.set(await outcome.acapture(member.target.ask, msg, sender, DEFAULT_ASK_TIMEOUT))


async def _raise(error: BaseException) -> Any:
    raise error
