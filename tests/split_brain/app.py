"""The ``--app`` of the split-brain network test: every agent can re-create the counter,
and agent HOLDER starts it as a singleton."""

from __future__ import annotations

from swimactors import System
from swimactors.demo import Counter

HOLDER = "h5"


async def setup(system: System) -> None:
    system.register_spawnable("counter", Counter)
    if system.name == HOLDER:
        await system.spawn("counter", name="counter", singleton=True)
