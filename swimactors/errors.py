"""The root of every error swimactors raises, and its split by whose fault it is.

Catch :class:`SwimactorsError` for anything the library raises.  As in h11, a failure this
side caused (:class:`LocalProtocolError`: asked to send what the protocol cannot carry) is
a different type from one a peer caused (:class:`RemoteProtocolError`: it sent what the
protocol does not allow).  Each layer's errors derive from these.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "RemoteProtocolError", "SwimactorsError"]


class SwimactorsError(Exception):
    """Base class of every exception swimactors raises."""


class LocalProtocolError(SwimactorsError):
    """This side was asked to send something the protocol cannot carry; nothing was sent."""


class RemoteProtocolError(SwimactorsError):
    """A peer sent something the protocol does not allow; it was not acted on."""
