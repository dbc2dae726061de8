"""``python -m sims list | run | sweep | replay | suite``: the scenario runner."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from swimactors.sim.schedule import loads, run_schedule

from .common import Params
from .report import plot, readable, sweep_table
from .runner import check_determinism, parse_range, progress_bar, run_one, sweep
from .scenarios import SCENARIOS


def _params(args: argparse.Namespace) -> Params:
    return Params(
        nodes=args.nodes,
        seed=args.seed,
        loss=args.loss,
        lifeguard=not args.no_lifeguard,
        duration=args.duration,
        crashes=args.crashes,
        settle=args.settle,
        formed=args.formed,
        starved=args.starved,
        starvation=args.starvation,
    )


def _common(parser: argparse.ArgumentParser, nodes: bool = True) -> None:
    if nodes:
        parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss", type=float, default=None, help="datagram loss (0..1)")
    parser.add_argument(
        "--no-lifeguard",
        action="store_true",
        help="awareness_max_multiplier=1 and a fixed suspicion timeout",
    )
    parser.add_argument("--duration", type=float, default=None, help="simulated seconds")
    parser.add_argument("--crashes", type=int, default=1, help="nodes crashed (crash, starved)")
    parser.add_argument(
        "--starved",
        type=int,
        default=None,
        help="members starved (starved: default 1; swarm: the liveness mode, default 0)",
    )
    parser.add_argument(
        "--starvation",
        choices=("cpu", "late-reader"),
        default="cpu",
        help="starved: a slow, stalling CPU (default) or packets read 0.5-2.5 s late",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="simulated seconds between forming the cluster and the fault",
    )
    parser.add_argument(
        "--formed",
        action="store_true",
        help="start from a converged cluster instead of joining by gossip",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--plot", metavar="FILE.png", help="detection curves (matplotlib)")


def _emit(rows: list[dict[str, Any]], args: argparse.Namespace, single: bool) -> None:
    if args.json:
        print(json.dumps(rows[0] if single else rows, default=str))
    elif single:
        print(readable(rows[0]))
    else:
        print(sweep_table(rows))
    if args.plot:
        message = plot(rows, args.plot)
        print(message or f"plot written to {args.plot}", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    for scenario in SCENARIOS.values():
        print(f"{scenario.name:16} {scenario.summary}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    params = _params(args)
    if args.check_determinism:
        result = check_determinism(args.scenario, params)
        print(json.dumps(result) if args.json else json.dumps(result, indent=2))
        return 0 if result["deterministic"] else 1
    report = run_one(args.scenario, params, progress_bar(f"{args.scenario} n={args.nodes}"))
    _emit([report], args, single=True)
    if args.scenario == "swarm" and not report["passed"]:
        print(f"FAILED: {report['problems']}\nreplay: {replay_command(report)}", file=sys.stderr)
        return 1
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    sizes = parse_range(args.nodes)
    seeds = parse_range(args.seeds)
    rows = sweep(args.scenario, sizes, seeds, _params_for_sweep(args))
    _emit(rows, args, single=False)
    if args.scenario == "swarm" and not args.json:
        failed = [row for row in rows if not row.get("passed")]
        coverage: dict[str, int] = {}
        for row in rows:
            for key, value in row["coverage"].items():
                coverage[key] = coverage.get(key, 0) + value
        print(f"swarm: {len(rows) - len(failed)}/{len(rows)} passed; coverage {coverage}")
        for row in failed:
            print(
                f"  FAILED seed {row['seed']}: {row['problems']}\n    replay: {replay_command(row)}"
            )
        return 1 if failed else 0
    return 0


def replay_command(row: dict[str, Any]) -> str:
    """The command that re-runs one failed swarm run, fault for fault."""
    formed = " --formed" if row.get("start") == "formed" else ""
    starved = f" --starved {row['starved']}" if row.get("starved") else ""
    return (
        f"python -m sims replay --seed {row['seed']} --nodes {row['nodes']} --swarm{formed}"
        f"{starved} --schedule '{row['schedule']}'"
    )


def _params_for_sweep(args: argparse.Namespace) -> Params:
    return Params(
        seed=0,
        loss=args.loss,
        lifeguard=not args.no_lifeguard,
        duration=args.duration,
        crashes=args.crashes,
        settle=args.settle,
        formed=args.formed,
        starved=args.starved,
        starvation=args.starvation,
    )


def cmd_replay(args: argparse.Namespace) -> int:
    text = args.schedule
    if text.startswith("@"):
        with open(text[1:]) as handle:
            text = handle.read()
    steps = loads(text)
    swarm = None
    if args.swarm:
        from swimactors.sim.rng import Streams
        from swimactors.sim.schedule import Swarm

        swarm = Swarm.draw(Streams(args.seed).get("swarm"))
    outcome = run_schedule(
        args.seed, args.nodes, steps, swarm=swarm, formed=args.formed, starved=args.starved or 0
    )
    result = {
        "seed": args.seed,
        "nodes": args.nodes,
        "steps": len(steps),
        "trace_hash": outcome.trace_hash,
        "problems": outcome.problems,
        "passed": not outcome.problems,
    }
    print(json.dumps(result, indent=None if args.json else 2))
    return 0 if not outcome.problems else 1


def cmd_suite(args: argparse.Namespace) -> int:
    failures = 0
    rows = []
    for scenario in SCENARIOS.values():
        runs = [(n, False) for n in (scenario.large if args.large else (scenario.small,))]
        runs += [(n, True) for n in (scenario.large_formed if args.large else ())]
        for nodes, formed in runs:
            params = Params(nodes=nodes, seed=args.seed, formed=formed)
            label = f"{scenario.name}{' (formed)' if formed else ''} n={nodes}"
            report = run_one(scenario.name, params, progress_bar(label))
            problems = scenario.verdict(report)
            failures += bool(problems)
            rows.append(report)
            status = "ok  " if not problems else "FAIL"
            title = scenario.name + (" formed" if formed else "")
            print(
                f"{status} {title:15} n={nodes:<5} sim {report['sim_seconds']:7.1f} s "
                f"wall {report['wall_seconds']:6.1f} s  {'; '.join(problems)}",
                flush=True,
            )
    if args.json:
        print(json.dumps(rows, default=str))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sims", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the scenarios").set_defaults(func=cmd_list)
    run = commands.add_parser("run", help="run one scenario")
    run.add_argument("scenario", choices=sorted(SCENARIOS))
    _common(run)
    run.add_argument(
        "--check-determinism",
        action="store_true",
        help="run twice and name the first event where the traces part",
    )
    run.set_defaults(func=cmd_run)
    sweeper = commands.add_parser("sweep", help="how each figure grows with N (or over seeds)")
    sweeper.add_argument("scenario", nargs="?", default="swarm", choices=sorted(SCENARIOS))
    _common(sweeper, nodes=False)
    sweeper.add_argument("--nodes", default="10,100", help="sizes, e.g. 10,100,1000")
    sweeper.add_argument("--seeds", default="0", help="seeds: 0:500, 1,2,3 or 7")
    sweeper.set_defaults(func=cmd_sweep)
    replay = commands.add_parser("replay", help="re-run a fault schedule and check it")
    replay.add_argument("--seed", type=int, required=True)
    replay.add_argument("--nodes", type=int, default=5)
    replay.add_argument("--schedule", required=True, help="JSON list of steps, or @FILE")
    replay.add_argument("--swarm", action="store_true", help="use the seed's swarm rates")
    replay.add_argument("--formed", action="store_true", help="start from a formed cluster")
    replay.add_argument("--starved", type=int, default=0, help="the liveness mode's starved")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(func=cmd_replay)
    suite = commands.add_parser("suite", help="every scenario, pass or fail")
    suite.add_argument("--large", action="store_true", help="the large sizes (make sim)")
    suite.add_argument("--seed", type=int, default=0)
    suite.add_argument("--json", action="store_true")
    suite.set_defaults(func=cmd_suite)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
