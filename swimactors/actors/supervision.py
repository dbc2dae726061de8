"""OTP-style supervision: what happens to an actor whose code raised.

A strategy is chosen per child when it is spawned:

- ``restart(max_restarts, within)`` - build a fresh instance from the factory and carry on
  with the rest of the mailbox; more than ``max_restarts`` restarts inside ``within``
  seconds escalates instead;
- ``stop()`` - stop the actor (its watchers see the error as the reason);
- ``escalate()`` - stop the actor and fail its parent with the same error;
- ``resume()`` - keep the instance and its state, drop the failing message, carry on.

``scope="all_for_one"`` (restart and stop) applies the decision to the failing actor's
siblings too, ``"rest_for_one"`` to the siblings spawned after it (OTP's strategies: a later
sibling may depend on an earlier one); the default ``"one_for_one"`` touches only the failing
actor.  :func:`by_error` picks one of those by the error's type (GoAkt's error-to-directive
mapping, Akka's decider).  A failure that escalates past the top-level actors stops the whole
system with :class:`SystemFailed`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Literal, TypeVar

import attrs

__all__ = [
    "DEFAULT_STRATEGY",
    "ByError",
    "Directive",
    "Escalate",
    "Restart",
    "RestartWindow",
    "Resume",
    "Scope",
    "Stop",
    "Strategy",
    "by_error",
    "check_strategy",
    "escalate",
    "restart",
    "resume",
    "stop",
]

_E = TypeVar("_E", bound=BaseException)
Scope = Literal["one_for_one", "all_for_one", "rest_for_one"]
_SCOPES = ("one_for_one", "all_for_one", "rest_for_one")


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


Directive = Restart | Stop | Escalate | Resume
"""What to do about one failure."""
_DIRECTIVES = (Restart, Stop, Escalate, Resume)


def _check_cases(
    instance: object,
    attribute: attrs.Attribute[tuple[tuple[type[BaseException], Directive], ...]],
    cases: tuple[tuple[type[BaseException], Directive], ...],
) -> None:
    for error_type, directive in cases:
        if not (isinstance(error_type, type) and issubclass(error_type, BaseException)):
            raise TypeError(f"by_error keys must be exception classes, not {error_type!r}")
        if not isinstance(directive, _DIRECTIVES):
            raise TypeError(
                f"by_error values must be restart/stop/escalate/resume, not {directive!r}"
            )


def _check_otherwise(
    instance: object, attribute: attrs.Attribute[Directive], value: Directive
) -> None:
    if not isinstance(value, _DIRECTIVES):
        raise TypeError(f"otherwise must be restart/stop/escalate/resume, not {value!r}")


@attrs.frozen
class ByError:
    """A directive per error type (see :func:`by_error`): the first case whose type the
    error is an instance of, as ``except`` clauses are tried, else ``otherwise``."""

    cases: tuple[tuple[type[BaseException], Directive], ...] = attrs.field(validator=_check_cases)
    otherwise: Directive = attrs.field(validator=_check_otherwise)

    def directive_for(self, error: BaseException) -> Directive:
        """The directive that applies to ``error``."""
        for error_type, directive in self.cases:
            if isinstance(error, error_type):
                return directive
        return self.otherwise


Strategy = Directive | ByError


def restart(max_restarts: int = 3, within: float = 5.0, *, scope: Scope = "one_for_one") -> Restart:
    """Restart on failure, at most ``max_restarts`` times in any ``within`` seconds."""
    return Restart(max_restarts, within, scope)


def stop(*, scope: Scope = "one_for_one") -> Stop:
    """Stop the failing actor (and with ``all_for_one`` its siblings, with
    ``rest_for_one`` the siblings spawned after it)."""
    return Stop(scope)


def escalate() -> Escalate:
    """Stop the failing actor and fail its parent with the same error."""
    return Escalate()


def resume() -> Resume:
    """Drop the failing message and keep going with the same instance."""
    return Resume()


def by_error(cases: Mapping[type[_E], Directive], otherwise: Directive | None = None) -> ByError:
    """Choose the directive by the error's type: ``cases`` are tried in order, as
    ``except`` clauses are; an error none matches gets ``otherwise`` (default: ``restart()``).

    ``by_error({ConnectionError: restart(5, 10.0), ValueError: resume()}, otherwise=stop())``
    """
    return ByError(tuple(cases.items()), Restart() if otherwise is None else otherwise)


def check_strategy(strategy: object) -> None:
    """Refuse anything that is not a strategy at spawn, not at the first failure."""
    if not isinstance(strategy, (*_DIRECTIVES, ByError)):
        raise TypeError(
            f"supervision must be restart(), stop(), escalate(), resume() or by_error(...), "
            f"not {strategy!r}"
        )


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
