"""A key-value store whose shards are named actors (``kv-0`` ... ``kv-7``) spread over nodes.

Each agent registers the shard factory as *spawnable*; ``place`` starts shard ``i`` on the
``i``-th live member (round robin) with ``spawn_on``, and a client routes each key to its
shard by name (``crc32(key) % SHARDS``), wherever that shard lives.

Run it on a laptop::

    swimactors agent --name a --bind 127.0.0.1:7001 --profile local --app examples.kv:setup
    swimactors agent --name b --bind 127.0.0.1:7002 --profile local --join 127.0.0.1:7001 \\
        --app examples.kv:setup
    python -m examples.kv --join 127.0.0.1:7001 place
    python -m examples.kv --join 127.0.0.1:7001 put colour blue
    python -m examples.kv --join 127.0.0.1:7001 get colour
"""

from __future__ import annotations

import argparse
import zlib
from typing import Any

import trio

import swimactors
from swimactors import Actor, Context, message
from swimactors.membership import Config, Status

SHARDS = 8


@message("examples.kv.Put")
class Put:
    key: str
    value: str


@message("examples.kv.Fetch")
class Fetch:
    key: str


class Shard(Actor):
    def __init__(self, index: int) -> None:
        self.index = index
        self.data: dict[str, str] = {}

    def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Put(key=key, value=value):
                self.data[key] = value
                return True
            case Fetch(key=key):
                return self.data.get(key)
        return None


def shard_name(key: str) -> str:
    return f"kv-{zlib.crc32(key.encode()) % SHARDS}"


async def setup(system: swimactors.System) -> None:
    """Let other nodes start shards here (by name only: nothing runs from the wire)."""
    system.register_spawnable("kv.shard", Shard)


async def place(system: swimactors.System) -> dict[str, str]:
    """Start every missing shard, round robin over the live members: ``{shard: node}``."""
    assert system.cluster is not None
    nodes = sorted(
        m.name
        for m in system.cluster.node.members()
        if m.status is Status.UP and m.name != system.name
    ) or [system.name]
    placed = {}
    for index in range(SHARDS):
        name = f"kv-{index}"
        if not system.has_actor(name):
            node = nodes[index % len(nodes)]
            ref = await system.spawn_on(node, "kv.shard", [index], name=name)
            placed[name] = ref.node
    return placed


async def put(system: swimactors.System, key: str, value: str) -> None:
    shard = await system.wait_for(shard_name(key), timeout=10.0)
    await shard.ask(Put(key, value))


async def get(system: swimactors.System, key: str) -> str | None:
    shard = await system.wait_for(shard_name(key), timeout=10.0)
    value: str | None = await shard.ask(Fetch(key))
    return value


async def main(seed: str, command: str, args: list[str]) -> None:
    async with swimactors.open_system(  # one name per client: reruns reuse one member row
        "kv-client", bind="127.0.0.1:0", seeds=[seed], config=Config.local()
    ) as system:
        await trio.sleep(1.0)  # let membership and the registry settle
        if command == "place":
            print(await place(system))
        elif command == "put":
            await put(system, args[0], args[1])
        else:
            print(await get(system, args[0]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--join", required=True, help="host:port of any agent")
    parser.add_argument("command", choices=["place", "put", "get"])
    parser.add_argument("args", nargs="*")
    options = parser.parse_args()
    trio.run(main, options.join, options.command, options.args)
