"""Named random sub-streams derived from one seed.

Each consumer (the network, the fault schedule, every node, every link rule) draws from
its own ``random.Random`` seeded by a hash of ``(seed, name)``, so adding one fault or one
node never shifts the draws of anything else: runs stay comparable across small edits.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["Streams", "derive_seed"]


def derive_seed(seed: int, name: str) -> int:
    """A 64-bit seed for the sub-stream ``name`` of ``seed`` (stable across processes)."""
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Streams:
    """The sub-streams of one run, created on first use and cached by name."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, random.Random] = {}
        self._generations: dict[str, int] = {}

    def get(self, name: str) -> random.Random:
        """The stream called ``name`` (the same object on every call)."""
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = random.Random(derive_seed(self.seed, name))
        return stream

    def fresh(self, name: str) -> random.Random:
        """A new stream for ``name`` each call (for a restarted node's fresh core)."""
        generation = self._generations[name] = self._generations.get(name, 0) + 1
        return self.get(f"{name}#{generation}")
