"""Each example program, run briefly on a few in-process nodes (real loopback sockets)."""

from __future__ import annotations

import trio

from examples import chat, counter, kv

from .cluster_helpers import open_systems, until


async def test_counter_is_shared_by_every_node() -> None:
    with trio.fail_after(30):
        async with open_systems(3) as systems:
            for system in systems[:2]:
                await counter.setup(system)
            holders = [s.name for s in systems if s.local_cell_at("counter", 1) is not None]
            assert holders == ["n0"]  # n1 found n0's counter and held none
            assert await counter.call(systems[2], "increment", 5) == 5
            assert await counter.call(systems[1], "increment", 2) == 7
            assert await counter.call(systems[0], "get") == 7
            ref = await systems[2].wait_for("counter", timeout=5)
            assert await ref.ask(counter.Add(1)) == 8  # the same calls as plain messages
            assert await ref.ask(counter.Get()) == 8


async def test_chat_broadcasts_to_remote_sessions_and_reports_leavers() -> None:
    seen: dict[str, list[str]] = {"ann": [], "bob": []}
    with trio.fail_after(30):
        async with open_systems(3) as (a, b, c):
            await chat.setup(a)
            room, _, present = await chat.join(b, "ann", lambda line: seen["ann"].append(_t(line)))
            assert present == ["ann"]
            _, bob, present = await chat.join(c, "bob", lambda line: seen["bob"].append(_t(line)))
            assert present == ["ann", "bob"]
            await room.tell(chat.Say("ann", "hello"))
            await until(lambda: "ann: hello" in seen["bob"] and "ann: hello" in seen["ann"])
            await c.stop(bob)
            await until(lambda: "*: bob left" in seen["ann"])
            assert seen["ann"] == ["*: ann joined", "*: bob joined", "ann: hello", "*: bob left"]


def _t(line: chat.Line) -> str:
    return f"{line.user}: {line.text}"


async def test_kv_writes_at_majority_and_every_node_reads_the_values() -> None:
    with trio.fail_after(30):
        async with open_systems(3) as systems:
            for system in systems:
                await kv.setup(system)
            for key in ("colour", "shape", "size"):
                await kv.put(systems[1], key, key.upper())
            for system in systems:
                assert [await kv.get(system, k) for k in ("colour", "shape", "size")] == [
                    "COLOUR",
                    "SHAPE",
                    "SIZE",
                ]
            assert await kv.get(systems[2], "missing") is None
            assert await kv.command(systems[0], "set k v") == "ok"
            assert await kv.command(systems[2], "get k") == "v"
            assert "n1" in await kv.command(systems[0], "members")
            assert (await kv.command(systems[0], "bogus")).startswith("commands:")
