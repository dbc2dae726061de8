"""Running scenarios: timing, a progress bar on stderr, determinism checks, sweeps."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import attrs

from swimactors.sim import World, first_divergence, relaxed_gc

from .common import Params, Progress
from .scenarios import SCENARIOS


def progress_bar(label: str, stream: TextIO | None = None, width: int = 30) -> Progress:
    """A one-line bar redrawn on stderr (silent when stderr is not a terminal)."""
    out = stream or sys.stderr
    shown = [-1]

    def update(fraction: float) -> None:
        if not out.isatty():
            return
        filled = int(fraction * width)
        if filled != shown[0]:
            shown[0] = filled
            out.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}")
            if fraction >= 1.0:
                out.write("\n")
            out.flush()

    return update


def silent(fraction: float) -> None:
    """A progress callback that shows nothing."""


def scenario(name: str) -> Any:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SystemExit(f"unknown scenario {name!r}; try: {', '.join(SCENARIOS)}") from None


def run_one(name: str, params: Params, progress: Progress = silent) -> dict[str, Any]:
    """Run one scenario and return its report with timing and speed added."""
    chosen = scenario(name)
    started = time.perf_counter()
    with relaxed_gc():
        result = chosen.run(params, progress)
    wall = time.perf_counter() - started
    progress(1.0)
    report = {"scenario": name, **result, "wall_seconds": wall}
    report["node_seconds_per_wall_second"] = report.get("node_seconds", 0.0) / max(wall, 1e-9)
    return report


def check_determinism(name: str, params: Params) -> dict[str, Any]:
    """Run twice with kept traces; name the first event where they part, if any."""
    kept = attrs.evolve(params, keep_trace=True)
    first = run_with_trace(name, kept)
    second = run_with_trace(name, kept)
    split = first_divergence(first[1], second[1])
    return {
        "scenario": name,
        "seed": params.seed,
        "trace_hash": first[0],
        "deterministic": split is None,
        "events": len(first[1]),
        "first_divergence": None
        if split is None
        else {"index": split[0], "first_run": split[1], "second_run": split[2]},
    }


def run_with_trace(name: str, params: Params) -> tuple[str, list[str]]:
    worlds: list[World] = []
    report = scenario(name).run(attrs.evolve(params, on_world=worlds.append), silent)
    return str(report["trace_hash"]), [line for world in worlds for line in world.trace.records]


def parse_range(text: str) -> list[int]:
    """``0:500`` (half-open), ``1,2,5`` or ``7``."""
    if ":" in text:
        low, high = text.split(":", 1)
        return list(range(int(low), int(high)))
    return [int(part) for part in text.split(",") if part]


def sweep(
    name: str, sizes: Iterable[int], seeds: Iterable[int], base: Params, progress_label: bool = True
) -> list[dict[str, Any]]:
    """Run the scenario for each (nodes, seed) pair."""
    rows = []
    for nodes in sizes:
        for seed in seeds:
            params = attrs.evolve(base, nodes=nodes, seed=seed)
            bar = progress_bar(f"{name} n={nodes} seed={seed}") if progress_label else silent
            rows.append(run_one(name, params, bar))
    return rows
