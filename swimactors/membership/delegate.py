"""The hook by which a layer above rides on membership gossip (memberlist's Delegate).

A delegate registered on a channel gets that channel's piggybacked payloads, contributes
its state to every push/pull and merges the peer's, and sees every membership event, so a
CRDT such as the registry converges through gossip and prunes nodes that go DOWN.  All
calls are synchronous and made from inside the core's own input methods (sans-IO).
"""

from __future__ import annotations

from .types import MemberEvent

__all__ = ["Delegate"]


class Delegate:
    """Override what you need; every hook defaults to doing nothing."""

    def notify_message(self, payload: bytes, now: float) -> None:
        """A broadcast on this channel arrived (possibly a duplicate: be idempotent)."""

    def local_state(self, join: bool) -> bytes:
        """This node's full state for a push/pull (``join``: the peer is new)."""
        return b""

    def merge_remote_state(self, data: bytes, join: bool, now: float) -> None:
        """Merge a peer's full state received in a push/pull."""

    def on_member_event(self, event: MemberEvent) -> None:
        """A membership event happened in this node's view (MemberDown, MemberLeft, ...)."""
