"""swimactors: SWIM membership, a gossip CRDT registry and trio actors for Python clusters."""

from .actors import (
    Actor,
    ActorError,
    ActorFailed,
    ActorRef,
    ActorStopped,
    AskTimeout,
    Context,
    MailboxFull,
    NameTaken,
    NodeDown,
    SystemFailed,
    Terminated,
    escalate,
    message,
    restart,
    resume,
    stop,
)
from .actors.transport import TransportConfig
from .split_brain import QuorumLost, SplitBrainConfig
from .system import Environment, System, open_system

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorError",
    "ActorFailed",
    "ActorRef",
    "ActorStopped",
    "AskTimeout",
    "Context",
    "Environment",
    "MailboxFull",
    "NameTaken",
    "NodeDown",
    "QuorumLost",
    "SplitBrainConfig",
    "System",
    "SystemFailed",
    "Terminated",
    "TransportConfig",
    "__version__",
    "escalate",
    "message",
    "open_system",
    "restart",
    "resume",
    "stop",
]
