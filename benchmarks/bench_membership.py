"""Membership in steady state, like for like: swimactors, kinship and a trio floor.

Every node is its own OS process (``benchmarks/membership_node.py``) in its own network
namespace on one bridge (loopback without root).  Per cluster size and profile, the three
kinds run one after another, in a rotated order, ``PAIRS`` times; each run measures, per
node, CPU seconds per minute (``/proc/PID/task/*/schedstat``), wake-ups per second
(voluntary context switches of all its threads) and IP bytes sent per second (its veth's
counter, the same for every library), then ``kill -9`` of one node and the time until
every survivor has declared it dead.  Tables give medians over runs and the median of the
per-pair ratios.

Both libraries use their LAN preset (the same suspicion multiplier, 4, retransmit
multiplier, push/pull and gossip intervals); the ``fast`` profile sets a 0.2 s probe
interval and 0.1 s probe timeout on both, ``fast+key`` also gives both the same key, so
each seals every packet and frame (and runs ``lean-clear`` and ``kinship-clear``, the same
nodes without the key, in the same rotation: the row "lean, keyed/unkeyed CPU vs kinship
keyed/clear" is our sealing's cost over kinship's, per pair). The floor is a trio process
with the wake-ups a SWIM node cannot avoid (a ping to a random peer every probe interval;
an ack to every ping) and no protocol at all; ``epoll`` is the same floor on a bare
``select.epoll`` loop (what any Python process pays for those wake-ups). ``lean`` and
``thread`` are swimactors on the blocking front (``start_node``: the node on its membership
thread, the main thread blocked on events, like kinship's blocking node) with the lean
(``epoll``) and the trio driver; ``swimactors`` is ``open_node`` in a trio program.
``BENCH_MEMBERSHIP_KINDS=floor,lean,kinship`` runs only those kinds.
``BENCH_MEMBERSHIP_BASELINE=DIR`` adds ``baseline``: swimactors run from another checkout
(say, main before a change), so a change is measured against its own past in the same
interleaved run; ``BENCH_MEMBERSHIP_BASELINE_KIND=lean`` has it run that kind (default
``swimactors``).  ``BENCH_MEMBERSHIP_MIXED=1`` (with a baseline) adds ``mixed``: one
cluster whose even-numbered nodes run that kind from this checkout and odd-numbered ones
from the baseline, both halves measured over the same window: a change against its past
under the same load at the same moment (runs one after another differ by more than the
few per cent a change in the core is worth).
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.hosts import Hosts, open_hosts

KINDS = ("floor", "epoll", "swimactors", "lean", "thread", "kinship")
PROFILES = {"fast": (0.2, 0.1, False), "lan": (1.0, 0.5, False), "fast+key": (0.2, 0.1, True)}
"""probe interval, probe timeout, and whether every packet and frame is sealed"""
KEY = "YmVuY2htYXJrIGtleSBvZiB0aGlydHktdHdvIGJ5dGU="
"""32 bytes in base64, the same for both libraries (a benchmark's key, not a secret)."""
FLOORS = ("floor", "epoll")
"""Kinds without a protocol: every node knows every other's address from the start."""
CLEAR = {"lean-clear": "lean", "kinship-clear": "kinship"}
"""In a keyed profile, the same library without the key, in the same interleaved run:
what sealing costs each library, measured under the same load."""
KEYED_OVER_CLEAR = "keyed/clear"
"""Suffix of the pseudo-kinds whose "CPU" is a library's keyed over its unkeyed CPU."""
PAIRS = 3
SAME_CLUSTER = "baseline in the same cluster"
"""The peer name of a mixed cluster's baseline half in the tables."""
ROOT = Path(__file__).resolve().parent.parent


class NodeProcess:
    """One node's process and the lines it has printed (read by a thread)."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def cpu_seconds(self) -> float:
        """CPU time of every thread in nanoseconds' resolution (``/proc/PID/stat`` counts
        10 ms ticks: a third of a quiet node's CPU in a 20 s window)."""
        return (
            sum(int(self._task_file(task, "schedstat").split()[0]) for task in self._tasks()) / 1e9
        )

    def _tasks(self) -> list[str]:
        return os.listdir(f"/proc/{self.process.pid}/task")

    def _task_file(self, task: str, name: str) -> str:
        with open(f"/proc/{self.process.pid}/task/{task}/{name}") as file:
            return file.read()

    def wake_ups(self) -> int:
        """Voluntary context switches of every thread: each is a sleep, then a wake-up."""
        total = 0
        for task in self._tasks():
            for line in self._task_file(task, "status").splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    total += int(line.split()[1])
        return total

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._reader.join(timeout=5)


def _wait(check: Callable[[], bool], timeout: float) -> float | None:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            return None
        time.sleep(0.02)
    return time.monotonic() - start


def _start(kind: str, hosts: Hosts, size: int, profile: str) -> list[NodeProcess]:
    probe, timeout, keyed = PROFILES[profile]
    hosts.renew()
    addresses = [hosts.address(i) for i in range(size)]
    nodes: list[NodeProcess] = []
    for index in range(size):
        first = "-" if index == 0 else addresses[0]
        seed = ",".join(addresses) if kind in FLOORS else first
        from_baseline = kind == "baseline" or (kind == "mixed" and index % 2 == 1)
        command = [
            *hosts.prefix(index),
            sys.executable,
            "-m",
            "benchmarks.membership_node",
            _baseline_kind() if kind in ("baseline", "mixed") else CLEAR.get(kind, kind),
            f"n{index}",
            addresses[index],
            seed,
            str(size),
            str(probe),
            str(timeout),
            *([KEY] if keyed and kind not in FLOORS and kind not in CLEAR else []),
        ]
        nodes.append(NodeProcess(command, _baseline() if from_baseline else ROOT))
        if index == 0:  # the seed listens before anyone joins through it
            time.sleep(0.5)
    return nodes


def _run(kind: str, hosts: Hosts, size: int, profile: str, window: float) -> dict[str, Any]:
    """Start a cluster of ``kind``, measure its steady state, kill one node, time the
    detection; always kills every process."""
    nodes = _start(kind, hosts, size, profile)
    try:

        def ready() -> bool:
            if any(n.process.poll() is not None for n in nodes):
                raise RuntimeError(f"{kind}: a node exited before the cluster formed")
            return all("ready" in n.lines for n in nodes)

        limit = max(120, 3 * size)  # 64 interpreters starting at once take a while
        if _wait(ready, limit) is None:
            raise RuntimeError(f"{kind}: {size} nodes did not all see each other up in {limit} s")
        time.sleep(3 * PROFILES[profile][0] + 3.0)  # the join's gossip drains
        cpu0, wake0, bytes0 = (
            [n.cpu_seconds() for n in nodes],
            [n.wake_ups() for n in nodes],
            hosts.ip_bytes_sent(),
        )
        start = time.monotonic()
        time.sleep(window)
        cpu1, wake1, bytes1 = (
            [n.cpu_seconds() for n in nodes],
            [n.wake_ups() for n in nodes],
            hosts.ip_bytes_sent(),
        )
        elapsed = time.monotonic() - start
        cpu = [(b - a) / elapsed * 60 for a, b in zip(cpu0, cpu1, strict=True)]
        result: dict[str, Any] = {
            "cpu": statistics.median(cpu),
            "wake_ups": statistics.median(
                (b - a) / elapsed for a, b in zip(wake0, wake1, strict=True)
            ),
            "ip_bytes": None
            if bytes0 is None or bytes1 is None
            else statistics.median(
                (b - a) / elapsed for a, b in zip(bytes0[:size], bytes1[:size], strict=True)
            ),
            "detect": None,
        }
        if kind == "mixed":  # this checkout's nodes, and the baseline's beside them
            result["cpu"], result["cpu_baseline"] = map(statistics.median, (cpu[0::2], cpu[1::2]))
        elif kind not in FLOORS:
            result["detect"] = _detect(nodes, profile)
        return result
    finally:
        for node in nodes:
            node.kill()


def _detect(nodes: list[NodeProcess], profile: str) -> float | None:
    """``kill -9`` the last node; seconds until every survivor has printed it down."""
    victim = f"n{len(nodes) - 1}"
    killed = time.time()
    nodes[-1].kill()
    survivors = nodes[:-1]

    def declared() -> list[float]:
        return [
            float(line.split()[2])
            for node in survivors
            for line in node.lines
            if line.startswith(f"down {victim} ")
        ]

    if _wait(lambda: len(declared()) >= len(survivors), 60 * PROFILES[profile][0] + 30) is None:
        return None
    return max(declared()) - killed


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _table(
    size: int, profile: str, runs: dict[str, list[dict[str, Any]]], isolated: bool
) -> list[dict[str, Any]]:
    rows = []
    setting = f"{profile} N={size}"
    where = "one netns each" if isolated else "loopback"
    metrics = [
        ("swimactors", "cpu", "CPU per node", "CPU-s/min", ("kinship", "floor")),
        ("swimactors", "wake_ups", "wake-ups per node", "1/s", ("kinship", "floor")),
        ("swimactors", "ip_bytes", "IP bytes sent per node", "B/s", ("kinship",)),
        ("swimactors", "detect", "kill -9 -> dead everywhere", "s", ("kinship",)),
        ("lean", "cpu", "membership thread, lean: CPU per node", "CPU-s/min", ("kinship", "floor")),
        ("lean", "cpu", "membership thread, lean: CPU per node", "CPU-s/min", ("epoll",)),
        ("epoll", "cpu", "epoll floor (no protocol): CPU per node", "CPU-s/min", ("kinship",)),
        ("lean", "wake_ups", "membership thread, lean: wake-ups", "1/s", ("kinship", "floor")),
        ("lean", "ip_bytes", "membership thread, lean: IP bytes sent", "B/s", ("kinship",)),
        ("lean", "detect", "membership thread, lean: kill -9 -> dead", "s", ("kinship",)),
        ("thread", "cpu", "membership thread, trio: CPU", "CPU-s/min", ("kinship", "floor")),
        ("lean", "cpu", "membership thread, lean: CPU per node", "CPU-s/min", ("thread",)),
        (_baseline_kind(), "cpu", f"{_baseline_kind()}: CPU per node", "CPU-s/min", ("baseline",)),
        ("mixed", "cpu", f"{_baseline_kind()}, mixed cluster: CPU", "CPU-s/min", (SAME_CLUSTER,)),
        ("lean", "cpu", "membership thread, lean, keyed: CPU", "CPU-s/min", ("lean-clear",)),
        ("kinship", "cpu", "kinship, keyed: CPU", "CPU-s/min", ("kinship-clear",)),
        ("lean-clear", "cpu", "lean, unkeyed: CPU", "CPU-s/min", ("kinship-clear",)),
        (
            f"lean {KEYED_OVER_CLEAR}",
            "cpu",
            "lean, keyed/unkeyed CPU",
            "x",
            (f"kinship {KEYED_OVER_CLEAR}",),
        ),
    ]
    if "mixed" in runs:  # the baseline's half of each mixed cluster, as a peer of its own
        runs = {**runs, SAME_CLUSTER: [{"cpu": r["cpu_baseline"]} for r in runs["mixed"]]}
    for clear, kind in CLEAR.items():  # each library's keyed CPU over its own unkeyed, per pair
        if clear in runs and kind in runs:
            cpu = [
                {"cpu": k["cpu"] / c["cpu"]} for k, c in zip(runs[kind], runs[clear], strict=True)
            ]
            runs = {**runs, f"{kind} {KEYED_OVER_CLEAR}": cpu}
    for subject, key, label, unit, peers in metrics:
        if subject not in runs:
            continue
        ours = [r[key] for r in runs[subject]]
        if any(v is None for v in ours):
            continue
        for peer in peers:
            if peer not in runs:
                continue
            theirs = [r[key] for r in runs[peer]]
            if any(v is None for v in theirs):
                continue
            ratios = [a / b if b else float("inf") for a, b in zip(ours, theirs, strict=True)]
            rows.append(
                {
                    "benchmark": f"membership {setting}",
                    "metric": f"{label} vs {peer}",
                    "value": statistics.median(ours),
                    "unit": unit,
                    "floor": statistics.median(theirs),
                    "ratio": statistics.median(ratios),
                    "note": f"{len(ours)} pairs, ours {_list(ours)}, {peer} {_list(theirs)}, "
                    f"ratios {_list(ratios)}; {where}",
                }
            )
    return rows


def _list(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


def measure(
    size: int, profile: str, pairs: int, window: float
) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    kinds = [
        k
        for k in KINDS
        if (k != "kinship" or _version("kinship") != "not installed")
        and k in os.environ.get("BENCH_MEMBERSHIP_KINDS", ",".join(KINDS)).split(",")
    ]
    if os.environ.get("BENCH_MEMBERSHIP_BASELINE"):
        kinds.append("baseline")
        if os.environ.get("BENCH_MEMBERSHIP_MIXED"):
            kinds.append("mixed")
    if PROFILES[profile][2]:
        kinds.extend([clear for clear, kind in CLEAR.items() if kind in kinds])
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    hosts = open_hosts(size)
    isolated = hosts.isolated
    try:
        for pair in range(pairs):
            order = kinds[pair % len(kinds) :] + kinds[: pair % len(kinds)]
            for kind in order:
                print(f"  {profile} N={size} pair {pair + 1}: {kind}", file=sys.stderr, flush=True)
                runs[kind].append(_run(kind, hosts, size, profile, window))
    finally:
        hosts.close()
    return runs, isolated


def run(quick: bool) -> list[dict[str, Any]]:
    plan = [(8, "fast")] if quick else [(8, "fast"), (8, "lan"), (8, "fast+key"), *_large()]
    rows: list[dict[str, Any]] = []
    for size, profile in plan:
        runs, isolated = measure(size, profile, 1 if quick else PAIRS, 8.0 if quick else 20.0)
        rows.extend(_table(size, profile, runs, isolated))
    if rows:
        rows[0]["note"] += f"; kinship {_version('kinship')}"
    return rows


def _baseline() -> Path:
    """The checkout ``baseline`` runs from (``BENCH_MEMBERSHIP_BASELINE``)."""
    return Path(os.environ["BENCH_MEMBERSHIP_BASELINE"]).resolve()


def _baseline_kind() -> str:
    """What ``baseline`` runs (``BENCH_MEMBERSHIP_BASELINE_KIND``, default ``swimactors``)."""
    return os.environ.get("BENCH_MEMBERSHIP_BASELINE_KIND", "swimactors")


def _large() -> list[tuple[int, str]]:
    """``BENCH_MEMBERSHIP_LARGE=32`` adds a fast-profile cluster of that size."""
    size = os.environ.get("BENCH_MEMBERSHIP_LARGE")
    return [(int(size), "fast")] if size else []
