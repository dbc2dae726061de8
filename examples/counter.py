"""A distributed counter (Pulsing's example): one singleton actor, called like an object.

``Counter`` is an ``@as_actor`` class: a client calls ``await counter.increment(5)``
through a proxy, from any node.  It runs as a cluster singleton: when its node is killed,
the oldest member of the majority starts it again.  The count itself is a PN-counter in
the cluster's distributed data, written and read at majority, so an acknowledged
increment survives the failover.

Run three agents on a laptop (each line in its own terminal)::

    swimactors agent --name a --bind 127.0.0.1:7001 --profile local --split-brain keep-majority \\
        --app examples.counter:setup
    swimactors agent --name b --bind 127.0.0.1:7002 --profile local --split-brain keep-majority \\
        --join 127.0.0.1:7001 --app examples.counter:setup
    (and c, like b, on 127.0.0.1:7003)

then, from anywhere (a short-lived node that joins, calls and leaves)::

    python -m examples.counter --join 127.0.0.1:7001 increment 5
    python -m examples.counter --join 127.0.0.1:7002 get

Kill the agent holding the counter (``kill -9``): a few seconds later ``get`` answers
from another node with the same count.  Errors are printed on one line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import swimactors
from swimactors import Actor, Consistency, Context, as_actor, message
from swimactors.ddata import PNCounter
from swimactors.membership import Config
from swimactors.quorum import keep_majority

from .client import run_client

KEY = "examples.counter"
"""The distributed-data key holding the count."""


@message("examples.counter.Add")
class Add:
    n: int = 1


@message("examples.counter.Get")
class Get:
    pass


@as_actor("examples.counter.Counter")
class Counter(Actor):
    """The cluster's counter; its methods are what clients call (``Add`` and ``Get``
    messages do the same, for clients without the class: the web and asyncio fronts).
    An Actor subclass, so type checkers know ``self.context``."""

    async def increment(self, n: int = 1) -> int:
        """Add ``n`` (negative: subtract) on a majority of the nodes; the new count."""
        value: int = await self._system().data.update(
            KEY, PNCounter, lambda counter, writer: counter.increment(writer, n), write=MAJORITY
        )
        return value

    async def get(self) -> int:
        """The count, read from a majority of the nodes."""
        value: int = await self._system().data.get(KEY, read=MAJORITY, default=0)
        return value

    def _system(self) -> swimactors.System:
        """The cluster system this counter runs in (an actor's context is typed with the
        local system only, which has no distributed data)."""
        system = self.context.system
        assert isinstance(system, swimactors.System)
        return system

    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Add(n=n):
                return await self.increment(n)
            case Get():
                return await self.get()
        return None


MAJORITY = Consistency.MAJORITY


async def setup(system: swimactors.System) -> None:
    """Let this node re-create the counter; start it unless a node already holds it (a
    singleton with a split-brain rule, else a plain public actor that does not fail over)."""
    system.register_spawnable("counter", Counter)
    try:
        await system.wait_for("counter", timeout=2.0)
    except TimeoutError:
        if system.split_brain is None:
            await system.spawn(Counter, name="counter", public=True)
        else:
            await system.spawn("counter", name="counter", singleton=True)


async def call(system: swimactors.System, command: str, n: int = 1) -> int:
    await system.wait_serving(timeout=10.0)  # a new member serves once its rule agrees
    counter = system.proxy(await system.wait_for("counter", timeout=10.0), Counter)
    return await (counter.increment(n) if command == "increment" else counter.get())


async def main(join: str, command: str, n: int) -> None:
    async with swimactors.open_system(  # one name per client: reruns reuse one member row
        "counter-client",
        bind="127.0.0.1:0",
        seeds=[join],
        config=Config.local(),
        split_brain=keep_majority(),  # the agents' rule: a member must agree with them
        client=True,  # peers forget this member soon after it quits
    ) as system:
        print(await call(system, command, n))


def run(argv: list[str] | None = None) -> int:
    """The command line: prints the count, or one line saying what went wrong."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--join", required=True, help="host:port of any agent")
    parser.add_argument("command", choices=["increment", "get"])
    parser.add_argument("n", type=int, nargs="?", default=1)
    args = parser.parse_args(argv)
    return run_client("counter", main, args.join, args.command, args.n)


if __name__ == "__main__":
    sys.exit(run())
