"""Run the atheris target of each decoder for a bounded time: ``python -m fuzz [NAME ...]
[--seconds S] [--runs N]``; exits non-zero on the first decoder that crashes.

Each target runs in its own process (libFuzzer exits when done), starting from the
decoder's valid seeds plus what earlier runs found (kept in ``fuzz/corpus/NAME``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from fuzz.decoders import DECODERS

HERE = Path(__file__).resolve().parent
EACH = [name for name in DECODERS if name != "all"]


FLAGS = ["-timeout=2", "-rss_limit_mb=1024", "-print_final_stats=1"]
"""An input slower than 2 s or a process above 1 GB is a crash, like an exception."""


def run(name: str, seconds: int, runs: int | None, corpus_root: Path) -> int:
    corpus = corpus_root / name
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(DECODERS[name].seeds):
        (corpus / f"seed-{index}").write_bytes(seed)
    flags = [*FLAGS, f"-max_total_time={seconds}"] + ([f"-runs={runs}"] if runs else [])
    with tempfile.TemporaryDirectory() as artifacts:
        command = [sys.executable, "-m", "fuzz.target", name, str(corpus), *flags]
        command.append(f"-artifact_prefix={artifacts}/")
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        stats = dict(
            line[len("stat::") :].replace(" ", "").split(":", 1)
            for line in done.stderr.splitlines()
            if line.startswith("stat::")
        )
        runs_done, peak = stats.get("number_of_executed_units"), stats.get("peak_rss_mb")
        print(f"{name}: exit {done.returncode}, {runs_done} inputs, peak {peak} MB", flush=True)
        if done.returncode != 0:
            print(done.stderr[-4000:], file=sys.stderr)
            for crash in Path(artifacts).iterdir():
                print(f"crashing input {crash.name}: {crash.read_bytes()[:200]!r}", file=sys.stderr)
        return done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fuzz")
    parser.add_argument("names", nargs="*", help=f"decoders (default each of: {', '.join(EACH)})")
    parser.add_argument("--seconds", type=int, default=60, help="time per decoder")
    parser.add_argument("--runs", type=int, default=None, help="inputs per decoder (optional)")
    parser.add_argument("--corpus", default=str(HERE / "corpus"), help="corpus folder")
    args = parser.parse_args()
    unknown = set(args.names) - DECODERS.keys()
    if unknown:
        sys.exit(f"unknown decoder(s) {sorted(unknown)}; have {sorted(DECODERS)}")
    for name in args.names or EACH:
        if run(name, args.seconds, args.runs, Path(args.corpus)):
            sys.exit(1)


if __name__ == "__main__":
    main()
