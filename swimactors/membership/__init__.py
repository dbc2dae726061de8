"""SWIM membership and failure detection, usable without any actor.

The protocol core (:class:`Swim`) is sans-IO; a driver feeds it packets and time.  The
trio driver (:func:`open_node`, :class:`Node`, its event subscriptions) loads on first
use, so importing the core does not import trio.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .config import Config, ConfigError
from .core import BroadcastTooLarge, FormedCluster, Swim
from .delegate import Delegate
from .meta import decode_meta, encode_meta
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
    format_address,
    parse_address,
)

if TYPE_CHECKING:
    from .blocking import BlockingNode, start_node
    from .events import EventsDropped, Subscription
    from .node import Node, open_node
    from .threaded import NodeClosed

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "BlockingNode": ".blocking",
        "EventsDropped": ".events",
        "Node": ".node",
        "NodeClosed": ".threaded",
        "Subscription": ".events",
        "open_node": ".node",
        "start_node": ".blocking",
    },
)

__all__ = [
    "Address",
    "BlockingNode",
    "BroadcastTooLarge",
    "Config",
    "ConfigError",
    "Delegate",
    "EventsDropped",
    "FormedCluster",
    "Member",
    "MemberAlive",
    "MemberConflict",
    "MemberDown",
    "MemberEvent",
    "MemberLeft",
    "MemberSuspect",
    "MemberUp",
    "MemberUpdated",
    "Node",
    "NodeClosed",
    "Packet",
    "Status",
    "Subscription",
    "Swim",
    "decode_meta",
    "encode_meta",
    "format_address",
    "open_node",
    "parse_address",
    "start_node",
]
