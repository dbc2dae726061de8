"""The registry's change stream: what a node's view of the names did, and lost conflicts."""

from __future__ import annotations

import attrs

from .crdt import Registration

__all__ = ["Change", "NameAdded", "NameChanged", "NameLost", "NameRemoved"]


@attrs.frozen
class Change:
    """Base of every change: the name concerned."""

    name: str


@attrs.frozen
class NameAdded(Change):
    """The name now resolves (it had no registration before)."""

    registration: Registration


@attrs.frozen
class NameChanged(Change):
    """The name's winning registration changed (updated, re-registered, or a conflict)."""

    old: Registration
    new: Registration


@attrs.frozen
class NameRemoved(Change):
    """The name no longer resolves (unregistered, or its node went DOWN or LEFT)."""

    old: Registration


@attrs.frozen
class NameLost(Change):
    """This node holds ``lost`` but another node's ``winner`` ranks first for the name.

    Emitted only on the losing node, once per losing registration: the actor runtime
    should stop (or rename) the losing actor and unregister the name, as Erlang's
    ``global`` does after a netsplit.
    """

    lost: Registration
    winner: Registration
