"""Two actor systems on loopback, x with a public ``echo`` actor, y knowing x as a live
member (the registry may carry the name before membership has x up)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

import swimactors
from swimactors.membership.types import format_address
from tests.network.fast import CONFIG


class Echo(swimactors.Actor):
    async def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return msg


@asynccontextmanager
async def open_pair() -> AsyncIterator[tuple[swimactors.System, swimactors.System]]:
    async with (
        swimactors.open_system("x", bind="127.0.0.1:0", config=CONFIG) as x,
        swimactors.open_system(
            "y", bind="127.0.0.1:0", seeds=[format_address(x.cluster.node.address)], config=CONFIG
        ) as y,
    ):
        await x.spawn(Echo, name="echo", public=True)
        with trio.fail_after(20):
            while (seen := y.cluster.node.member("x")) is None or not seen.status.is_alive:
                await trio.sleep(0.01)
            await y.wait_for("echo", timeout=20)
        yield x, y
