"""One membership node in its own process, for ``bench_membership``: a swimactors node, a
kinship node, or the trio floor (the wake-ups a SWIM node cannot avoid, with no protocol).

    python -m benchmarks.membership_node KIND NAME BIND SEED NODES PROBE TIMEOUT [KEY]

``KIND`` is ``swimactors`` (``open_node`` in a trio program), ``lean`` or ``thread`` (the
blocking front: the membership thread on the lean or the trio driver), ``kinship``, or
a floor: ``floor`` on trio, ``epoll`` on a bare ``select.epoll`` loop; ``SEED`` is ``-``
for the first node (a floor takes the comma-separated addresses of every floor node
instead); ``KEY``, a base64 32-byte key, has each library seal every packet and frame
its own way.  The node prints ``ready`` once it sees ``NODES`` members up, then
``down NAME WALLCLOCK`` for each member it declares dead, and nothing else: it reads no
clock and polls nothing once ready, so the steady state the benchmark measures is the
library's own.
"""

from __future__ import annotations

import logging
import os
import random
import select
import socket
import sys
import time

import trio


def _say(line: str) -> None:
    print(line, flush=True)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def _swimactors(
    name: str, bind: str, seed: str, nodes: int, probe: float, timeout: float, key: str | None
) -> None:
    from swimactors.membership import Config, MemberDown, Status, open_node
    from swimactors.security import Keyring

    config = Config.lan().replace(
        probe_interval=probe,
        probe_timeout=timeout,
        keyring=None if key is None else Keyring(key),
    )
    seeds = [] if seed == "-" else [seed]
    async with open_node(name=name, bind=bind, seeds=seeds, config=config) as node:
        with node.events() as events:
            while sum(m.status is Status.UP for m in node.members()) < nodes:
                await trio.sleep(0.1)
            _say("ready")
            async for event in events:
                if isinstance(event, MemberDown):
                    _say(f"down {event.member.name} {time.time():.6f}")


def _thread(
    driver: str,
    name: str,
    bind: str,
    seed: str,
    nodes: int,
    probe: float,
    timeout: float,
    key: str | None,
) -> None:
    """A node on the blocking front: its membership thread on ``driver`` (lean or trio),
    the main thread blocked reading events, as kinship's node below."""
    os.environ["SWIMACTORS_MEMBERSHIP_DRIVER"] = driver
    from swimactors.membership import Config, MemberDown, Status, start_node
    from swimactors.security import Keyring

    config = Config.lan().replace(
        probe_interval=probe,
        probe_timeout=timeout,
        keyring=None if key is None else Keyring(key),
    )
    seeds = [] if seed == "-" else [seed]
    with start_node(name=name, bind=bind, seeds=seeds, config=config) as node:
        events = node.events()
        while sum(m.status is Status.UP for m in node.members()) < nodes:
            time.sleep(0.1)
        _say("ready")
        for event in events:
            if isinstance(event, MemberDown):
                _say(f"down {event.member.name} {time.time():.6f}")


def _kinship(
    name: str, bind: str, seed: str, nodes: int, probe: float, timeout: float, key: str | None
) -> None:
    import kinship
    from kinship.blocking import Cluster

    config = kinship.Config.lan(
        name=name,
        bind=bind,
        seeds=[] if seed == "-" else [seed],
        probe_interval=probe,
        probe_timeout=timeout,
        **({"insecure_plaintext": True} if key is None else {"keys": [key]}),
    )
    with Cluster(config) as cluster:
        events = cluster.events()
        while sum(m.state is kinship.State.ALIVE for m in cluster.members()) < nodes:
            time.sleep(0.1)
        _say("ready")
        for event in events:
            if isinstance(event, kinship.MemberDead):
                _say(f"down {event.member.name} {time.time():.6f}")


async def _floor(name: str, bind: str, peers: str, probe: float) -> None:
    """Every probe interval a ping to a random peer; every ping answered with an ack."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    udp.bind(_host_port(bind))
    others = [_host_port(p) for p in peers.split(",") if p != bind]
    ping, ack = b"p" * 40, b"a" * 40  # about a swimactors ping and ack

    async def answer() -> None:
        while True:
            await trio.lowlevel.wait_readable(udp)
            while True:
                try:
                    data, source = udp.recvfrom(2048)
                except BlockingIOError:
                    break
                if data[:1] == b"p":
                    udp.sendto(ack, source)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer)
        _say("ready")
        await trio.sleep(random.random() * probe)
        while True:
            udp.sendto(ping, random.choice(others))
            await trio.sleep(probe)


def _epoll_floor(name: str, bind: str, peers: str, probe: float) -> None:
    """The floor's wake-ups on a bare ``select.epoll`` loop: what any Python process
    pays for them, without trio."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    udp.bind(_host_port(bind))
    others = [_host_port(p) for p in peers.split(",") if p != bind]
    ping, ack = b"p" * 40, b"a" * 40
    poller = select.epoll()
    poller.register(udp.fileno(), select.EPOLLIN)
    _say("ready")
    due = time.monotonic() + random.random() * probe
    while True:
        if poller.poll(max(0.0, due - time.monotonic())):
            data, source = udp.recvfrom(2048)
            if data[:1] == b"p":
                udp.sendto(ack, source)
        if time.monotonic() >= due:
            udp.sendto(ping, random.choice(others))
            due += probe


def main(argv: list[str]) -> None:
    logging.disable(logging.WARNING)  # the plaintext warning, once per node
    kind, name, bind, seed, nodes, probe, timeout, *rest = argv
    key = rest[0] if rest else None
    if kind == "swimactors":
        trio.run(_swimactors, name, bind, seed, int(nodes), float(probe), float(timeout), key)
    elif kind == "kinship":
        _kinship(name, bind, seed, int(nodes), float(probe), float(timeout), key)
    elif kind in ("lean", "thread"):
        driver = "lean" if kind == "lean" else "trio"
        _thread(driver, name, bind, seed, int(nodes), float(probe), float(timeout), key)
    elif kind == "floor":
        trio.run(_floor, name, bind, seed, float(probe))
    elif kind == "epoll":
        _epoll_floor(name, bind, seed, float(probe))
    else:
        sys.exit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
