"""Run every ``benchmarks/bench_*.py`` (or those named), print one table, write JSON.

Each benchmark module exposes ``run(quick: bool) -> list[dict]``; a row has the keys
``benchmark``, ``metric``, ``value``, ``unit`` and optionally ``floor`` (the same quantity
for the baseline measured in the same run), ``ratio`` and ``note``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _modules(names: list[str]) -> list[str]:
    found = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if not names:
        return found
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in names]
    missing = sorted(set(wanted) - set(found))
    if missing:
        sys.exit(f"unknown benchmark(s): {', '.join(missing)}; have {', '.join(found)}")
    return wanted


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for JSON results")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for name in _modules(args.names):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        rows.extend(module.run(quick=args.quick))
    columns = ["benchmark", "metric", "value", "unit", "floor", "ratio", "note"]
    table = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(t[i]) for t in table)) if table else len(c) for i, c in enumerate(columns)
    ]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = out / f"bench-{stamp}.json"
    meta = {"python": platform.python_version(), "machine": platform.machine(), "quick": args.quick}
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\nwrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
