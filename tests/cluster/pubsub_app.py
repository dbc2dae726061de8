"""The agent app of ``test_pubsub_processes.py``: a public reader per node, subscribed to
``news``, answering ``"seen"`` with the numbers it received, in order."""

from __future__ import annotations

from typing import Any

import swimactors
from swimactors import Actor, message


@message("tests.pubsub.News")
class News:
    n: int


class Reader(Actor):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def receive(self, msg: Any, ctx: swimactors.Context) -> Any:
        if isinstance(msg, News):
            self.seen.append(msg.n)
            return None
        return self.seen


async def setup(system: swimactors.System) -> None:
    ref = await system.spawn(Reader(), name=f"reader-{system.name}", public=True)
    await system.subscribe("news", ref)
