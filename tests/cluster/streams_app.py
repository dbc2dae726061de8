"""The agent app of ``test_streams_processes.py``: a public ``source-<node>`` answering
``"ticks"`` with an endless stream of numbers and ``"state"`` with how many of its streams
are open and how many were closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

import swimactors
from swimactors import Actor


class Source(Actor):
    def __init__(self) -> None:
        self.open = 0
        self.closed = 0

    def receive(self, msg: Any, ctx: swimactors.Context) -> Any:
        if msg == "state":
            return {"open": self.open, "closed": self.closed}
        return self.ticks()

    async def ticks(self) -> AsyncIterator[int]:
        self.open += 1
        try:
            n = 0
            while True:
                yield n
                n += 1
                await trio.sleep(0.001)
        finally:
            self.open -= 1
            self.closed += 1


async def setup(system: swimactors.System) -> None:
    await system.spawn(Source(), name=f"source-{system.name}", public=True)
