"""OTP-style supervision: what happens to an actor whose code raised.

A strategy is chosen per child when it is spawned:

- ``restart(max_restarts, within)`` - build a fresh instance from the factory and carry on
  with the rest of the mailbox; more than ``max_restarts`` restarts inside ``within``
  seconds escalates instead;
- ``stop()`` - stop the actor (its watchers see the error as the reason);
- ``escalate()`` - stop the actor and fail its parent with the same error;
- ``resume()`` - keep the instance and its state, drop the failing message, carry on.

``scope="all_for_one"`` (restart and stop) applies the decision to the failing actor's
siblings too; the default ``"one_for_one"`` touches only the failing actor.  A failure that
escalates past the top-level actors stops the whole system with :class:`SystemFailed`.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import attrs

__all__ = [
    "DEFAULT_STRATEGY",
    "Escalate",
    "Restart",
    "RestartWindow",
    "Resume",
    "Scope",
    "Stop",
    "Strategy",
    "escalate",
    "restart",
    "resume",
    "stop",
]

Scope = Literal["one_for_one", "all_for_one"]
_SCOPES = ("one_for_one", "all_for_one")


def _check_scope(instance: object, attribute: attrs.Attribute[Scope], value: Scope) -> None:
    if value not in _SCOPES:
        raise ValueError(f"scope must be one of {_SCOPES}, not {value!r}")


@attrs.frozen
class Restart:
    """Rebuild the failing actor (see :func:`restart`); more than ``max_restarts`` in
    ``within`` seconds escalates."""

    max_restarts: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    within: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    scope: Scope = attrs.field(default="one_for_one", validator=_check_scope)


@attrs.frozen
class Stop:
    """Stop the failing actor (see :func:`stop`)."""

    scope: Scope = attrs.field(default="one_for_one", validator=_check_scope)


@attrs.frozen
class Escalate:
    """Stop the failing actor and fail its parent with its error (see :func:`escalate`)."""


@attrs.frozen
class Resume:
    """Keep the instance, drop the message that failed (see :func:`resume`)."""


Strategy = Restart | Stop | Escalate | Resume


def restart(max_restarts: int = 3, within: float = 5.0, *, scope: Scope = "one_for_one") -> Restart:
    """Restart on failure, at most ``max_restarts`` times in any ``within`` seconds."""
    return Restart(max_restarts, within, scope)


def stop(*, scope: Scope = "one_for_one") -> Stop:
    """Stop the failing actor (and with ``all_for_one`` its siblings)."""
    return Stop(scope)


def escalate() -> Escalate:
    """Stop the failing actor and fail its parent with the same error."""
    return Escalate()


def resume() -> Resume:
    """Drop the failing message and keep going with the same instance."""
    return Resume()


DEFAULT_STRATEGY: Strategy = Restart()
"""Used when a spawn names no strategy: three restarts in five seconds, one-for-one."""


class RestartWindow:
    """Restart times inside the sliding window; says when the intensity is exceeded."""

    __slots__ = ("_times", "max_restarts", "within")

    def __init__(self, max_restarts: int, within: float) -> None:
        self.max_restarts = max_restarts
        self.within = within
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Record a restart at ``now`` if the budget has room; False means escalate."""
        times = self._times
        while times and times[0] <= now - self.within:
            times.popleft()
        if len(times) >= self.max_restarts:
            return False
        times.append(now)
        return True
