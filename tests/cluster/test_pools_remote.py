"""A pool's ref works from another node: each message goes straight to a routee there."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import swimactors
from swimactors import Actor, Context

from .cluster_helpers import open_systems


class Worker(Actor):
    def receive(self, msg: Any, ctx: Context) -> str:
        return ctx.self_ref.path.rsplit("/", 1)[1]


class SlowWorker(Actor):
    """An ``async def`` routee: a remote ask to it cannot be answered at once."""

    async def receive(self, msg: Any, ctx: Context) -> str:
        await trio.lowlevel.checkpoint()
        return ctx.self_ref.path.rsplit("/", 1)[1]


class Holder(Actor):
    """Hands out the ref it holds (a pool's, here)."""

    def __init__(self, ref: swimactors.ActorRef) -> None:
        self.ref = ref

    def receive(self, msg: Any, ctx: Context) -> swimactors.ActorRef:
        return self.ref


@pytest.mark.parametrize("worker", [Worker, SlowWorker])
async def test_a_pool_answers_round_robin_from_another_node(worker: type[Actor]) -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            pool = await b.spawn_pool(worker, size=3, name="pool")
            await b.spawn(Holder(pool), name="holder", public=True)
            holder = await a.wait_for("holder", timeout=10)
            remote_pool = await holder.ask("which")
            assert remote_pool == pool and remote_pool.node == "n1"
            assert [await remote_pool.ask(n) for n in range(6)] == ["0", "1", "2"] * 2
