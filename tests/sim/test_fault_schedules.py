"""Hypothesis draws fault schedules (crashes, restarts, partitions, heals, loss bursts,
pauses, slow nodes); after each, once faults stop and the bound passes, the invariants
of swimactors.sim.checks must hold.  A failure names the replay command."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from swimactors.sim.schedule import Step, dumps, run_schedule

NODES = 5
NAMES = [f"n{i}" for i in range(NODES)]
gaps = st.floats(min_value=0.0, max_value=8.0, allow_nan=False)
names = st.sampled_from(NAMES)


class FaultSchedule(RuleBasedStateMachine):
    """Each rule appends one timed fault; teardown runs the schedule and checks it."""

    def __init__(self) -> None:
        super().__init__()
        self.seed = 0
        self.steps: list[Step] = []
        self.clock = 0.0

    def _add(self, gap: float, op: str, **fields: object) -> None:
        self.clock = round(self.clock + gap, 3)
        self.steps.append(Step(self.clock, op, **fields))  # type: ignore[arg-type]

    @initialize(seed=st.integers(min_value=0, max_value=2**16))
    def choose_seed(self, seed: int) -> None:
        self.seed = seed

    @rule(gap=gaps, node=names)
    def crash(self, gap: float, node: str) -> None:
        self._add(gap, "crash", node=node)

    @rule(gap=gaps, node=names)
    def restart(self, gap: float, node: str) -> None:
        self._add(gap, "restart", node=node)

    @rule(gap=gaps, side=st.lists(names, min_size=1, max_size=NODES - 1, unique=True))
    def partition(self, gap: float, side: list[str]) -> None:
        self._add(gap, "partition", group=tuple(sorted(side)))

    @rule(gap=gaps)
    def heal(self, gap: float) -> None:
        self._add(gap, "heal")

    @rule(gap=gaps, loss=st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    def loss_burst(self, gap: float, loss: float) -> None:
        self._add(gap, "loss", value=loss)

    @rule(gap=gaps, node=names, seconds=st.floats(min_value=0.5, max_value=15.0))
    def pause(self, gap: float, node: str, seconds: float) -> None:
        self._add(gap, "pause", node=node, value=round(seconds, 3))

    @rule(gap=gaps, node=names, lag=st.sampled_from([0.0, 0.3, 1.0]))
    def slow(self, gap: float, node: str, lag: float) -> None:
        self._add(gap, "slow", node=node, value=lag)

    def teardown(self) -> None:
        outcome = run_schedule(self.seed, NODES, self.steps)
        assert not outcome.problems, (
            f"invariants broken: {outcome.problems}\n"
            f"replay: python -m sims replay --seed {self.seed} --nodes {NODES} "
            f"--schedule '{dumps(self.steps)}'"
        )


FaultSchedule.TestCase.settings = settings(max_examples=40, stateful_step_count=8, deadline=None)
TestFaultSchedule = FaultSchedule.TestCase


def test_an_empty_schedule_checks_for_false_positives_too() -> None:
    outcome = run_schedule(3, NODES, [])
    assert outcome.problems == []
    assert outcome.metrics.false_positives == []


def test_the_liveness_mode_keeps_members_starved_and_bounds_detection() -> None:
    """Liveness mode: n1 stays starved after the faults stop, and the crash of n4 must
    reach every running view within detection_bound, or the run fails as a liveness
    problem (a starved member that drew every probe hid the crash for good, issue 13)."""
    steps = [Step(2.0, "crash", "n4"), Step(3.0, "pause", "n2", value=2.0)]
    outcome = run_schedule(5, NODES, steps, starved=1)
    assert outcome.problems == []
    assert outcome.world.node("n1").cpu is not None  # still starved at the check
    assert outcome.world.node("n2").cpu is None


def test_a_failed_swarm_run_prints_its_replay_command() -> None:
    from sims.__main__ import replay_command

    row = {"seed": 7, "nodes": 5, "start": "formed", "starved": 2, "schedule": "[]"}
    assert replay_command(row) == (
        "python -m sims replay --seed 7 --nodes 5 --swarm --formed --starved 2 --schedule '[]'"
    )
