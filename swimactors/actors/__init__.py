"""The local trio actor runtime: it knows nothing of clusters.

Actors, refs, mailboxes, supervision, death watch and timers run in a
:class:`LocalSystem` (:func:`open_runtime`); :mod:`.protocol` and :mod:`.transport` carry
actor messages between nodes.  The names every application uses (``Actor``, ``ActorRef``,
``message``, the errors) are exported from :mod:`swimactors`; this namespace adds the
runtime's own (dead letters, counters, strategies, timers, the message registry).  They
load on first use, so the sans-IO :mod:`.protocol` can be imported without trio.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .context import Timer
    from .message import MESSAGES
    from .observe import DeadLetter, DeadLetters, Stats
    from .pipes import Pipe
    from .runtime import ActorSource, LocalSystem, open_runtime
    from .supervision import ByError, Directive, Escalate, Restart, Resume, Stop, Strategy

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "MESSAGES": ".message",
        "ActorSource": ".runtime",
        "ByError": ".supervision",
        "DeadLetter": ".observe",
        "DeadLetters": ".observe",
        "Directive": ".supervision",
        "Escalate": ".supervision",
        "LocalSystem": ".runtime",
        "Pipe": ".pipes",
        "Restart": ".supervision",
        "Resume": ".supervision",
        "Stats": ".observe",
        "Stop": ".supervision",
        "Strategy": ".supervision",
        "Timer": ".context",
        "open_runtime": ".runtime",
    },
)

__all__ = [
    "MESSAGES",
    "ActorSource",
    "ByError",
    "DeadLetter",
    "DeadLetters",
    "Directive",
    "Escalate",
    "LocalSystem",
    "Pipe",
    "Restart",
    "Resume",
    "Stats",
    "Stop",
    "Strategy",
    "Timer",
    "open_runtime",
]
