"""Process groups and pub/sub across the cluster (Erlang's ``pg``, Akka's DistributedPubSub).

A member of group ``g`` is recorded in the registry as ``$group/<g>/<node>/<path#uid>``
(one name per member, so groups have any number of members on any node), withdrawn when
it leaves or its actor stops, and dropped with its node when that goes DOWN or LEFT.  Each
node keeps an index of the groups from the registry's changes.  A topic is the group
``$topic:<topic>``: ``publish`` tells each local subscriber directly and sends *one*
:class:`TopicDelivery` to each other node holding subscribers, which hands it to them:
at most once, in publish order per publisher (one connection per node pair, in order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..actors.errors import ActorError
from ..actors.message import message
from ..actors.protocol import decode_value, encode_value
from ..actors.ref import ActorRef
from ..actors.transport import SYSTEM_PATH, RemoteTarget
from ..logs import logger
from ..registry import Change, NameAdded, NameChanged, NameRemoved, Registration
from ..wire import WireError
from .names import actor_id

if TYPE_CHECKING:
    from .group_routers import GroupRouterCell
    from .system import System

__all__ = ["GROUP_PREFIX", "Groups", "TopicDelivery", "check_group"]

log = logger("swimactors.groups")

GROUP_PREFIX = "$group/"
TOPIC_GROUP = "$topic:"
"""Topics are groups with this prefix."""


@message("swimactors.TopicDelivery")
class TopicDelivery:
    """One publish for the subscribers ``targets`` (``path#uid``) on the receiving node;
    ``value`` is the message as the actor protocol encodes it."""

    topic: str
    value: Any
    targets: list[str]


def check_group(group: object) -> str:
    """``group`` if it is a valid group name (1..256 bytes, no ``/``), else ValueError."""
    if not isinstance(group, str) or not group or "/" in group or len(group.encode()) > 256:
        raise ValueError(f"a group name is 1..256 bytes without '/': {group!r}")
    return group


class _Leave:
    """Watches a member and takes it out of its group when it stops."""

    __slots__ = ("group", "groups")

    def __init__(self, groups: Groups, group: str) -> None:
        self.groups = groups
        self.group = group

    def notify_terminated(self, ref: ActorRef, reason: str | None) -> None:
        self.groups.leave_now(self.group, ref)


class Groups:
    """One system's view of the groups and its own members' records."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.index: dict[str, dict[str, Registration]] = {}
        """group -> {registry name: registration}, from the registry's changes."""
        self._local: dict[str, dict[str, ActorRef]] = {}
        """group -> {registry name: ref} of this node's members (also local-only)."""
        self.counters = {"published": 0, "dropped": 0, "transfers": 0}
        self.routers: set[GroupRouterCell] = set()
        """The running group routers, told whenever a group's members may have changed."""

    # -- membership --------------------------------------------------------------------------

    def record_name(self, group: str, ref: ActorRef) -> str:
        """The registry name recording ``ref``'s membership of ``group``."""
        return f"{GROUP_PREFIX}{group}/{ref.node}/{actor_id(ref)}"

    def join(self, group: str, ref: ActorRef) -> None:
        """Add the local actor ``ref`` to ``group`` (it leaves when it stops)."""
        check_group(group)
        cell = self.system.local_cell(ref)
        if cell is None:
            raise ValueError(f"only a local actor can join a group here, not {ref}")
        name = self.record_name(group, ref)
        if name in self._local.get(group, {}):
            return
        self._local.setdefault(group, {})[name] = ref
        self._changed()
        cluster = self.system.cluster
        if cluster is not None:
            cluster.names.delegate.register(name, actor_id(ref))
        cell.add_watcher(_Leave(self, group))

    def leave_now(self, group: str, ref: ActorRef) -> None:
        """Take the local actor ``ref`` out of ``group`` and withdraw its record."""
        name = self.record_name(group, ref)
        members = self._local.get(group)
        if members is None or members.pop(name, None) is None:
            return
        if not members:
            del self._local[group]
        self._changed()
        cluster = self.system.cluster
        if cluster is not None:
            cluster.names.delegate.unregister(name)

    def _changed(self) -> None:
        for router in self.routers:
            router.stale()

    def members(self, group: str) -> list[ActorRef]:
        """Every member of ``group`` this node knows: its own first, then by node."""
        local = list(self._local.get(group, {}).values())
        cluster = self.system.cluster
        if cluster is None:
            return local
        others = []
        for registration in sorted(
            self.index.get(group, {}).values(), key=lambda r: (r.node, r.name)
        ):
            if registration.node != self.system.name:
                ref = cluster.names.ref_for(registration)
                if ref is not None:
                    others.append(ref)
        return local + others

    def follow(self, change: Change) -> None:
        """Keep the index in step with the registry (a Names change handler)."""
        if not change.name.startswith(GROUP_PREFIX):
            return
        group = change.name[len(GROUP_PREFIX) :].split("/", 1)[0]
        self._changed()
        if isinstance(change, NameAdded | NameChanged):
            registration = change.registration if isinstance(change, NameAdded) else change.new
            self.index.setdefault(group, {})[change.name] = registration
        elif isinstance(change, NameRemoved):
            members = self.index.get(group)
            if members is not None:
                members.pop(change.name, None)
                if not members:
                    del self.index[group]

    # -- pub/sub -------------------------------------------------------------------------------

    async def publish(self, topic: str, msg: Any) -> int:
        """Send ``msg`` to every subscriber of ``topic``: one transfer per other node
        holding subscribers.  Returns how many subscribers it was addressed to."""
        group = TOPIC_GROUP + topic
        check_group(group)
        encoded = encode_value(msg)  # an Unsendable message fails here, before any send
        self.counters["published"] += 1
        count = 0
        for ref in self._local.get(group, {}).values():
            count += self._tell_local(ref, msg)
        cluster = self.system.cluster
        if cluster is None:
            return count
        by_node: dict[str, list[str]] = {}
        for registration in self.index.get(group, {}).values():
            if registration.node != self.system.name:
                by_node.setdefault(registration.node, []).append(registration.actor_id)
        transport = cluster.transport
        for node, targets in sorted(by_node.items()):
            delivery = TopicDelivery(topic, encoded, sorted(targets))
            await transport.tell(RemoteTarget(transport, node, SYSTEM_PATH, 0), delivery, None)
            self.counters["transfers"] += 1
            count += len(targets)
        return count

    def deliver(self, delivery: TopicDelivery) -> None:
        """Hand another node's publish to the local subscribers it names."""
        try:
            msg = decode_value(delivery.value)
        except WireError as exc:
            log.info("undecodable publish on %r: %s", delivery.topic, exc)
            self.counters["dropped"] += len(delivery.targets)
            return
        members = self._local.get(TOPIC_GROUP + delivery.topic, {})
        by_id = {actor_id(ref): ref for ref in members.values()}
        for target in delivery.targets:
            ref = by_id.get(target)
            if ref is None:
                self.counters["dropped"] += 1
            else:
                self._tell_local(ref, msg)

    def _tell_local(self, ref: ActorRef, msg: Any) -> int:
        try:
            ref.tell_nowait(msg)
            return 1
        except ActorError:  # a full mailbox drops rather than stalls the publisher
            self.counters["dropped"] += 1
            return 0
