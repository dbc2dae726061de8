"""indirect split: two members cut from each other with no helper between them (n0
reaches only n2; n1 reaches n3 and n4), the other three reaching everyone.  Akka's rule
keeps the fully connected part (n2, n3, n4); does ours keep it serving, and is there
ever a second singleton holder?

``python -m sims.scenarios.indirect_split [--seeds 0:64] [--rule keep-majority]
[--delay S]`` prints each seed that is not clean and the totals quoted in
docs/split-brain.md; ``--delay`` moves the cut S seconds past the settled cluster, so
it falls elsewhere on the probe ring (2.0: n1 finds the cut first, and n0 finds it
late in many seeds, the race in docs/split-brain.md "Limits").
"""

from __future__ import annotations

import argparse
from collections import Counter

import attrs

from swimactors.sim import World
from swimactors.sim.metrics import Metrics

from ..quorum import Change, QuorumCluster, overlaps
from .split_brain import strategy

NAMES = tuple(f"n{i}" for i in range(5))
FULLY_CONNECTED = frozenset({"n2", "n3", "n4"})
CUTS = (("n0", "n1"), ("n0", "n3"), ("n0", "n4"), ("n1", "n2"))
"""SWIM probes go through one helper at most: n0 and n1 share no neighbour."""
HOLD_S, SETTLE_S = 90.0, 30.0
"""The cut lasts 90 s; the first 30 s are for detection and decisions."""


@attrs.frozen
class Outcome:
    """One seed: second singleton holders, and the fully connected part's service."""

    seed: int
    double_holder_s: float
    """Seconds with two singleton holders, cut and heal together."""
    gap_s: float
    """Seconds after the first 30 s of the cut with one of n2-n4 not serving."""
    stopped_s: float
    """Seconds of the whole cut with one of n2-n4 not serving."""
    end_stopped_s: float
    """Seconds of the whole cut with n0 not serving (the older end, which the rule keeps
    once both ends have found the cut)."""
    serving_at_end: frozenset[str]
    healed: bool
    """One agreed holder everywhere within 120 s of the heal."""

    @property
    def kind(self) -> str:
        if self.double_holder_s:
            return "double holder"
        if not self.serving_at_end >= FULLY_CONNECTED:
            return "n2-n4 stopped at the end"
        if not self.healed:
            return "no heal"
        return "gap" if self.gap_s else "stop" if self.stopped_s else "clean"


def not_serving_s(changes: list[Change], names: frozenset[str], start: float, end: float) -> float:
    """Seconds in ``[start, end)`` during which one of ``names`` was not serving."""
    serving = {name: False for name in names}
    total, last = 0.0, start
    for change in sorted(changes, key=lambda c: c.time):
        if change.time >= end:
            break
        if change.node not in names:
            continue
        if change.time > start and not all(serving.values()):
            total += change.time - max(last, start)
        last = max(change.time, start)
        serving[change.node] = change.serving
    if not all(serving.values()):
        total += end - last
    return total


def run_seed(
    seed: int, rule: str = "keep-majority", delay: float = 0.0, stable_after: float | None = None
) -> Outcome:
    """Settle, wait ``delay`` s, cut, hold ``HOLD_S``, heal, settle."""
    world = World(seed)
    metrics = Metrics(world)
    cluster = QuorumCluster(world, strategy(rule, NAMES), stable_after=stable_after)
    cluster.add_nodes(len(NAMES))
    if not world.run_until(lambda: metrics.converged() and cluster.settled(), 120.0, poll=0.5):
        raise RuntimeError(f"seed {seed}: the cluster did not settle before the cut")
    if delay:  # (run_for(0) would run this instant's events first: another run)
        world.run_for(delay)
    cut = world.now
    for a, b in CUTS:
        world.partition([a], [b])
    world.run_for(HOLD_S)
    during = overlaps(cluster.changes, [list(NAMES)], cut, world.now)
    gap = not_serving_s(cluster.changes, FULLY_CONNECTED, cut + SETTLE_S, world.now)
    stopped = not_serving_s(cluster.changes, FULLY_CONNECTED, cut, world.now)
    end_stopped = not_serving_s(cluster.changes, frozenset({"n0"}), cut, world.now)
    serving = frozenset(cluster.serving())
    world.heal()
    healed_at = world.now
    healed = world.run_until(
        lambda: metrics.converged() and cluster.settled(), healed_at + 120.0, poll=0.5
    )
    after = overlaps(cluster.changes, [list(NAMES)], healed_at, world.now)
    double = during.double_holder_s + after.double_holder_s
    return Outcome(seed, double, gap, stopped, end_stopped, serving, healed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sims.scenarios.indirect_split")
    parser.add_argument("--seeds", default="0:64", help="half-open range, e.g. 0:64")
    parser.add_argument("--rule", default="keep-majority")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before the cut")
    parser.add_argument("--stable-after", type=float, default=None, help="seconds (default 7)")
    args = parser.parse_args(argv)
    low, _, high = args.seeds.partition(":")
    kinds: Counter[str] = Counter()
    besides: Counter[str] = Counter()
    gaps = stops = end_stops = 0.0
    end_seeds = 0
    for seed in range(int(low), int(high or int(low) + 1)):
        outcome = run_seed(seed, args.rule, args.delay, args.stable_after)
        kinds[outcome.kind] += 1
        gaps += outcome.gap_s
        stops += outcome.stopped_s
        end_stops += outcome.end_stopped_s
        end_seeds += outcome.end_stopped_s > 0
        besides[",".join(sorted(outcome.serving_at_end - FULLY_CONNECTED)) or "none"] += 1
        if outcome.kind != "clean":
            print(
                f"seed {seed}: {outcome.kind}, n2-n4 gap {outcome.gap_s:.1f} s "
                f"(whole cut {outcome.stopped_s:.1f} s), "
                f"serving at the end {sorted(outcome.serving_at_end)}",
                flush=True,
            )
    print(", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    print("also serving at the end:", ", ".join(f"{k} {n}" for k, n in sorted(besides.items())))
    print(f"n2-n4 not all serving after the first {SETTLE_S:.0f} s: {gaps:.1f} s in total")
    print(f"n2-n4 not all serving during the cut: {stops:.1f} s in total")
    print(f"n0 not serving during the cut: {end_seeds} seeds, {end_stops:.1f} s in total")
    return 1 if kinds["double holder"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
