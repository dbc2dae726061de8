"""A distributed counter: one named actor, incremented and read from any node.

Run a cluster of agents on a laptop (each line in its own terminal)::

    swimactors agent --name a --bind 127.0.0.1:7001 --profile local --app examples.counter:setup
    swimactors agent --name b --bind 127.0.0.1:7002 --profile local --join 127.0.0.1:7001 \\
        --app examples.counter:setup

then, from anywhere (a short-lived node that joins, calls and leaves)::

    python -m examples.counter --join 127.0.0.1:7001 add 5
    python -m examples.counter --join 127.0.0.1:7001 get
"""

from __future__ import annotations

import argparse
from typing import Any

import trio

import swimactors
from swimactors import Actor, Context, message
from swimactors.membership import Config


@message("examples.counter.Add")
class Add:
    n: int = 1


@message("examples.counter.Get")
class Get:
    pass


class Counter(Actor):
    def __init__(self) -> None:
        self.value = 0

    def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Add(n=n):
                self.value += n
                return self.value
            case Get():
                return self.value
        return None


async def setup(system: swimactors.System) -> None:
    """Hold the counter unless a node that started earlier already does."""
    try:
        await system.wait_for("counter", timeout=2.0)
    except TimeoutError:
        await system.spawn(Counter, name="counter", public=True)


async def call(system: swimactors.System, command: str, n: int = 1) -> int:
    counter = await system.wait_for("counter", timeout=10.0)
    result: int = await counter.ask(Add(n) if command == "add" else Get())
    return result


async def main(join: str, command: str, n: int) -> None:
    async with swimactors.open_system(  # one name per client: reruns reuse one member row
        "counter-client", bind="127.0.0.1:0", seeds=[join], config=Config.local()
    ) as system:
        print(await call(system, command, n))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--join", required=True, help="host:port of any agent")
    parser.add_argument("command", choices=["add", "get"])
    parser.add_argument("n", type=int, nargs="?", default=1)
    args = parser.parse_args()
    trio.run(main, args.join, args.command, args.n)
