"""Where one membership node's CPU goes in steady state (not part of ``make bench``).

    python -m benchmarks.node_profile [SECONDS]

Runs seven nodes as processes (``benchmarks/membership_node.py``, fast profile, loopback)
and an eighth in this process, whose core's ``receive``, ``tick`` and ``next_deadline`` and
transport's ``send`` are timed with the thread's CPU clock for SECONDS (default 15) of
steady state: each is paid cold, once per wake-up, so compare them with a hot loop.
"""

from __future__ import annotations

import collections
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import trio

from swimactors.membership import Config, Status, open_node

NODES = 8


def _addresses() -> list[str]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(NODES)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    for sock in sockets:
        sock.close()
    return addresses


class Timings:
    def __init__(self) -> None:
        self.cpu: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()

    def wrap(self, owner: Any, name: str, label: str) -> None:
        method: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any) -> Any:
            start = time.thread_time_ns()
            try:
                return method(*args)
            finally:
                self.cpu[label] += time.thread_time_ns() - start
                self.calls[label] += 1

        setattr(owner, name, timed)


async def main(seconds: float) -> None:
    addresses = _addresses()
    command = [sys.executable, "-m", "benchmarks.membership_node", "swimactors"]
    processes = []
    try:
        for index in range(1, NODES):
            seed = "-" if index == 1 else addresses[1]
            args = [f"n{index}", addresses[index], seed, str(NODES), "0.2", "0.1"]
            processes.append(subprocess.Popen([*command, *args], stdout=subprocess.DEVNULL))
            if index == 1:
                await trio.sleep(0.5)
        config = Config.lan().replace(probe_interval=0.2, probe_timeout=0.1)
        async with open_node(
            name="n0", bind=addresses[0], seeds=[addresses[1]], config=config
        ) as node:
            while sum(m.status is Status.UP for m in node.members()) < NODES:
                await trio.sleep(0.2)
            await trio.sleep(4.0)
            timings = Timings()
            for name in ("receive", "tick", "next_deadline"):
                timings.wrap(node._core, name, f"core.{name}")
            timings.wrap(node._transport, "send", "transport.send")
            start = time.process_time()
            await trio.sleep(seconds)
            total = time.process_time() - start
    finally:
        for process in processes:
            process.kill()
            process.wait()
    print(f"process: {total * 1e3:.1f} ms CPU in {seconds:g} s")
    for label, cpu in timings.cpu.most_common():
        calls = timings.calls[label]
        print(f"{label:20s} {cpu / 1e6:7.1f} ms {calls:6d} calls {cpu / calls / 1e3:7.1f} µs/call")


if __name__ == "__main__":
    trio.run(main, float(sys.argv[1]) if len(sys.argv) > 1 else 15.0)
