"""Errors raised by the actor runtime to callers of refs and systems."""

from __future__ import annotations

import traceback

from ..errors import LocalProtocolError, RemoteProtocolError, SwimactorsError

__all__ = [
    "ActorError",
    "ActorFailed",
    "ActorStopped",
    "AskTimeout",
    "BadCall",
    "BadReply",
    "MailboxFull",
    "NameTaken",
    "NodeDown",
    "SystemFailed",
    "UndecodableReply",
    "Unsendable",
]


class ActorError(SwimactorsError):
    """Base class of every error the actor runtime raises."""


class MailboxFull(ActorError):
    """The recipient's bounded mailbox (or, on another node, the connection's credit) had
    no room: at once for ``tell_nowait``, within its timeout for an ``ask``.  The message
    was not taken."""


class AskTimeout(ActorError, TimeoutError):
    """No reply arrived within the ask's timeout (a reply arriving later is dropped)."""


class ActorStopped(ActorError):
    """The recipient was stopped, or stopped before it answered."""


class NodeDown(ActorError):
    """The recipient's node went DOWN or LEFT, or its connection broke, before it answered.

    Pending asks fail with it at once instead of waiting for their timeout.
    """


class Unsendable(ActorError, LocalProtocolError, TypeError):
    """A message or reply has no wire form (neither plain data nor a ``@message``), so it
    cannot go to another node; nothing was sent."""


class UndecodableReply(ActorError, RemoteProtocolError):
    """The other node's reply to an ask did not decode (an unknown ``@message`` tag, a
    malformed value): the peer broke the protocol, or runs other message types."""


class BadCall(ActorError, LocalProtocolError, TypeError):
    """A proxy call whose arguments do not fit the method (its signature or the types its
    annotations declare); nothing was sent."""


class BadReply(ActorError, TypeError):
    """A proxy call's answer is not what the method declares: the actor's method returned
    a value its annotation refuses (the actor carries on), or the actor behind the ref is
    not of the proxy's class."""


class NameTaken(ActorError, ValueError):
    """A spawn asked for a name another live actor already holds."""


class SystemFailed(ActorError):
    """A failure escalated past the top-level actors and stopped the system.

    The original exception is the ``__cause__``.
    """


class ActorFailed(ActorError):
    """The recipient's ``receive`` raised while handling an ask.

    Carries the remote exception as text (type name, message, traceback) so it can cross a
    process boundary without pickling.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str = "") -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback_text

    @classmethod
    def from_exception(cls, exc: BaseException) -> ActorFailed:
        """The failure ``exc`` as it crosses to the asker: its type, message and traceback."""
        text = "".join(traceback.format_exception(exc))
        return cls(type(exc).__qualname__, str(exc), text)


def describe(exc: BaseException) -> str:
    """One line naming an exception, as used in ``Terminated.reason``."""
    message = str(exc)
    return f"{type(exc).__qualname__}: {message}" if message else type(exc).__qualname__
