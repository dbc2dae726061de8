"""Distributed data: replicated CRDT values under keys, on the registry's delta machinery.

GCounter, PNCounter, ORSet, LWWRegister, LWWMap and Flag are join-semilattices whose
mutators return deltas; :class:`DataStore` is one node's sans-IO replica of every key and
:class:`DataDelegate` carries its deltas and full state on SWIM gossip.  See docs/ddata.md.
"""

from .base import DataError, DataTypeError, ReplicatedData, Writer
from .codec import DataDecodeError, decode_data, decode_entries, encode_data, encode_entries
from .counters import GCounter, PNCounter
from .delegate import CHANNEL, DataDelegate
from .lww import Flag, LWWMap, LWWRegister
from .orset import ORSet
from .store import DATA_TYPES, DataStore, Entries, KeyChanged

__all__ = [
    "CHANNEL",
    "DATA_TYPES",
    "DataDecodeError",
    "DataDelegate",
    "DataError",
    "DataStore",
    "DataTypeError",
    "Entries",
    "Flag",
    "GCounter",
    "KeyChanged",
    "LWWMap",
    "LWWRegister",
    "ORSet",
    "PNCounter",
    "ReplicatedData",
    "Writer",
    "decode_data",
    "decode_entries",
    "encode_data",
    "encode_entries",
]
