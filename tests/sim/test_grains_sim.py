"""``python -m sims.grains``: its report names what failed and how to replay the seed."""

from __future__ import annotations

from sims.grains import Checks, replay_command, report


def test_a_failing_seed_prints_its_findings_and_the_command_that_replays_it() -> None:
    checks = Checks(after_heal=["after the heal: {'g1': 2} activations"], acked=3, answered=5)
    text = report(7, "ab" * 32, checks)
    assert text.splitlines()[0].endswith("FAILED")
    assert "  after the heal: {'g1': 2} activations" in text.splitlines()
    assert text.splitlines()[-1] == "  replay: python -m sims.grains --seed 7"
    assert replay_command(7) == "python -m sims.grains --seed 7"


def test_a_passing_seed_is_one_line() -> None:
    assert report(1, "cd" * 32, Checks(acked=2, answered=4)).endswith(": ok")
