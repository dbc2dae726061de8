"""Membership on loopback: eight ``swimactors agent`` processes, 0.2 s probes.

Measures what issue 3 compares with kinship and swim-protocol on this machine: time to
converge, time from ``kill -9`` of one agent until every survivor's ``/v1/members`` says
DOWN, steady CPU seconds per node per minute, and bytes sent per node per second.  The
reference figures are quoted from the issue (measured there, not in this run).
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
from typing import Any

import trio

from swimactors.agent.cluster import AgentProcess, LocalCluster, open_local_cluster, wait_until
from swimactors.agent.http import HttpError, http_get
from swimactors.cli import config_from

NODES = 8
PROFILE = "lan"
OVERRIDES = {"probe_interval": 0.2, "probe_timeout": 0.1}
CONFIG = config_from(PROFILE, [(k, str(v)) for k, v in OVERRIDES.items()])
REFERENCE = {  # issue 3: kinship (Rust, Lifeguard) / swim-protocol (pure Python, 1 s probe)
    "converge": "kinship 1.2 s, swim-protocol 3.6 s",
    "detect": "kinship 0.87 s, swim-protocol 8.0 s",
    "cpu": "kinship 0.067, swim-protocol 0.32",
    "bytes": "kinship 595 B/s, swim-protocol 1,580 B/s",
}
_SENT = re.compile(r"^swimactors_(udp|tcp)_bytes_sent_total (\d+)$", re.MULTILINE)
POLL = 0.02


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _bytes_sent(agent: AgentProcess) -> int:
    status, body = await http_get(agent.http, "/metrics")
    if status != 200:
        raise HttpError(f"{agent.name}: HTTP {status}")
    return sum(int(m.group(2)) for m in _SENT.finditer(body.decode()))


async def _sees(agents: list[AgentProcess], member: str, status: str) -> bool:
    for agent in agents:
        statuses = await agent.statuses()
        if statuses is None or statuses.get(member) != status:
            return False
    return True


async def _all_up(agents: list[AgentProcess]) -> bool:
    for agent in agents:
        statuses = await agent.statuses()
        if statuses is None or sum(s == "up" for s in statuses.values()) != len(agents):
            return False
    return True


async def _start(cluster: LocalCluster) -> tuple[list[AgentProcess], float]:
    first = await cluster.start("n0")
    agents = [first]

    async def start(name: str) -> None:
        agents.append(await cluster.start(name, join=[first.gossip]))

    async with trio.open_nursery() as nursery:
        for i in range(1, NODES):
            nursery.start_soon(start, f"n{i}")
    took = await wait_until(lambda: _all_up(agents), 60, POLL)
    if took is None:
        raise RuntimeError("the benchmark cluster did not converge within 60 s")
    return agents, took


async def _steady(agents: list[AgentProcess], window: float) -> tuple[float, float]:
    """Median CPU-s per node per minute and bytes sent per node per second.

    The HTTP reads of the byte counters happen outside the CPU window (each costs the
    agent a request's worth of CPU), and nothing else asks the agents anything during it.
    """
    sent0 = [await _bytes_sent(a) for a in agents]
    bytes_start = trio.current_time()
    cpu0 = [_cpu_seconds(a.pid) for a in agents]
    start = trio.current_time()
    await trio.sleep(window)
    cpu1 = [_cpu_seconds(a.pid) for a in agents]
    elapsed = trio.current_time() - start
    sent1 = [await _bytes_sent(a) for a in agents]
    bytes_elapsed = trio.current_time() - bytes_start
    cpu = statistics.median((b - a) / elapsed * 60 for a, b in zip(cpu0, cpu1, strict=True))
    rate = statistics.median((b - a) / bytes_elapsed for a, b in zip(sent0, sent1, strict=True))
    return cpu, rate


async def _detect(cluster: LocalCluster, agents: list[AgentProcess], victim: str) -> float:
    """Kill ``victim`` with SIGKILL; seconds until every survivor lists it DOWN."""
    survivors = [a for a in agents if a.name != victim]
    cluster.kill(victim)
    took = await wait_until(lambda: _sees(survivors, victim, "down"), 60, POLL)
    if took is None:
        raise RuntimeError(f"{victim} was not marked down everywhere within 60 s")
    return took


async def _floor_node(index: int, ports: list[int]) -> None:
    """The CPU floor: the same wake-ups as a SWIM node (ping a random peer every probe
    interval, answer pings, a gossip timer) on trio, with no protocol work at all."""
    interval = CONFIG.probe_interval
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    udp.bind(("127.0.0.1", ports[index]))
    peers = [("127.0.0.1", p) for i, p in enumerate(ports) if i != index]

    async def answer() -> None:
        while True:
            await trio.lowlevel.wait_readable(udp)
            while True:
                try:
                    data, source = udp.recvfrom(2048)
                except BlockingIOError:
                    break
                if data.startswith(b"p"):
                    udp.sendto(b"a" * 20, source)

    async def tick() -> None:
        while True:
            await trio.sleep(CONFIG.gossip_interval)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer)
        nursery.start_soon(tick)
        while True:
            await trio.sleep(interval)
            udp.sendto(b"p" * 30, random.choice(peers))


async def _floor(window: float) -> float:
    """Median CPU-s per minute of :func:`_floor_node` processes, one per agent."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(NODES)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in probes]
    for probe in probes:
        probe.close()
    command = [sys.executable, "-m", "benchmarks.bench_membership", "floor"]
    procs = [subprocess.Popen([*command, str(i), ",".join(map(str, ports))]) for i in range(NODES)]
    try:
        await trio.sleep(2.0)
        cpu0 = [_cpu_seconds(p.pid) for p in procs]
        await trio.sleep(window)
        cpu1 = [_cpu_seconds(p.pid) for p in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    return statistics.median((b - a) / window * 60 for a, b in zip(cpu0, cpu1, strict=True))


async def _measure(quick: bool) -> dict[str, Any]:
    trials = 1 if quick else 3
    window = 10.0 if quick else 30.0
    converges = []
    for _ in range(trials - 1):  # fresh clusters: convergence varies from start to start
        async with open_local_cluster(profile=PROFILE, overrides=OVERRIDES) as cluster:
            converges.append((await _start(cluster))[1])
    async with open_local_cluster(profile=PROFILE, overrides=OVERRIDES) as cluster:
        agents, converge = await _start(cluster)
        converges.append(converge)
        await trio.sleep(3.0)  # let join traffic settle before measuring the steady state
        cpu, rate = await _steady(agents, window)
        detections = []
        for trial in range(trials):
            victim = agents[1 + trial]
            detections.append(await _detect(cluster, agents, victim.name))
            port = victim.gossip[1]
            await victim.process.wait()
            agents[1 + trial] = await cluster.start(victim.name, join=[agents[0].gossip], port=port)
            if await wait_until(lambda: _all_up(agents), 60, 0.1) is None:
                raise RuntimeError(f"{victim.name} did not rejoin")
        for agent in agents:
            agent.process.send_signal(signal.SIGTERM)
    floor = await _floor(window)
    return {
        "floor": floor,
        "converge": statistics.median(converges),
        "converges": converges,
        "detect": statistics.median(detections),
        "detections": detections,
        "cpu": cpu,
        "bytes": rate,
        "window": window,
    }


def run(quick: bool) -> list[dict[str, Any]]:
    result = trio.run(_measure, quick)
    low, high = CONFIG.suspicion_timeouts(NODES)
    bound = high + 3 * CONFIG.probe_interval + 1.0
    setting = f"{NODES} agent processes, profile {PROFILE}, probe 0.2 s / timeout 0.1 s"
    detections = ", ".join(f"{d:.2f}" for d in result["detections"])
    converges = ", ".join(f"{d:.2f}" for d in result["converges"])
    return [
        {
            "benchmark": "membership",
            "metric": "converge (all see all up)",
            "value": result["converge"],
            "unit": "s",
            "note": f"median of [{converges}], from the last agent listening; {setting}; "
            f"{REFERENCE['converge']}",
        },
        {
            "benchmark": "membership",
            "metric": "kill -9 -> DOWN everywhere",
            "value": result["detect"],
            "unit": "s",
            "note": f"median of [{detections}]; bound {bound:.1f} s (suspicion {low:.1f}-"
            f"{high:.1f} s); {REFERENCE['detect']}",
        },
        {
            "benchmark": "membership",
            "metric": "CPU per node per minute",
            "value": result["cpu"],
            "unit": "CPU-s",
            "floor": result["floor"],
            "ratio": result["cpu"] / result["floor"],
            "note": f"median over nodes, {result['window']:.0f} s window; floor: trio processes "
            f"with the same wake-ups and no protocol; {REFERENCE['cpu']}",
        },
        {
            "benchmark": "membership",
            "metric": "bytes sent per node per second",
            "value": result["bytes"],
            "unit": "B/s",
            "note": f"UDP + TCP payload, median over nodes; {REFERENCE['bytes']}",
        },
    ]


if __name__ == "__main__":  # python -m benchmarks.bench_membership floor INDEX PORTS
    trio.run(_floor_node, int(sys.argv[2]), [int(p) for p in sys.argv[3].split(",")])
