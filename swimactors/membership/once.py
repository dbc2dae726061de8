"""A warning logged once per peer host, for what a peer keeps doing (another cluster's
packets, refused certificates): by host, as its TCP connections come from ever new ports."""

from __future__ import annotations

import logging

from .types import Address, format_address

__all__ = ["OncePerPeer"]

_MAX_LOGGED_PEERS = 1024


class OncePerPeer:
    """Logs a warning the first time each peer host (up to a bound) does something: by host,
    because its TCP connections come from ever new ports."""

    def __init__(self, what: str, log: logging.Logger) -> None:
        self._what = what
        self._log = log
        self._seen: set[str] = set()

    def __call__(self, peer: Address, detail: str) -> None:
        if peer[0] in self._seen or len(self._seen) > _MAX_LOGGED_PEERS:
            return
        self._seen.add(peer[0])
        more = "; further peers not logged" if len(self._seen) > _MAX_LOGGED_PEERS else ""
        self._log.warning("%s from %s (%s)%s", self._what, format_address(peer), detail, more)
