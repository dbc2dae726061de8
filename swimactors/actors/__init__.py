"""The trio actor runtime: actors, refs, mailboxes, supervision and death watch."""

from .actor import Actor
from .context import Context, Timer
from .errors import (
    ActorError,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    NameTaken,
    NodeDown,
    SystemFailed,
)
from .message import MESSAGES, Terminated, message
from .observe import DeadLetter, DeadLetters, Stats
from .ref import ActorRef
from .supervision import Escalate, Restart, Resume, Stop, Strategy, escalate, restart, resume, stop

__all__ = [
    "MESSAGES",
    "Actor",
    "ActorError",
    "ActorFailed",
    "ActorRef",
    "ActorStopped",
    "AskTimeout",
    "Context",
    "DeadLetter",
    "DeadLetters",
    "Escalate",
    "MailboxFull",
    "NameTaken",
    "NodeDown",
    "Restart",
    "Resume",
    "Stats",
    "Stop",
    "Strategy",
    "SystemFailed",
    "Terminated",
    "Timer",
    "escalate",
    "message",
    "restart",
    "resume",
    "stop",
]
