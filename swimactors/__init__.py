"""swimactors: SWIM membership, a gossip CRDT registry and trio actors for Python clusters.

The names below are the cluster user's API, each importable from here and from nowhere
else public.  They load on first use, so ``import swimactors.membership`` (a sans-IO
core) does not pull in trio or the actor runtime.  Layers usable alone have their own
namespaces: :mod:`swimactors.membership`, :mod:`swimactors.registry`,
:mod:`swimactors.quorum`, :mod:`swimactors.actors` (the local runtime's extras),
:mod:`swimactors.ddata` (replicated data types),
:mod:`swimactors.sim` and :mod:`swimactors.wire`.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .errors import LocalProtocolError, RemoteProtocolError, SwimactorsError

if TYPE_CHECKING:
    from .actors.actor import Actor
    from .actors.context import Context
    from .actors.errors import (
        ActorError,
        ActorFailed,
        ActorStopped,
        AskTimeout,
        BadCall,
        BadReply,
        MailboxFull,
        NameTaken,
        NodeDown,
        SystemFailed,
        UndecodableReply,
        Unsendable,
    )
    from .actors.events import ActorExited, ActorRestarted, ActorStarted
    from .actors.mailbox import Mailbox
    from .actors.message import ReceiveTimeout, Terminated, message
    from .actors.pipes import PipeFailed
    from .actors.proxy import as_actor
    from .actors.ref import ActorRef
    from .actors.streams import ReplyStream, StreamFeed, StreamFinished
    from .actors.supervision import by_error, escalate, restart, resume, stop
    from .actors.transport import TransportConfig
    from .cluster.ddata import Consistency, ConsistencyError, DataChanged
    from .cluster.grain_store import (
        DataGrainStore,
        GrainStore,
        MemoryGrainStore,
        SQLiteGrainStore,
    )
    from .cluster.grains import Grain, GrainContext, NoGrainHost
    from .cluster.names import NameLost
    from .cluster.split_brain import QuorumChanged, QuorumLost, SplitBrainConfig
    from .cluster.system import Environment, System, open_system
    from .placement import Placement

__version__ = "0.1.0"

_WHERE = {
    "Actor": ".actors.actor",
    "ActorError": ".actors.errors",
    "ActorFailed": ".actors.errors",
    "ActorRef": ".actors.ref",
    "ActorStopped": ".actors.errors",
    "ActorExited": ".actors.events",
    "ActorRestarted": ".actors.events",
    "ActorStarted": ".actors.events",
    "AskTimeout": ".actors.errors",
    "BadCall": ".actors.errors",
    "BadReply": ".actors.errors",
    "Consistency": ".cluster.ddata",
    "ConsistencyError": ".cluster.ddata",
    "Context": ".actors.context",
    "DataChanged": ".cluster.ddata",
    "DataGrainStore": ".cluster.grain_store",
    "Environment": ".cluster.system",
    "Grain": ".cluster.grains",
    "GrainContext": ".cluster.grains",
    "GrainStore": ".cluster.grain_store",
    "Mailbox": ".actors.mailbox",
    "MailboxFull": ".actors.errors",
    "MemoryGrainStore": ".cluster.grain_store",
    "NameLost": ".cluster.names",
    "NameTaken": ".actors.errors",
    "NoGrainHost": ".cluster.grains",
    "NodeDown": ".actors.errors",
    "PipeFailed": ".actors.pipes",
    "Placement": ".placement",
    "QuorumChanged": ".cluster.split_brain",
    "QuorumLost": ".cluster.split_brain",
    "ReceiveTimeout": ".actors.message",
    "ReplyStream": ".actors.streams",
    "SQLiteGrainStore": ".cluster.grain_store",
    "SplitBrainConfig": ".cluster.split_brain",
    "StreamFeed": ".actors.streams",
    "StreamFinished": ".actors.streams",
    "System": ".cluster.system",
    "SystemFailed": ".actors.errors",
    "Terminated": ".actors.message",
    "TransportConfig": ".actors.transport",
    "UndecodableReply": ".actors.errors",
    "Unsendable": ".actors.errors",
    "as_actor": ".actors.proxy",
    "by_error": ".actors.supervision",
    "escalate": ".actors.supervision",
    "message": ".actors.message",
    "open_system": ".cluster.system",
    "restart": ".actors.supervision",
    "resume": ".actors.supervision",
    "stop": ".actors.supervision",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _WHERE)

__all__ = [
    "Actor",
    "ActorError",
    "ActorExited",
    "ActorFailed",
    "ActorRef",
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "AskTimeout",
    "BadCall",
    "BadReply",
    "Consistency",
    "ConsistencyError",
    "Context",
    "DataChanged",
    "DataGrainStore",
    "Environment",
    "Grain",
    "GrainContext",
    "GrainStore",
    "LocalProtocolError",
    "Mailbox",
    "MailboxFull",
    "MemoryGrainStore",
    "NameLost",
    "NameTaken",
    "NoGrainHost",
    "NodeDown",
    "PipeFailed",
    "Placement",
    "QuorumChanged",
    "QuorumLost",
    "ReceiveTimeout",
    "RemoteProtocolError",
    "ReplyStream",
    "SQLiteGrainStore",
    "SplitBrainConfig",
    "StreamFeed",
    "StreamFinished",
    "SwimactorsError",
    "System",
    "SystemFailed",
    "Terminated",
    "TransportConfig",
    "UndecodableReply",
    "Unsendable",
    "__version__",
    "as_actor",
    "by_error",
    "escalate",
    "message",
    "open_system",
    "restart",
    "resume",
    "stop",
]
