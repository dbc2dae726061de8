"""split-brain: every quorum rule against the splits 3|2, 2|2|1, 4|1 and a flapping
3|2 cut; which side serves, how long deciding takes, the overlap windows, and that one
node hosts the singleton everywhere after the heal.

``python -m sims.scenarios.split_brain [--nodes 5] [--seeds 0:5]`` prints the table
quoted in docs/split-brain.md.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from swimactors.quorum import Decision, Strategy, parse_strategy, stable_after_for

from ..common import Params, Progress, Run
from ..quorum import QuorumCluster, overlaps
from ..scenario import Scenario

SPLITS = ("3|2", "2|2|1", "4|1", "flapping")
SUITE_SPLITS = ("3|2", "2|2|1", "4|1")
"""What the registered scenario runs; the flapping cut still has known overlaps (see
docs/split-brain.md) and is run by this module's table and an xfail test."""
RULES = ("keep-majority", "static-quorum", "keep-oldest", "keep-referee", "down-all")
FLAP_CUT_S, FLAP_JOINED_S = 4.0, 6.0

EXPECTED: dict[tuple[str, str], int | None] = {
    # (split, rule) -> index of the side that serves (None: no side serves).  Sides are
    # listed as by sides(): in 3|2 the oldest member n0 is on the minority (side 1), in
    # 2|2|1 on side 0, in 4|1 alone on side 1; the referee is the
    # first node of side 0 in 3|2 and 4|1 and of side 1 in 2|2|1.
    ("3|2", "keep-majority"): 0,
    ("3|2", "static-quorum"): 0,
    ("3|2", "keep-oldest"): 1,
    ("3|2", "keep-referee"): 0,
    ("3|2", "down-all"): None,
    ("2|2|1", "keep-majority"): None,
    ("2|2|1", "static-quorum"): None,
    ("2|2|1", "keep-oldest"): 0,
    ("2|2|1", "keep-referee"): 1,
    ("2|2|1", "down-all"): None,
    ("4|1", "keep-majority"): 0,
    ("4|1", "static-quorum"): 0,
    ("4|1", "keep-oldest"): 0,
    ("4|1", "keep-referee"): 0,
    ("4|1", "down-all"): None,
}


def sides(split: str, names: Sequence[str]) -> list[list[str]]:
    """The groups of a split; nodes join in name order, so ``names[0]`` is the oldest."""
    n = len(names)
    two = max(1, (2 * n) // 5)
    if split in ("3|2", "flapping"):
        return [list(names[two:]), list(names[:two])]
    if split == "2|2|1":
        return [list(names[:two]), list(names[two : 2 * two]), list(names[2 * two :])]
    if split == "4|1":
        return [list(names[1:]), list(names[:1])]
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def strategy(rule: str, names: Sequence[str]) -> Strategy:
    """The rule for this cluster: quorum of a majority, referee the first node of side 0
    in a 3|2 split."""
    if rule == "static-quorum":
        return parse_strategy(f"static-quorum:{len(names) // 2 + 1}", max_members=len(names))
    if rule == "keep-referee":
        return parse_strategy(f"keep-referee:{sides('3|2', names)[0][0]}")
    return parse_strategy(rule)


def _cut(sim: Run, groups: Sequence[Sequence[str]]) -> None:
    for i, first in enumerate(groups):
        for second in groups[i + 1 :]:
            sim.world.partition(first, second)


def run_case(
    params: Params, split: str, rule: str, progress: Progress
) -> tuple[Run, dict[str, Any]]:
    """One rule against one split: settle, cut, wait ``duration`` (60 s), heal, settle."""
    sim = Run(params, progress, planned=300.0)
    world = sim.world
    names = [f"n{i}" for i in range(params.nodes)]
    cluster = QuorumCluster(world, strategy(rule, names))
    cluster.add_nodes(params.nodes)
    if not (sim.wait_for(sim.metrics.converged, 120.0) and sim.wait_for(cluster.settled, 150.0)):
        raise RuntimeError(f"{split} {rule}: the cluster did not settle before the split")
    groups = sides(split, names)
    cut_at = world.now
    split_for = params.duration or 60.0
    _cut(sim, groups)
    last_cut = cut_at
    if split == "flapping":  # flap for the first half, then hold the cut
        at = cut_at + FLAP_CUT_S
        while at + FLAP_JOINED_S <= cut_at + split_for / 2:
            world.at(at, world.heal)
            last_cut = at + FLAP_JOINED_S
            world.at(last_cut, lambda: _cut(sim, groups))
            at = last_cut + FLAP_CUT_S
    sim.advance(cut_at + split_for)
    healed_at = world.now
    serving = sorted(
        {i for i, group in enumerate(groups) for name in group if name in cluster.serving()}
    )
    final = set(cluster.holders())
    world.heal()
    settled = sim.wait_for(lambda: sim.metrics.converged() and cluster.settled(), healed_at + 240.0)
    end = world.now
    tracker = cluster.trackers[names[0]]
    bound = stable_after_for(params.nodes) + sim.config.gossip_interval
    names_bound = (tracker.unstable_limit or 0.0) + tracker.takeover_margin
    split_window = overlaps(cluster.changes, groups, cut_at, healed_at)
    late_holders = overlaps(cluster.changes, groups, cut_at + bound, healed_at)
    late_sides = overlaps(cluster.changes, groups, last_cut + names_bound, healed_at)
    after_heal = overlaps(cluster.changes, [names], healed_at, end)
    stops = [  # a node that stops serving (not one already stopped giving up its seniority)
        d.time
        for name, d, was_serving in _with_service_before(cluster.decisions)
        if cut_at <= d.time < healed_at and was_serving and not d.serving
    ]
    decided = [d.time for name, d in cluster.decisions if cut_at <= d.time < healed_at and d.stable]
    holders = [
        c.time
        for c in cluster.changes
        if cut_at <= c.time < healed_at and c.holder and c.node in final
    ]
    problems = []
    # a flapping cut may move seniority (a side that lost re-announces its age), so only
    # "at most one side" is checked for it
    expected = EXPECTED.get((split, rule))
    if split != "flapping" and expected != (serving[0] if serving else None):
        problems.append(f"{split} {rule}: sides {serving} serve, expected {expected}")
    if len(serving) > 1:
        problems.append(f"{split} {rule}: sides {serving} all serve at the end of the split")
    if late_holders.double_holder_s:
        problems.append(f"{split} {rule}: two singleton hosts after {bound:.1f} s ({late_holders})")
    if late_sides.double_side_s and split != "flapping":
        problems.append(f"{split} {rule}: two sides serve after {names_bound:.1f} s ({late_sides})")
    if after_heal.double_holder_s:
        problems.append(f"{split} {rule}: two singleton hosts after the heal ({after_heal})")
    if not settled:
        problems.append(f"{split} {rule}: no single singleton host 240 s after the heal")
    case = {
        "split": split,
        "rule": cluster.strategy.spec,
        "serving_sides": serving,
        "last_step_down_s": max(stops) - cut_at if stops else None,
        "last_decision_s": max(decided) - cut_at if decided else None,
        "failover_s": min(holders) - cut_at if holders else None,
        "serving_overlap_s": split_window.double_side_s,
        "holder_overlap_s": split_window.double_holder_s,
        "serving_overlap_after_names_bound_s": late_sides.double_side_s,
        "no_holder_s": split_window.no_holder_s,
        "heal_settled_s": end - healed_at if settled else None,
        "bound_s": bound,
        "names_bound_s": names_bound,
        "problems": problems,
    }
    return sim, case


def _with_service_before(
    decisions: Sequence[tuple[str, Decision]],
) -> Iterator[tuple[str, Decision, bool]]:
    """Each decision, with whether its node was serving before it."""
    serving: dict[str, bool] = {}
    for name, decision in decisions:
        yield name, decision, serving.get(name, False)
        serving[name] = decision.serving


def run(params: Params, progress: Progress, splits: Sequence[str] = SUITE_SPLITS) -> dict[str, Any]:
    """The matrix, as one report (its figures summed, its hash over every case)."""
    params = attrs.evolve(params, nodes=max(params.nodes, 5))
    cases: list[dict[str, Any]] = []
    digest = hashlib.sha256()
    totals = {"sim_seconds": 0.0, "false_positives": 0, "false_suspicions": 0, "node_seconds": 0.0}
    combos = [(split, rule) for split in splits for rule in RULES]
    for done, (split, rule) in enumerate(combos):
        sim, case = run_case(params, split, rule, lambda fraction: None)
        report = sim.report()
        digest.update(report["trace_hash"].encode())
        for key in totals:
            totals[key] += report[key]
        cases.append(case)
        progress((done + 1) / len(combos))
    return {
        "nodes": params.nodes,
        "seed": params.seed,
        "trace_hash": digest.hexdigest()[:16],
        **totals,
        "cases": cases,
        "problems": [problem for case in cases for problem in case["problems"]],
    }


SCENARIO = Scenario(
    "split-brain",
    "each quorum rule against 3|2, 2|2|1 and 4|1 splits: who serves, decision time, overlap",
    run,
    5,
    (5, 10),
)


def _table(rows: list[dict[str, Any]]) -> str:
    columns = (
        "last_step_down_s",
        "failover_s",
        "last_decision_s",
        "serving_overlap_s",
        "holder_overlap_s",
        "no_holder_s",
        "heal_settled_s",
    )
    lines = ["split | rule | sides serving | " + " | ".join(columns) + " (max over seeds)"]
    for split in SPLITS:
        for rule in RULES:
            group = [row for row in rows if row["split"] == split and row["rule"].startswith(rule)]
            winners = sorted({tuple(row["serving_sides"]) for row in group})
            cells = []
            for column in columns:
                values = [row[column] for row in group if row[column] is not None]
                cells.append(f"{max(values):.1f}" if values else "-")
            lines.append(f"{split} | {group[0]['rule']} | {winners} | " + " | ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sims.scenarios.split_brain")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--seeds", default="0:5", help="half-open range, e.g. 0:5")
    args = parser.parse_args(argv)
    low, _, high = args.seeds.partition(":")
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for seed in range(int(low), int(high or int(low) + 1)):
        report = run(Params(nodes=args.nodes, seed=seed), lambda fraction: None, SPLITS)
        rows.extend(report["cases"])
        problems.extend(f"seed {seed}: {problem}" for problem in report["problems"])
    print(_table(rows))
    print("\n".join(problems) or "no problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
