"""split heal: how soon after a clean split heals each node's own probe verdicts end.

Five nodes, cut 3|2 for 60 s, healed: per seed, the seconds until the first packet
crosses the healed cut (a reconnect or the gossip to the dead), until SWIM's views agree
(every member UP everywhere) and until every node's ``Swim.unreached()`` is empty; and,
with ``--holder``, the split-brain matrix's heal time (one agreed singleton holder
everywhere, keep-majority).  The figures in docs/split-brain.md ("Limits").

``python -m sims.scenarios.split_heal [--seeds 0:30] [--holder]``
"""

from __future__ import annotations

import argparse
import statistics

import attrs

from swimactors.sim import PacketRecord, World
from swimactors.sim.metrics import Metrics

from ..common import Params
from .split_brain import run_case

CUT_S, LIMIT_S = 60.0, 120.0
SIDE = frozenset({"n0", "n1"})
"""The minority side of the cut."""


@attrs.frozen
class Heal:
    """Seconds after the heal (None: not within ``LIMIT_S``)."""

    contact_s: float | None
    """The first packet delivered from one side of the cut to the other."""
    converged_s: float | None
    unreached_s: float | None


def run_seed(seed: int) -> Heal:
    """Settle, cut n0-n1 | n2-n4 for ``CUT_S``, heal, watch every 0.1 s."""
    world = World(seed)
    metrics = Metrics(world)
    world.add_nodes(5, stagger=0.02)
    if not world.run_until(metrics.converged, 60.0, poll=0.5):
        raise RuntimeError(f"seed {seed}: the cluster did not converge before the cut")
    world.partition(sorted(SIDE), ["n2", "n3", "n4"])
    world.run_for(CUT_S)
    healed_at = world.now
    world.heal()
    contact: list[float] = []

    def across(packet: PacketRecord) -> None:
        if not contact and packet.dropped is None and (packet.src in SIDE) != (packet.dst in SIDE):
            contact.append(packet.time - healed_at)

    world.on_packet(across)
    converged = reached = None
    while world.now < healed_at + LIMIT_S and (converged is None or reached is None):
        world.run_for(0.1)
        if converged is None and metrics.converged():
            converged = world.now - healed_at
        verdicts = (n.core.unreached() for n in world.nodes.values())  # type: ignore[attr-defined]
        if reached is None and not any(verdicts):
            reached = world.now - healed_at
    return Heal(contact[0] if contact else None, converged, reached)


def _summary(label: str, values: list[float | None]) -> str:
    done = [v for v in values if v is not None]
    missing = len(values) - len(done)
    if not done:
        return f"{label}: none within {LIMIT_S:.0f} s"
    return (
        f"{label}: median {statistics.median(done):.1f} s, mean {statistics.mean(done):.1f},"
        f" max {max(done):.1f}" + (f", {missing} not within {LIMIT_S:.0f} s" if missing else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sims.scenarios.split_heal")
    parser.add_argument("--seeds", default="0:30", help="half-open range, e.g. 0:30")
    parser.add_argument("--holder", action="store_true", help="also the matrix's heal time")
    args = parser.parse_args(argv)
    low, _, high = args.seeds.partition(":")
    seeds = range(int(low), int(high or int(low) + 1))
    heals = [run_seed(seed) for seed in seeds]
    print(_summary("first packet across", [h.contact_s for h in heals]))
    print(_summary("SWIM views agree", [h.converged_s for h in heals]))
    print(
        _summary(
            "SWIM views agree, after the first packet across",
            [
                h.converged_s - h.contact_s
                for h in heals
                if h.converged_s is not None and h.contact_s is not None
            ],
        )
    )
    print(_summary("every unreached() empty", [h.unreached_s for h in heals]))
    if args.holder:
        holder = [
            run_case(Params(nodes=5, seed=seed), "3|2", "keep-majority", lambda _: None)[1][
                "heal_settled_s"
            ]
            for seed in seeds
        ]
        print(_summary("one agreed holder (3|2 keep-majority)", holder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
