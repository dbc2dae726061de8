"""A few seconds of coverage-guided fuzzing (atheris) over every decoder at once, so that
``make test`` exercises the targets ``make fuzz`` runs for longer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")


def test_every_decoder_survives_a_short_atheris_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fuzz", "all", "--seconds", "4", "--corpus", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all: exit 0" in done.stdout
