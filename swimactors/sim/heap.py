"""Garbage collection tuned for simulations that hold millions of long-lived objects."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["relaxed_gc"]


@contextlib.contextmanager
def relaxed_gc(threshold: int = 100_000) -> Iterator[None]:
    """Run young-generation collections every ``threshold`` allocations and full ones
    rarely, restoring the thresholds after: a simulated cluster of thousands of nodes
    keeps millions of member records alive, which CPython's default thresholds re-scan
    over and over (2.5 times the run time at 3,000 nodes)."""
    previous = gc.get_threshold()
    gc.set_threshold(threshold, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
