"""SWIM membership and failure detection, usable without any actor.

The protocol core (:class:`Swim`) is sans-IO; a driver feeds it packets and time.
"""

from .blocking import BlockingNode, start_node
from .config import Config, ConfigError
from .core import BroadcastTooLarge, FormedCluster, Swim
from .delegate import Delegate
from .events import EventsDropped, Subscription
from .meta import decode_meta, encode_meta
from .node import Node, open_node
from .threaded import NodeClosed
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
