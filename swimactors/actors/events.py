"""Lifecycle events of a node's actors, read with ``system.events()``.

Besides these, a subscription yields each :class:`~swimactors.actors.DeadLetter`, and on a
cluster system membership's member events, :class:`~swimactors.NameLost` and
:class:`~swimactors.QuorumChanged`.  Publishing costs nothing without subscribers and never
blocks: a subscriber that falls behind loses the oldest events and then reads an
:class:`~swimactors.membership.EventsDropped` saying how many.
"""

from __future__ import annotations

import attrs

from .ref import ActorRef

__all__ = ["ActorExited", "ActorRestarted", "ActorStarted"]


@attrs.frozen
class ActorStarted:
    """``ref`` started (its ``on_start`` has run)."""

    ref: ActorRef


@attrs.frozen
class ActorRestarted:
    """``ref`` was rebuilt by its supervisor after failing with ``reason``."""

    ref: ActorRef
    reason: str


@attrs.frozen
class ActorExited:
    """``ref`` stopped: ``reason`` None for a normal stop, else why it failed."""

    ref: ActorRef
    reason: str | None
