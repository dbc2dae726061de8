"""singleton faults: five whole systems (trio engine, MockClock) with a keep-majority rule
and one singleton, through a random schedule of stalls (a node reads no quorum
announcement for a while: its leases run out, membership keeps answering) and cuts of a
minority.  Is the singleton ever running twice, and does it run again, on one node, once
the faults stop?

``python -m sims.scenarios.singleton_faults [--seeds 0:20] [--faults 6]`` prints each
seed that is not clean and the totals quoted in docs/split-brain.md.
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Callable, Sequence

import attrs
import trio
import trio.testing

import swimactors
from swimactors import Actor, SplitBrainConfig, System
from swimactors.membership.delegate import Delegate
from swimactors.quorum import QUORUM_CHANNEL, keep_majority
from swimactors.sim.network import LinkModel
from swimactors.sim.systems import simulated_systems
from swimactors.sim.trio_engine import SimNet, deterministic_scheduling

STABLE_AFTER = 3.0
RULE = SplitBrainConfig(strategy=keep_majority(), stable_after=STABLE_AFTER)
NAME = "the-counter"
NODES = 5
SETTLE_S = 60.0
"""After the last fault: every node ``ok`` and the singleton on one node within this."""
SAMPLE_S = 0.05


class Counter(Actor):
    """The singleton: counts the asks it answered."""

    def __init__(self) -> None:
        self.value = 0

    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        self.value += 1
        return self.value


class Deaf(Delegate):
    """Takes the quorum channel's announcements and reads none of them."""


async def stall_quorum(system: System, seconds: float) -> None:
    """``system`` reads no quorum announcement for ``seconds``: a stall as its tracker
    sees it (its leases on the others run out; membership keeps answering, so the others
    see nothing wrong and keep their confirmed view)."""
    assert system.cluster is not None and system.split_brain is not None
    node = system.cluster.node
    node.register_delegate(QUORUM_CHANNEL, Deaf())
    try:
        await trio.sleep(seconds)
    finally:
        node.register_delegate(QUORUM_CHANNEL, system.split_brain)


def running(systems: Sequence[System]) -> list[str]:
    """The nodes running a local actor called NAME."""
    return [s.name for s in systems if NAME in s.children]


@attrs.frozen
class Outcome:
    """One seed: the most instances at once, seconds with none, and the end."""

    seed: int
    most_running: int
    none_s: float
    """Seconds with no instance running, faults and settling together."""
    settled_s: float | None
    """Seconds after the last fault until every node was ``ok`` with one instance
    (None: not within SETTLE_S)."""
    faults: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return self.most_running <= 1 and self.settled_s is not None


class _Watch:
    def __init__(self, systems: Sequence[System]) -> None:
        self.systems = systems
        self.most = 0
        self.none_s = 0.0

    async def run(self) -> None:
        while True:
            count = len(running(self.systems))
            self.most = max(self.most, count)
            self.none_s += SAMPLE_S if count == 0 else 0.0
            await trio.sleep(SAMPLE_S)


async def until(check: Callable[[], bool], limit: float) -> bool:
    with trio.move_on_after(limit):
        while not check():
            await trio.sleep(SAMPLE_S)
        return True
    return False


async def _fault(net: SimNet, systems: Sequence[System], rng: random.Random) -> str:
    """One fault, held for its duration: a stall of one node, or a cut of a minority."""
    names = [s.name for s in systems]
    if rng.random() < 0.5:
        victim = rng.choice(systems)
        seconds = rng.uniform(1.0, 2 * STABLE_AFTER)
        await stall_quorum(victim, seconds)
        return f"stall {victim.name} {seconds:.1f}s"
    minority = rng.sample(names, rng.randint(1, (NODES - 1) // 2))
    seconds = rng.uniform(1.0, 5 * STABLE_AFTER)
    net.partition([n for n in names if n not in minority], minority)
    await trio.sleep(seconds)
    net.heal()
    return f"cut {','.join(sorted(minority))} {seconds:.1f}s"


async def _run(net: SimNet, seed: int, faults: int) -> Outcome:
    rng = random.Random(seed)
    async with simulated_systems(net, NODES, split_brain=RULE) as systems:
        for system in systems:
            system.register_spawnable("counter", Counter)
        if not await until(lambda: all(s.quorum_state == "ok" for s in systems), 60.0):
            raise RuntimeError(f"seed {seed}: the cluster did not settle")
        await rng.choice(systems).spawn("counter", name=NAME, singleton=True)
        done: list[str] = []
        async with trio.open_nursery() as nursery:
            watch = _Watch(systems)
            nursery.start_soon(watch.run)
            for _ in range(faults):
                await trio.sleep(rng.uniform(0.0, 2 * STABLE_AFTER))
                done.append(await _fault(net, systems, rng))
            end = trio.current_time()
            settled = await until(
                lambda: all(s.quorum_state == "ok" for s in systems) and len(running(systems)) == 1,
                SETTLE_S,
            )
            settled_s = trio.current_time() - end if settled else None
            await trio.sleep(2 * STABLE_AFTER)  # and stays so
            if len(running(systems)) != 1:
                settled_s = None
            nursery.cancel_scope.cancel()
    return Outcome(seed, watch.most, watch.none_s, settled_s, tuple(done))


def run_seed(seed: int, faults: int = 6) -> Outcome:
    """One seed's schedule on a fresh simulated network (1 % loss), replayable."""
    net = SimNet(seed, LinkModel(loss=0.01, jitter=0.001))
    with deterministic_scheduling(seed):
        outcome: Outcome = trio.run(
            _run, net, seed, faults, clock=trio.testing.MockClock(autojump_threshold=0)
        )
    return outcome


def _innermost(exc: BaseException) -> BaseException:
    """The first leaf of nested exception groups, and what caused it."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc.__cause__ or exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sims.scenarios.singleton_faults")
    parser.add_argument("--seeds", default="0:20", help="half-open range, e.g. 0:20")
    parser.add_argument("--faults", type=int, default=6, help="faults per seed")
    args = parser.parse_args(argv)
    logging.getLogger("swimactors").setLevel(logging.ERROR)  # a line per decision otherwise
    low, _, high = args.seeds.partition(":")
    seeds = range(int(low), int(high or int(low) + 1))
    clean = double = crashed = 0
    none_s = 0.0
    settle: list[float] = []
    for seed in seeds:
        try:
            outcome = run_seed(seed, args.faults)
        except Exception as exc:  # a node's crash ends the run: count it, go on
            crashed += 1
            print(f"seed {seed}: crashed: {_innermost(exc)!r}", flush=True)
            continue
        none_s += outcome.none_s
        double += outcome.most_running > 1
        if outcome.settled_s is not None:
            settle.append(outcome.settled_s)
        if outcome.clean:
            clean += 1
        else:
            print(
                f"seed {seed}: at most {outcome.most_running} running, settled "
                f"{outcome.settled_s}, faults {'; '.join(outcome.faults)}",
                flush=True,
            )
    print(
        f"clean {clean} of {len(seeds)}; seeds with two running at once: {double}; "
        f"crashed: {crashed}"
    )
    print(f"no instance running: {none_s:.1f} s in total")
    if settle:
        print(f"settled after the last fault: max {max(settle):.1f} s")
    return 0 if clean == len(seeds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
