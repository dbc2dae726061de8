"""What one wake-up of an idle process costs here: CPU per timer wake-up of a trio loop,
a stdlib ``selectors`` loop and a bare ``time.sleep``, each in a fresh process, alternated
``PAIRS`` times.  A membership node in steady state is mostly such wake-ups, so this is
the floor under any Python SWIM node on a given loop (and what kinship, in Rust, is not
paying)."""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any

KINDS = ("trio", "selectors", "time.sleep")
PAIRS = 3
INTERVAL = 0.005


def _child(kind: str, count: int) -> None:
    """Sleep ``count`` times; print the CPU seconds it took per wake-up (imports and the
    loop's start-up excluded)."""
    import selectors
    import socket
    import time

    import trio

    if kind == "trio":

        async def main() -> float:
            start = time.process_time()
            for _ in range(count):
                await trio.sleep(INTERVAL)
            return start

        start = trio.run(main)
    elif kind == "selectors":
        selector = selectors.DefaultSelector()
        idle = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        selector.register(idle, selectors.EVENT_READ)
        start = time.process_time()
        for _ in range(count):
            selector.select(INTERVAL)
    else:
        start = time.process_time()
        for _ in range(count):
            time.sleep(INTERVAL)
    print((time.process_time() - start) / count)


def _measure(kind: str, count: int) -> float:
    command = [sys.executable, "-m", "benchmarks.bench_wakeups", kind, str(count)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return float(done.stdout) * 1e6


def run(quick: bool) -> list[dict[str, Any]]:
    count = 200 if quick else 1000
    results: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for pair in range(1 if quick else PAIRS):
        for kind in KINDS[pair % 3 :] + KINDS[: pair % 3]:
            results[kind].append(_measure(kind, count))
    floor = results["selectors"]
    rows = []
    for kind in KINDS:
        ratios = [a / b for a, b in zip(results[kind], floor, strict=True)]
        rows.append(
            {
                "benchmark": "CPU per idle wake-up",
                "metric": kind,
                "value": statistics.median(results[kind]),
                "unit": "µs",
                "floor": statistics.median(floor),
                "ratio": statistics.median(ratios),
                "note": f"{count:,} sleeps of {INTERVAL * 1e3:g} ms; floor: selectors; runs "
                + ", ".join(f"{v:.0f}" for v in results[kind]),
            }
        )
    return rows


if __name__ == "__main__":  # python -m benchmarks.bench_wakeups KIND COUNT
    _child(sys.argv[1], int(sys.argv[2]))
