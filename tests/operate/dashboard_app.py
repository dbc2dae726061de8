"""The agents' app in the dashboard's browser test: a grain kind hosted on every agent and
a group with a member on every agent."""

from __future__ import annotations

from typing import Any

import swimactors


class Visits(swimactors.Grain):
    async def receive(self, msg: Any, ctx: swimactors.Context) -> int:
        self.state = (self.state or 0) + 1
        return int(self.state)


class Worker(swimactors.Actor):
    async def receive(self, msg: Any, ctx: swimactors.Context) -> None:
        pass


async def setup(system: swimactors.System) -> None:
    system.register_grain("visits", Visits, idle_timeout=None)
    await system.join_group("workers", await system.spawn(Worker(), name="worker"))
