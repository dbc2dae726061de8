"""The sims/ suite at small sizes, the runner's JSON contract, and determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sims.__main__ import main
from sims.common import Params
from sims.report import plot, sweep_table
from sims.runner import check_determinism, run_one
from sims.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = (
    "scenario",
    "nodes",
    "seed",
    "trace_hash",
    "sim_seconds",
    "wall_seconds",
    "false_positives",
    "false_suspicions",
)


def run_cli(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [sys.executable, "-m", "sims", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_passes_its_verdict_at_small_size(name: str) -> None:
    scenario = SCENARIOS[name]
    report = run_one(name, Params(nodes=scenario.small, seed=1))
    assert scenario.verdict(report) == []
    assert report["trace_hash"] and report["sim_seconds"] > 0
    assert report["false_positives"] == 0


def test_crash_detection_is_within_the_contract_bound() -> None:
    report = run_one("crash", Params(nodes=20, seed=4))
    assert 0 < report["first_suspect_s"] <= report["first_down_s"] <= report["all_down_s"]
    assert report["all_down_s"] <= report["detection_bound_s"]
    assert report["dissemination_rounds"] >= 0


def test_run_json_holds_the_contract_fields() -> None:
    done = run_cli("run", "crash", "--nodes", "8", "--seed", "3", "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert set(CONTRACT) <= set(report)
    assert {"first_suspect_s", "first_down_s", "all_down_s"} <= set(report)
    assert (report["scenario"], report["nodes"], report["seed"]) == ("crash", 8, 3)
    joined = json.loads(run_cli("run", "join", "--nodes", "5", "--json").stdout)
    assert joined["converged_s"] > 0


def test_same_seed_replays_across_processes_and_hash_seeds() -> None:
    """Replay must not depend on Python's per-process string hashing."""
    first = json.loads(run_cli("run", "crash", "--nodes", "8", "--json", hash_seed="1").stdout)
    again = json.loads(run_cli("run", "crash", "--nodes", "8", "--json", hash_seed="2").stdout)
    assert first["trace_hash"] == again["trace_hash"]


def test_two_runs_match_and_two_seeds_differ() -> None:
    hashes = [run_one("crash", Params(nodes=10, seed=s))["trace_hash"] for s in (5, 5, 6)]
    assert hashes[0] == hashes[1] != hashes[2]
    result = check_determinism("partition-heal", Params(nodes=6, seed=2))
    assert result["deterministic"] and result["first_divergence"] is None
    assert result["events"] > 100


def test_replay_runs_a_schedule_and_rejects_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    schedule = '[{"at":1.0,"op":"crash","node":"n1"},{"at":2.0,"op":"partition","group":["n2"]}]'
    assert main(["replay", "--seed", "4", "--nodes", "5", "--schedule", schedule]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    assert main(["replay", "--seed", "4", "--schedule", '[{"at":1,"op":"explode"}]']) == 2
    assert "bad schedule" in capsys.readouterr().err


def test_sweep_prints_one_row_per_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "crash", "--nodes", "5,10", "--seeds", "0:2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("nodes | runs | log2(n)")
    assert [line.split(" | ")[:2] for line in table[1:]] == [["5", "2"], ["10", "2"]]


def test_plot_without_matplotlib_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    message = plot([], "unused.png")
    assert message is not None and "swimactors[plot]" in message


def test_sweep_table_reports_medians_and_p99() -> None:
    rows = [{"nodes": 10, "all_down_s": float(v), "load": {}} for v in (1, 2, 3)]
    table = sweep_table(rows)
    assert "2.000 (p99 3.000)" in table


def test_sweep_table_sums_the_false_deaths_over_the_runs() -> None:
    rows = [{"nodes": 50, "false_deaths_of_healthy": v, "load": {}} for v in (0, 2, 1)]
    assert "1.000 (p99 2.000, sum 3)" in sweep_table(rows)


def test_lifeguard_keeps_a_slow_member_from_accusing_healthy_peers() -> None:
    """Lifeguard's claim, in the slow-node scenario: with local health awareness the
    starved member stops suspecting peers that did answer; without it, it keeps on."""
    on = run_one("slow-node", Params(nodes=8, seed=2, duration=100.0))
    off = run_one("slow-node", Params(nodes=8, seed=2, duration=100.0, lifeguard=False))
    assert on["false_positives"] == 0
    assert off["false_suspicions"] > 5 * max(1, on["false_suspicions"])
    assert off["false_positives"] >= on["false_positives"]


def test_loss_reports_the_suspicions_at_their_source() -> None:
    """One failed probe's suspicion reaches most nodes: ``false_suspicions`` counts each
    of them, ``suspicions_raised`` the probes that failed."""
    report = run_one("loss", Params(nodes=10, seed=0, loss=0.3, duration=30.0))
    assert 0 < report["suspicions_raised"] < report["false_suspicions"]
