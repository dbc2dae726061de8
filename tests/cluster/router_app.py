"""The agent app of ``test_group_router_processes.py``: two workers per node in the group
``workers``, each answering with its node's name."""

from __future__ import annotations

from typing import Any

import swimactors
from swimactors import Actor


class Worker(Actor):
    def receive(self, msg: Any, ctx: swimactors.Context) -> str:
        return ctx.self_ref.node


async def setup(system: swimactors.System) -> None:
    for _ in range(2):
        await system.join_group("workers", await system.spawn(Worker))
