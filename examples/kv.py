"""A replicated key-value store on the cluster's distributed data (docs/ddata.md).

Keys live in 64 buckets, each an LWW map in the distributed data; every node holds a
replica of every bucket.  ``set`` writes at majority and ``get`` reads at majority, so a
value acknowledged by ``set`` survives the loss of any minority of the nodes and every
node answers with it.

Run it on a laptop::

    swimactors agent --name a --bind 127.0.0.1:7001 --profile local --app examples.kv:setup
    swimactors agent --name b --bind 127.0.0.1:7002 --profile local --join 127.0.0.1:7001 \\
        --app examples.kv:setup
    swimactors agent --name c --bind 127.0.0.1:7003 --profile local --join 127.0.0.1:7001 \\
        --app examples.kv:setup
    python -m examples.kv --join 127.0.0.1:7001          # then: set colour blue, get colour,
                                                         # members, actors, quit
"""

from __future__ import annotations

import argparse
import sys
import zlib
from typing import Any

import trio

import swimactors
from swimactors import Consistency, ConsistencyError, QuorumLost
from swimactors.ddata import LWWMap
from swimactors.membership import Config

BUCKETS = 64


def bucket(key: str) -> str:
    """The distributed-data key holding ``key``."""
    return f"kv/{zlib.crc32(key.encode()) % BUCKETS}"


async def setup(system: swimactors.System) -> None:
    """Nothing to start: every node's ``system.data`` is a replica of the store."""


async def put(system: swimactors.System, key: str, value: str, timeout: float = 5.0) -> None:
    """Store ``value`` under ``key`` on a majority of the nodes."""
    await system.data.update(
        bucket(key),
        LWWMap,
        lambda store, writer: store.set(writer, key, value),
        write=Consistency.MAJORITY,
        timeout=timeout,
    )


async def get(system: swimactors.System, key: str, timeout: float = 5.0) -> str | None:
    """The last value written under ``key``, read from a majority of the nodes."""
    values: dict[str, Any] = await system.data.get(
        bucket(key), read=Consistency.MAJORITY, timeout=timeout, default={}
    )
    value = values.get(key)
    return value if isinstance(value, str) else None


def members(system: swimactors.System) -> list[str]:
    assert system.cluster is not None
    return [
        f"{m.name:12} {m.address[0]}:{m.address[1]:<6} {m.status.value}"
        for m in sorted(system.cluster.node.members(), key=lambda m: m.name)
    ]


def actors(system: swimactors.System) -> list[str]:
    """Every name the registry knows and the node holding it."""
    assert system.cluster is not None
    return [
        f"{name:30} {registration.node}"
        for name, registration in system.cluster.names.registrations()
    ]


async def command(system: swimactors.System, line: str) -> str:
    """One client command's output (errors as one line, never a traceback)."""
    words = line.split(maxsplit=2)
    try:
        match words:
            case ["set", key, value]:
                await put(system, key, value)
                return "ok"
            case ["get", key]:
                found = await get(system, key)
                return "(none)" if found is None else found
            case ["members"]:
                return "\n".join(members(system))
            case ["actors"]:
                return "\n".join(actors(system)) or "(no names)"
        return "commands: set KEY VALUE | get KEY | members | actors | quit"
    except (ConsistencyError, QuorumLost, swimactors.SwimactorsError) as exc:
        return f"error: {exc}"


async def main(seed: str) -> None:
    async with swimactors.open_system(  # a client: peers forget it soon after it quits
        "kv-client", bind="127.0.0.1:0", seeds=[seed], config=Config.local(), client=True
    ) as system:
        await trio.sleep(1.0)  # let membership settle before the first majority
        while True:
            print("kv> ", end="", flush=True)
            line = await trio.to_thread.run_sync(sys.stdin.readline)
            if not line or line.strip() in ("quit", "exit"):
                return
            if line.strip():
                print(await command(system, line.strip()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--join", required=True, help="host:port of any agent")
    options = parser.parse_args()
    trio.run(main, options.join)
