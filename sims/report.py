"""Turning reports into text, sweep tables and (with matplotlib) plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from swimactors.sim.metrics import percentile

HEADLINE = (
    "converged_s",
    "first_suspect_s",
    "first_down_s",
    "all_down_s",
    "dissemination_s",
    "dissemination_rounds",
    "heal_converged_s",
    "rejoin_s",
    "false_positives",
    "false_suspicions",
    "false_positives_per_node_hour",
    "false_suspicions_per_node_hour",
    "passed",
    "problems",
)

SWEEP_COLUMNS = (
    "first_suspect_s",
    "first_down_s",
    "all_down_s",
    "dissemination_rounds",
    "converged_s",
    "false_positives",
    "false_suspicions",
    "suspicions_raised",
    "false_deaths_of_healthy",
    "false_deaths_of_starved",
    "datagram_packets_per_node_s",
    "datagram_bytes_per_node_s",
    "reliable_packets_per_node_s",
    "wall_seconds",
    "node_seconds_per_wall_second",
)

COUNTS = (
    "false_positives",
    "false_suspicions",
    "suspicions_raised",
    "false_deaths_of_healthy",
    "false_deaths_of_starved",
)
"""Columns whose sum over the runs is shown too (kinship reports false deaths per run)."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def readable(report: dict[str, Any]) -> str:
    """A short human report of one run."""
    lines = [
        f"scenario {report['scenario']}: {report['nodes']} nodes"
        f"{' (formed)' if report.get('start') == 'formed' else ''}, seed {report['seed']}",
        f"  simulated {_fmt(report['sim_seconds'])} s in {_fmt(report['wall_seconds'])} s wall "
        f"({_fmt(report.get('node_seconds_per_wall_second', 0.0))} node-s per s)",
    ]
    phases = report.get("phase_wall_s") or {}
    if phases:
        timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())
        lines.append(f"  wall time by phase: {timings}")
    for key in HEADLINE:
        if key in report and report[key] is not None:
            lines.append(f"  {key:32} {_fmt(report[key])}")
    load = report.get("load") or {}
    if load:
        lines.append("  load per node per second:")
        for key, value in load.items():
            lines.append(f"    {key:30} {value:.2f}")
    by_kind = report.get("load_by_kind") or {}
    if by_kind:
        kinds = ", ".join(f"{k.removeprefix('sent_')} {v:.2f}" for k, v in by_kind.items())
        lines.append(f"  messages per node per second: {kinds}")
    lines.append(f"  trace hash {report['trace_hash']}")
    return "\n".join(lines)


def flatten(report: dict[str, Any]) -> dict[str, Any]:
    """The report with the load figures lifted to the top level."""
    return {**report, **(report.get("load") or {})}


def sweep_table(rows: Sequence[dict[str, Any]]) -> str:
    """Median (and p99 when several seeds) of each figure, one line per cluster size."""
    sizes = sorted({row["nodes"] for row in rows})
    columns = [c for c in SWEEP_COLUMNS if any(c in flatten(row) for row in rows)]
    header = ["nodes", "runs", "log2(n)", *columns]
    lines = [" | ".join(header)]
    for size in sizes:
        group = [flatten(row) for row in rows if row["nodes"] == size]
        cells = [str(size), str(len(group)), f"{math.log2(max(2, size)):.2f}"]
        for column in columns:
            values = [float(r[column]) for r in group if isinstance(r.get(column), int | float)]
            median = percentile(values, 0.5)
            cell = _fmt(median)
            if len(values) > 1:
                total = f", sum {sum(values):.0f}" if column in COUNTS else ""
                cell += f" (p99 {_fmt(percentile(values, 0.99))}{total})"
            cells.append(cell)
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], path: str) -> str | None:
    """Detection and dissemination curves into ``path``; a message if matplotlib is absent."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "plotting needs matplotlib: pip install 'swimactors[plot]'"
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for row in rows:
        crashes = row.get("crashes") or []
        if crashes and crashes[0].get("down_times"):
            times = sorted(crashes[0]["down_times"])
            fraction = [(i + 1) / max(1, row["nodes"] - len(crashes)) for i in range(len(times))]
            left.step(times, fraction, where="post", label=f"n={row['nodes']} s={row['seed']}")
    left.set_xlabel("seconds after the crash")
    left.set_ylabel("fraction of live nodes that marked it DOWN")
    left.set_title("detection and dissemination")
    sizes = sorted({row["nodes"] for row in rows})
    for key in ("first_suspect_s", "first_down_s", "all_down_s"):
        medians = [
            percentile([r[key] for r in rows if r["nodes"] == n and r.get(key)], 0.5) for n in sizes
        ]
        right.plot(sizes, medians, marker="o", label=key)
    right.set_xscale("log")
    right.set_xlabel("nodes")
    right.set_ylabel("seconds (median)")
    right.set_title("detection against cluster size")
    for axis in (left, right):
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return None
