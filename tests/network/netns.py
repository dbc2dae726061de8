"""Network namespaces for real partition tests: hosts on two bridges joined by one link.

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); :func:`open_topology` skips the test with the
reason where namespaces cannot be created.  Every namespace (and with it every veth and
bridge) is deleted afterwards; nothing is created in the test runner's own namespace.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["Topology", "ip", "open_topology"]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Topology:
    """Namespaces ``<p>h1..h<hosts>`` (10.77.0.1-) and a switch namespace ``<p>sw`` holding
    bridge ``ba`` (the first ``left`` hosts) and ``bb`` (the rest), joined by the veth pair
    ``ab``/``ba2``: :meth:`cut` splits the hosts ``left | hosts - left``, :meth:`block`
    cuts one pair of hosts."""

    def __init__(self, hosts: int, left: int) -> None:
        if not 0 < left < hosts < 250:
            raise ValueError(f"need 0 < left < hosts < 250, got {left=} {hosts=}")
        self.prefix = f"swa{secrets.token_hex(3)}"
        self.switch = f"{self.prefix}sw"
        self.hosts = [f"{self.prefix}h{i}" for i in range(1, hosts + 1)]
        self.left = left
        self.created: list[str] = []

    def address(self, index: int) -> str:
        return f"10.77.0.{index + 1}"

    def build(self) -> None:
        for ns in [self.switch, *self.hosts]:
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        sw = ("-n", self.switch)
        for bridge in ("ba", "bb"):
            ip(*sw, "link", "add", bridge, "type", "bridge")
            ip(*sw, "link", "set", bridge, "up")
        ip(*sw, "link", "add", "ab", "type", "veth", "peer", "name", "ba2")
        ip(*sw, "link", "set", "ab", "master", "ba", "up")
        ip(*sw, "link", "set", "ba2", "master", "bb", "up")
        for index, ns in enumerate(self.hosts):
            port = f"p{index + 1}"
            ip(*sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip(*sw, "link", "set", port, "master", "ba" if index < self.left else "bb", "up")
            ip("-n", ns, "addr", "add", f"{self.address(index)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    def cut(self, up: bool = False) -> None:
        for end in ("ab", "ba2"):
            ip("-n", self.switch, "link", "set", end, "up" if up else "down")

    def block(self, first: int, second: int) -> None:
        """Cut the link between two hosts, both ways, and nothing else (blackhole routes
        in each one's namespace; gone with the namespaces)."""
        for here, there in ((first, second), (second, first)):
            ip("-n", self.hosts[here], "route", "add", "blackhole", f"{self.address(there)}/32")

    def destroy(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        self.created.clear()


@contextmanager
def open_topology(hosts: int, left: int) -> Iterator[Topology]:
    """A built :class:`Topology`, destroyed on exit; skips the test if it cannot be built."""
    topo = Topology(hosts, left)
    try:
        topo.build()
    except (OSError, subprocess.SubprocessError) as exc:
        topo.destroy()
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot create network namespaces here ({exc} {detail.decode().strip()})")
    try:
        yield topo
    finally:
        topo.destroy()
