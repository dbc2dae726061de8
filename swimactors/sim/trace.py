"""The run's trace: a running hash of every event, optionally the records themselves.

Two runs with the same seed and scenario produce the same hash; when they do not,
keeping the records (``keep=True``) lets :func:`first_divergence` name the first event
where the runs part.
"""

from __future__ import annotations

import hashlib

__all__ = ["Trace", "first_divergence"]


class Trace:
    """Feeds ``(time, text, payload)`` records into a BLAKE2b hash."""

    def __init__(self, keep: bool = False, max_records: int = 2_000_000) -> None:
        self._hash = hashlib.blake2b(digest_size=16)
        self.keep = keep
        self.max_records = max_records
        self.records: list[str] = []
        self.count = 0

    def record(self, time: float, text: str, payload: bytes = b"") -> None:
        """Add one event; ``payload`` (packet bytes) is hashed but not kept."""
        line = f"{time!r} {text}"
        self._hash.update(line.encode())
        if payload:
            self._hash.update(payload)
        self.count += 1
        if self.keep and len(self.records) < self.max_records:
            if payload:
                line += " #" + hashlib.blake2b(payload, digest_size=4).hexdigest()
            self.records.append(line)

    @property
    def hash(self) -> str:
        """Hex digest of everything recorded so far."""
        return self._hash.hexdigest()


def first_divergence(a: list[str], b: list[str]) -> tuple[int, str | None, str | None] | None:
    """Index and records of the first difference between two kept traces, or None."""
    for index, (left, right) in enumerate(zip(a, b, strict=False)):
        if left != right:
            return index, left, right
    if len(a) != len(b):
        index = min(len(a), len(b))
        return index, a[index] if index < len(a) else None, b[index] if index < len(b) else None
    return None
