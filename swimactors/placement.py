"""Where an identity lives: pure placement functions over the nodes that may host it.

The default, *rendezvous* (highest random weight) hashing, ranks every candidate node by a
hash of ``(node, identity)`` and picks the highest: every node computes the same owner from
the same candidates, and a membership change moves only the identities whose best node
came or went, about ``1/N`` of them (Thaler and Ravishankar, 1998).  *local*, *random* and
*least-loaded* are GoAkt's other placements.  No I/O, no clock; randomness is passed in.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Iterable, Mapping
from enum import Enum

__all__ = ["Placement", "moved", "owners", "place", "rendezvous", "score"]


class Placement(Enum):
    """Which candidate node an identity's grain is placed on."""

    RENDEZVOUS = "rendezvous"
    """The highest-scoring candidate for the identity: stable, ~1/N moves on a change."""
    LOCAL = "local"
    """The asking node, if it is a candidate."""
    RANDOM = "random"
    """Any candidate, uniformly."""
    LEAST_LOADED = "least-loaded"
    """The candidate with the smallest load (ties: rendezvous order)."""


def score(node: str, identity: str) -> int:
    """The 64-bit rendezvous weight of ``identity`` on ``node`` (stable across processes)."""
    digest = hashlib.blake2b(
        node.encode() + b"\0" + identity.encode(), digest_size=8, person=b"swimactors"
    ).digest()
    return int.from_bytes(digest, "big")


def rendezvous(identity: str, candidates: Iterable[str]) -> str | None:
    """The candidate with the highest weight for ``identity`` (None if there are none)."""
    return max(candidates, key=lambda node: (score(node, identity), node), default=None)


def place(
    identity: str,
    candidates: Collection[str],
    placement: Placement = Placement.RENDEZVOUS,
    *,
    local: str | None = None,
    rng: random.Random | None = None,
    loads: Mapping[str, int] | None = None,
) -> str | None:
    """The node ``identity`` should activate on, among ``candidates`` (None: nowhere).

    ``local`` names the asking node (for LOCAL), ``rng`` draws for RANDOM, ``loads`` gives
    each candidate's load for LEAST_LOADED (missing: 0).
    """
    if not candidates:
        return None
    match placement:
        case Placement.RENDEZVOUS:
            return rendezvous(identity, candidates)
        case Placement.LOCAL:
            return local if local in candidates else None
        case Placement.RANDOM:
            return (rng or random.Random()).choice(sorted(candidates))
        case Placement.LEAST_LOADED:
            load = loads or {}
            return min(candidates, key=lambda n: (load.get(n, 0), -score(n, identity), n))
    raise ValueError(f"unknown placement {placement!r}")


def owners(identities: Iterable[str], candidates: Collection[str]) -> dict[str, str | None]:
    """The rendezvous owner of each identity."""
    return {identity: rendezvous(identity, candidates) for identity in identities}


def moved(identities: Iterable[str], before: Collection[str], after: Collection[str]) -> set[str]:
    """The identities whose rendezvous owner differs between two candidate sets."""
    return {i for i in identities if rendezvous(i, before) != rendezvous(i, after)}
