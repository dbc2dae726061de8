"""Pools: ``size`` supervised copies of an actor behind one ordinary :class:`ActorRef`.

The pool is an actor cell whose children are the routees; a message to the pool's ref is
handed straight to the routee the routing picks (no hop through a router's mailbox), from
this node or any other.  Routings (Akka's and GoAkt's):

- ``"round-robin"``: each routee in turn;
- ``"random"``: a routee at random;
- ``"smallest-mailbox"``: the routee with the fewest messages queued or in hand (first
  on a tie);
- ``"consistent-hash"``: by ``key(msg)`` (rendezvous hashing on the routees' names, so
  equal keys go to the same routee while the pool keeps its routees);
- ``"broadcast"``: every routee gets every tell (an ask is a ``TypeError``).

Routees are supervised by ``supervision`` (a restarted routee keeps its place); a routee
that stops leaves the pool, and a pool without routees stops.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

import outcome
import trio

from .actor import Actor
from .cell import RUNNING, ActorCell
from .errors import ActorStopped
from .ref import READY, ActorRef, sender_now
from .reply import Notify, Reply

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .mailbox import Mailbox
    from .runtime import ActorSource
    from .supervision import Strategy

__all__ = ["ROUTINGS", "PoolCell", "Routing", "check_routing", "rendezvous"]

Routing = Literal["round-robin", "random", "smallest-mailbox", "consistent-hash", "broadcast"]
ROUTINGS: tuple[str, ...] = get_args(Routing)

R = TypeVar("R")
Picker = Callable[["Sequence[ActorCell]", Any], ActorCell]


def check_routing(routing: str, key: Callable[[Any], Any] | None) -> None:
    """A known routing, and a key function exactly when hashing (ValueError)."""
    if routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {', '.join(ROUTINGS)}, not {routing!r}")
    if (routing == "consistent-hash") != (key is not None):
        raise ValueError("a key function goes with routing='consistent-hash', and only there")


def picker(routing: str, key: Callable[[Any], Any] | None) -> Picker:
    """How a pool with ``routing`` chooses the routee for a message."""
    if routing == "random":
        rng = random.Random()
        return lambda routees, msg: routees[rng.randrange(len(routees))]
    if routing == "smallest-mailbox":
        return lambda routees, msg: min(routees, key=_load)
    if routing == "consistent-hash":
        assert key is not None
        return lambda routees, msg: rendezvous(routees, str(key(msg)), _name)
    raise ValueError(f"no picker for {routing!r}: a pool takes turns itself")


PICKED = ("random", "smallest-mailbox", "consistent-hash")
"""Routings with a :func:`picker` (round robin is the pool's own turn; broadcast picks all)."""


def _load(cell: ActorCell) -> int:
    """Queued messages, plus one for a message in hand (an idle routee is preferred)."""
    return len(cell.queue) + (not cell._parked)


def rendezvous(routees: Sequence[R], key: str, label: Callable[[R], str]) -> R:
    """The routee with the highest hash of (key, its label): stable as others come and go."""

    def score(routee: R) -> bytes:
        return hashlib.blake2b(f"{key}\0{label(routee)}".encode(), digest_size=8).digest()

    return max(routees, key=score)


def _name(cell: ActorCell) -> str:
    return cell.name


class Supervisor(Actor):
    """The pool's own actor: it starts and supervises the routees (again after a restart
    of the pool itself); messages go to the routees, never here."""

    def __init__(
        self,
        routee: ActorSource,
        size: int,
        mailbox: int | Mailbox | None,
        strategy: Strategy | None,
    ) -> None:
        self.routee = routee
        self.size = size
        self.mailbox = mailbox
        self.strategy = strategy

    def start_routees(self, cell: ActorCell) -> None:
        """Spawn the pool's ``size`` routees as children of ``cell``, named 0..size-1."""
        for index in range(self.size):
            cell.system.spawn_under(cell, self.routee, str(index), self.mailbox, self.strategy)

    async def on_restart(self, error: BaseException) -> None:
        """The restart stopped the routees: start a new set."""
        pool = self.context._cell
        assert isinstance(pool, PoolCell)
        pool._routees = []  # the old ones stopped with the restart
        self.start_routees(pool)

    def receive(self, msg: Any, ctx: Any) -> None:
        """Nothing: messages to a pool go straight to its routees."""


class PoolRef(ActorRef):
    """The ref of a pool: round robin takes its turn here and queues into the routee's
    mailbox when it has room (one Python call a tell, like a direct tell); anything else
    goes to the routee's or the pool's tell."""

    __slots__ = ()

    def tell(self, msg: Any) -> Awaitable[None]:
        """Deliver ``msg`` to a routee (see :meth:`ActorRef.tell`)."""
        pool: PoolCell = self._target  # type: ignore[assignment]
        routees = pool._routees
        if pool._round_robin and routees:
            turn = pool._turn + 1
            if turn >= len(routees):
                turn = 0
            pool._turn = turn
            turned = routees[turn]
            queue = turned.queue
            if len(queue) < turned.limit:  # CellRef.tell's fast path, inlined: the call
                queue.append((msg, sender_now(), None))  # to it was 1/9 of a pool's tell
                if turned._parked:
                    turned._wake()
                return READY
            if turned.state is RUNNING:
                return turned.tell(msg, sender_now())
            pool._routees = []  # the routees changed: the pool's tell re-reads them
        return pool.tell(msg, sender_now())


class PoolCell(ActorCell):
    """A cell that delivers what is sent to it to one of its children (or all)."""

    __slots__ = ("_pick", "_round_robin", "_routees", "_turn", "broadcast")

    ref_type = PoolRef

    def configure(self, routing: str, key: Callable[[Any], Any] | None) -> None:
        """Route by ``routing`` (with ``key`` for consistent-hash) over no routees yet."""
        self.broadcast = routing == "broadcast"
        self._round_robin = routing == "round-robin"
        self._pick = picker(routing, key) if routing in PICKED else self._take_turn
        self._routees: list[ActorCell] = []
        self._turn = -1

    def _take_turn(self, routees: Sequence[ActorCell], msg: Any) -> ActorCell:
        """Round robin: the routee after the last one picked."""
        turn = self._turn + 1
        if turn >= len(routees):
            turn = 0
        self._turn = turn
        return routees[turn]

    def routees(self) -> list[ActorCell]:
        """The routees (kept while the children stay the same: a routee that stops leaves
        ``children``; one still stopping turns messages into dead letters)."""
        if len(self._routees) != len(self.children):
            self._routees = list(self.children.values())
        return self._routees

    def _route(self, msg: Any) -> ActorCell | None:
        routees = self._routees
        if not routees or len(routees) != len(self.children):
            routees = self.routees()
            if not routees:
                self.request_stop()
                return None
        return self._pick(routees, msg)

    def _lost(self, msg: Any, sender: ActorRef | None) -> None:
        self.system.dead_letters.publish(self.ref, msg, sender)

    def _stopped(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> bool:
        self._lost(msg, sender)
        if reply is not None:
            reply.set(outcome.Error(ActorStopped(f"{self.ref} has no routees")))
        return True

    def tell(self, msg: Any, sender: ActorRef | None) -> Awaitable[None]:
        if self.broadcast:
            return self._tell_all(msg, sender)
        routee = self._route(msg)
        if routee is None:
            self._lost(msg, sender)
            return trio.lowlevel.checkpoint()
        return routee.tell(msg, sender)

    async def _tell_all(self, msg: Any, sender: ActorRef | None) -> None:
        routees = self.routees()
        if not routees:
            self._lost(msg, sender)
        for routee in routees:
            await routee.tell(msg, sender)

    def tell_nowait(self, msg: Any, sender: ActorRef | None) -> None:
        if self.broadcast:
            routees = self.routees()
            if not routees:
                self._lost(msg, sender)
            for each in routees:
                each.tell_nowait(msg, sender)
            return
        routee = self._route(msg)
        if routee is None:
            self._lost(msg, sender)
        else:
            routee.tell_nowait(msg, sender)

    def ask(
        self, msg: Any, sender: ActorRef | None, timeout: float | None
    ) -> Coroutine[Any, Any, Any]:
        if self.broadcast:
            raise TypeError(f"{self.ref} broadcasts: it cannot answer an ask")
        routee = self._route(msg)
        if routee is None:
            return _raise(ActorStopped(f"{self.ref} has no routees"))
        return routee.ask(msg, sender, timeout)

    def start_ask(
        self, msg: Any, sender: ActorRef | None, timeout: float | None, notify: Notify
    ) -> Reply | None:
        """Route once, then start the ask at the routee (a broadcast pool cannot answer)."""
        routee = None if self.broadcast else self._route(msg)
        if routee is None:
            return super().start_ask(msg, sender, timeout, notify)  # fails as ask would
        return routee.start_ask(msg, sender, timeout, notify)

    def offer(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> bool:
        if self.broadcast:
            if reply is not None:
                reply.set(outcome.Error(TypeError(f"{self.ref} broadcasts: it cannot answer")))
                return True
            for each in self.routees():
                if not each.offer(msg, sender, None):  # no waiting per copy from the wire
                    self.system.stats.mailbox_drops += 1
                    self.system.dead_letters.publish(each.ref, msg, sender)
            return True
        routee = self._route(msg)
        if routee is None:
            return self._stopped(msg, sender, reply)
        return routee.offer(msg, sender, reply)

    async def put(self, msg: Any, sender: ActorRef | None, reply: Reply | None) -> None:
        routee = None if self.broadcast else self._route(msg)
        if routee is None:
            self.offer(msg, sender, reply)
            await trio.lowlevel.checkpoint()
        else:
            await routee.put(msg, sender, reply)

    def ask_now(self, msg: Any, sender: ActorRef | None) -> outcome.Outcome[Any] | None:
        if self.broadcast:
            return outcome.Error(TypeError(f"{self.ref} broadcasts: it cannot answer an ask"))
        turn = self._turn
        routee = self._route(msg)
        answer = None if routee is None else routee.ask_now(msg, sender)
        if answer is None:
            self._turn = turn  # not taken: the offer that follows routes this ask once
        return answer


async def _raise(error: BaseException) -> Any:
    raise error
