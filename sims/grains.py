"""``python -m sims.grains [--seeds 1-4 | --seed N]``: grains and distributed data on the
trio engine under a partition, a crash and a join, with the checks of issue 17.

Five nodes under keep-majority ask ten grains, and 100 grains of a second kind that
passivate after 0.5 s idle (so activations, most of them on leases without a probe, go on
all the time), and write unique keys at majority from every node; the seed draws the
schedule: a 3|2 cut (which nodes, when, how long), a crash of one
node after the heal, and a sixth host joining.  Checked:

* no two activations of one identity inside ``receive`` at once on nodes whose sides
  serve;
* after the heal (once every side serves again and the grains settled) at most one
  activation per identity on the live nodes, and after the run exactly one per grain that
  was asked at the end;
* every majority write that was acknowledged reads back, at majority, with its value.

A failing seed prints the command that replays it (same seed, same run: the trace hash is
printed too).
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
from collections import Counter
from typing import Any

import attrs
import trio

from swimactors import Consistency, SplitBrainConfig, System, open_system
from swimactors.cluster.grains import Grain
from swimactors.ddata import LWWRegister, Writer
from swimactors.membership.types import format_address
from swimactors.quorum import keep_majority
from swimactors.sim import address_for
from swimactors.sim.systems import replay, simulated_systems
from swimactors.sim.trio_engine import SimNet

IDENTITIES = [f"g{i}" for i in range(10)]
CHURN = [f"c{i}" for i in range(100)]
"""Grains of a second kind that passivate after 0.5 s idle: activations all the time,
through the cut, the crash and the join."""
NODES = 5


@attrs.define
class Checks:
    """What one run saw."""

    overlaps: list[str] = attrs.Factory(list)
    after_heal: list[str] = attrs.Factory(list)
    at_end: list[str] = attrs.Factory(list)
    lost_writes: list[str] = attrs.Factory(list)
    acked: int = 0
    answered: int = 0
    activations: int = 0
    skipped: int = 0
    """Activations that took their grain without probing (leases, docs/grains.md)."""

    @property
    def failures(self) -> list[str]:
        return [*self.overlaps, *self.after_heal, *self.at_end, *self.lost_writes]


class Probe(Grain):
    """Takes simulated time per message and records overlapping processing."""

    busy: dict[str, dict[str, System]] = {}
    """identity -> the nodes whose activation is inside ``receive`` for it now."""
    checks: Checks = Checks()

    async def receive(self, msg: Any, ctx: Any) -> Any:
        system = ctx.system
        busy = Probe.busy.setdefault(self.identity, {})
        for node, other in busy.items():
            if _serving(other) and _serving(system):
                Probe.checks.overlaps.append(
                    f"{trio.current_time():.3f}: {self.identity} in receive on {node} and "
                    f"{system.name} at once"
                )
        busy[system.name] = system
        try:
            await trio.sleep(0.02)
            self.state = (self.state or 0) + 1
            return self.state
        finally:
            del busy[system.name]


def _serving(system: System) -> bool:
    return system.quorum_state in ("ok", "pending")


async def _load(
    system: System, rng: random.Random, checks: Checks, crashed: set[str], stop: trio.Event
) -> None:
    writes = 0
    while system.name not in crashed and not stop.is_set():
        for kind, identity in (("probe", rng.choice(IDENTITIES)), ("churn", rng.choice(CHURN))):
            try:
                await system.grain(kind, identity).ask(None, timeout=1.0)
                checks.answered += 1
            except Exception:  # QuorumLost, NodeDown, AskTimeout, ...
                await trio.sleep(0.2)
        writes += 1
        key, value = f"w/{system.name}/{writes}", writes
        try:
            await system.data.update(
                key,
                LWWRegister,
                functools.partial(_set_to, value),
                write=Consistency.MAJORITY,
                timeout=1.0,
            )
        except Exception:  # not acknowledged: no promise to keep
            continue
        if system.name not in crashed:
            ACKED.append((key, value))


def _set_to(value: int, register: LWWRegister, writer: Writer) -> LWWRegister:
    """The update that writes ``value`` (a partial per write: no loop variable captured)."""
    return register.set(writer, value)


ACKED: list[tuple[str, int]] = []


def _held(systems: list[System], crashed: set[str], kind: str | None = None) -> Counter[str]:
    return Counter(
        identity
        for s in systems
        if s.name not in crashed
        for (k, identity) in s.grains.local
        if kind in (None, k)
    )


def scenario(seed: int) -> Any:
    """The run for ``seed``: an app for :func:`replay` that fills a :class:`Checks`."""
    draw = random.Random(seed)
    cut_at = draw.uniform(3.0, 8.0)
    cut_for = draw.uniform(10.0, 25.0)
    minority = draw.sample(range(NODES), 2)
    victim = draw.choice([i for i in range(1, NODES) if i not in minority] or [1])
    checks = Checks()

    async def app(net: SimNet) -> list[str]:
        Probe.busy.clear()
        Probe.checks = checks
        ACKED.clear()
        crashed: set[str] = set()
        rule = SplitBrainConfig(strategy=keep_majority(), stable_after=3.0)
        with trio.fail_after(400):
            async with simulated_systems(net, NODES, split_brain=rule) as systems:
                for s in systems:
                    _host(s)
                await _await(lambda: all(len(s.grains.hosts("churn")) == NODES for s in systems))
                await _await(lambda: all(s.quorum_state == "ok" for s in systems))
                names = [s.name for s in systems]
                stop = trio.Event()
                async with trio.open_nursery() as load:
                    for k, s in enumerate(systems):
                        rng = random.Random(seed * 100 + k)
                        load.start_soon(_load, s, rng, checks, crashed, stop)
                    await trio.sleep(cut_at)
                    small = [names[i] for i in minority]
                    net.partition([n for n in names if n not in small], small)
                    await trio.sleep(cut_for)
                    net.heal()
                    await _await(lambda: all(s.quorum_state == "ok" for s in systems))
                    await trio.sleep(15.0)
                    over = {i: n for i, n in _held(systems, crashed).items() if n > 1}
                    if over:
                        checks.after_heal.append(f"after the heal: {over} activations")
                    crashed.add(names[victim])
                    net.crash(names[victim])
                    await trio.sleep(draw.uniform(5.0, 10.0))
                    async with _join(net, NODES, rule) as late:
                        _host(late)
                        await trio.sleep(20.0)
                        stop.set()
                        await _final_checks([*systems, late], crashed, checks)
                        everyone = [*systems, late]
                        checks.activations = sum(s.grains.activations for s in everyone)
                        checks.skipped = sum(s.grains.leases.skipped for s in everyone)
        return checks.failures

    return app, checks


def _host(system: System) -> None:
    system.register_grain("probe", Probe, idle_timeout=None)
    system.register_grain("churn", Probe, idle_timeout=0.5)


async def _final_checks(systems: list[System], crashed: set[str], checks: Checks) -> None:
    """Every grain answers, from exactly one activation; every acknowledged majority
    write reads back at majority."""
    live = [s for s in systems if s.name not in crashed]
    for identity in IDENTITIES:
        await _ask_until_answered(live[0], identity)
    held = _held(live, crashed, "probe")
    if set(held.values()) != {1} or set(held) != set(IDENTITIES):
        checks.at_end.append(f"at the end: {dict(held)} activations")
    checks.acked = len(ACKED)
    for key, value in ACKED:
        got = await live[0].data.get(key, read=Consistency.MAJORITY)
        if got != value:
            checks.lost_writes.append(f"{key}: wrote {value}, read {got}")


async def _await(condition: Any) -> None:
    while not condition():
        await trio.sleep(0.2)


async def _ask_until_answered(system: System, identity: str) -> None:
    for _ in range(20):
        try:
            await system.grain("probe", identity).ask(None, timeout=2.0)
            return
        except Exception:
            await trio.sleep(0.5)


def _join(net: SimNet, index: int, rule: SplitBrainConfig) -> Any:
    name = f"n{index}"
    return open_system(
        name=name,
        bind=format_address(address_for(index)),
        seeds=[format_address(address_for(0))],
        environment=net.environment(name, address_for(index), incarnation=1000 + index),
        shutdown_timeout=1.0,
        split_brain=rule,
    )


def run(seed: int) -> tuple[str, Checks]:
    """Run ``seed``; its trace hash and what the checks saw."""
    app, checks = scenario(seed)
    trace, _ = replay(app, seed)
    return trace, checks


def replay_command(seed: int) -> str:
    return f"python -m sims.grains --seed {seed}"


def report(seed: int, trace: str, checks: Checks) -> str:
    """One line per seed; a failure adds its findings and the command that replays it."""
    head = (
        f"seed {seed}: {checks.answered} grain answers, {checks.acked} acknowledged majority "
        f"writes, {checks.activations} activations ({checks.skipped} without probing), "
        f"trace {trace[:16]}"
    )
    if not checks.failures:
        return f"{head}: ok"
    lines = [f"{head}: FAILED", *(f"  {f}" for f in checks.failures[:20])]
    return "\n".join([*lines, f"  replay: {replay_command(seed)}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sims.grains")
    parser.add_argument("--seed", type=int, help="run this seed only")
    parser.add_argument("--seeds", default="1-4", help="a range of seeds, e.g. 1-8")
    args = parser.parse_args(argv)
    if args.seed is not None:
        seeds = [args.seed]
    else:
        low, _, high = args.seeds.partition("-")
        seeds = list(range(int(low), int(high or low) + 1))
    failed = 0
    for seed in seeds:
        trace, checks = run(seed)
        print(report(seed, trace, checks), flush=True)
        failed += bool(checks.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
