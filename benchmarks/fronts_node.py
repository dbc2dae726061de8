"""One membership node process for ``bench_fronts``'s CPU figure.

``python -m benchmarks.fronts_node MODE NAME SEED WARMUP WINDOW TAIL`` prints
``address HOST:PORT``, runs the node (``thread``: on its own thread under a sleeping main
thread; ``trio``: on the program's trio loop; ``system`` and ``system-thread``: inside an
actor system, without and with ``membership_thread``), and prints the CPU % the process
used during WINDOW seconds after WARMUP; it stays TAIL seconds more so no peer leaves
inside another's window.
"""

from __future__ import annotations

import sys
import time

import trio

import swimactors
from swimactors.membership import Config, open_node, start_node
from swimactors.membership.types import format_address

CONFIG = Config.local().replace(probe_interval=0.2, probe_timeout=0.1, gossip_interval=0.05)


def measure(pause: float, window: float) -> float:
    """CPU % of this process over ``window`` s, after ``pause`` s (sleeping meanwhile)."""
    time.sleep(pause)
    start_cpu, start = time.process_time(), time.monotonic()
    time.sleep(window)
    return 100 * (time.process_time() - start_cpu) / (time.monotonic() - start)


def main(mode: str, name: str, seed: str, warmup: float, window: float, tail: float) -> None:
    seeds = [seed] if seed else []
    if mode == "thread":
        with start_node(name=name, bind="127.0.0.1:0", seeds=seeds, config=CONFIG) as node:
            print("address", format_address(node.address), flush=True)
            share = measure(warmup, window)
            time.sleep(tail)
    elif mode == "trio":

        async def run() -> float:
            async with open_node(name=name, bind="127.0.0.1:0", seeds=seeds, config=CONFIG) as n:
                print("address", format_address(n.address), flush=True)
                share = await trio.to_thread.run_sync(measure, warmup, window)
                await trio.sleep(tail)
                return share

        share = trio.run(run)
    else:  # a whole actor system, its node on the actor loop or on a membership thread

        async def run_system() -> float:
            async with swimactors.open_system(
                name,
                bind="127.0.0.1:0",
                seeds=seeds,
                config=CONFIG,
                membership_thread=mode == "system-thread",
            ) as system:
                assert system.cluster is not None
                print("address", format_address(system.cluster.node.address), flush=True)
                share = await trio.to_thread.run_sync(measure, warmup, window)
                await trio.sleep(tail)
                return share

        share = trio.run(run_system)
    print("cpu", f"{share:.3f}", flush=True)


if __name__ == "__main__":
    mode, name, seed, *numbers = sys.argv[1:]
    main(mode, name, seed, *(float(x) for x in numbers))
