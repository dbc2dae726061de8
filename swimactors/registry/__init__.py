"""The distributed actor registry: a delta-state CRDT from name to registrations.

``Registry`` is one node's sans-IO replica; ``RegistryDelegate`` carries its deltas and
full state on SWIM gossip.  See docs/registry.md.
"""

from .changes import Change, NameAdded, NameChanged, NameLost, NameRemoved
from .codec import RegistryDecodeError, decode, encode, split
from .crdt import Registration, State
from .delegate import CHANNEL, RegistryDelegate
from .registry import Registry, RegistryError

__all__ = [
    "CHANNEL",
    "Change",
    "NameAdded",
    "NameChanged",
    "NameLost",
    "NameRemoved",
    "Registration",
    "Registry",
    "RegistryDecodeError",
    "RegistryDelegate",
    "RegistryError",
    "State",
    "decode",
    "encode",
    "split",
]
