"""The local trio actor runtime: it knows nothing of clusters.

Actors, refs, mailboxes, supervision, death watch and timers run in a
:class:`LocalSystem` (:func:`open_runtime`); :mod:`.protocol` and :mod:`.transport` carry
actor messages between nodes.  The names every application uses (``Actor``, ``ActorRef``,
``message``, the errors) are exported from :mod:`swimactors`; this namespace adds the
runtime's own (dead letters, counters, strategies, timers, the message registry).
"""

from .context import Timer
from .message import MESSAGES
from .observe import DeadLetter, DeadLetters, Stats
from .runtime import ActorSource, LocalSystem, open_runtime
from .supervision import Escalate, Restart, Resume, Stop, Strategy

__all__ = [
    "MESSAGES",
    "ActorSource",
    "DeadLetter",
    "DeadLetters",
    "Escalate",
    "LocalSystem",
    "Restart",
    "Resume",
    "Stats",
    "Stop",
    "Strategy",
    "Timer",
    "open_runtime",
]
