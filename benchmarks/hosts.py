"""Where benchmark nodes run: one network namespace per node on one bridge, so the kernel
counts every node's IP bytes the same way whatever library sends them (its veth's bytes,
less the Ethernet headers); without root, loopback ports and no byte counts.

Every host knows every other host's MAC address from the start (permanent neighbour
entries): the kernel's ARP table is one for all namespaces, and 64 hosts learning 63
neighbours each overflowed its default limit of 1,024 dynamic entries ("neighbor table
overflow"), dropping packets until clusters of 64 could not form.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess

__all__ = ["Hosts", "open_hosts"]


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10, text=True)
    return done.stdout


class Hosts:
    """``count`` places to run a node: :meth:`address` to bind, :meth:`prefix` to start the
    process there, :meth:`ip_bytes_sent` to read what it sent (None on loopback)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.tag = f"swb{secrets.token_hex(3)}"
        self.namespaces: list[str] = []
        self._ports = _free_ports(count)
        self._port = 7946

    def renew(self) -> None:
        """New ports for the next run: the last one's may linger in TIME_WAIT."""
        self._ports = _free_ports(self.count)
        self._port += 1

    @property
    def isolated(self) -> bool:
        return bool(self.namespaces)

    def address(self, index: int) -> str:
        if self.isolated:
            return f"{_ip_of(index)}:{self._port}"
        return f"127.0.0.1:{self._ports[index]}"

    def prefix(self, index: int) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[index + 1]] if self.isolated else []

    def ip_bytes_sent(self) -> list[int] | None:
        """IP bytes each host has sent so far: its veth's count, less 14 bytes a frame."""
        if not self.isolated:
            return None
        links = json.loads(_ip("-n", self.namespaces[0], "-j", "-s", "link", "show"))
        received = {
            link["ifname"]: link["stats64"]["rx"]["bytes"] - 14 * link["stats64"]["rx"]["packets"]
            for link in links
        }  # the switch end of a host's veth receives what the host sends
        return [received[f"p{index}"] for index in range(self.count)]

    def build(self) -> None:
        """Make the namespaces (raises where this process may not; call :meth:`close`)."""
        switch = f"{self.tag}sw"
        self.namespaces.append(switch)
        _ip("netns", "add", switch)
        _ip("-n", switch, "link", "add", "name", "bridge0", "type", "bridge")
        _ip("-n", switch, "link", "set", "bridge0", "up")
        for index in range(self.count):
            host = f"{self.tag}h{index}"
            _ip("netns", "add", host)
            self.namespaces.append(host)
            _ip("-n", host, "link", "set", "lo", "up")
            port = f"p{index}"
            _ip(
                "-n",
                switch,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "address",
                _mac_of(index),
                "netns",
                host,
            )
            _ip("-n", switch, "link", "set", port, "master", "bridge0", "up")
            _ip("-n", host, "addr", "add", f"{_ip_of(index)}/16", "dev", "eth0")
            _ip("-n", host, "link", "set", "eth0", "up")
        for index in range(self.count):
            neighbours = "".join(
                f"neigh replace {_ip_of(other)} lladdr {_mac_of(other)} dev eth0 nud permanent\n"
                for other in range(self.count)
                if other != index
            )
            subprocess.run(
                ["ip", "-n", self.namespaces[index + 1], "-batch", "-"],
                input=neighbours,
                check=True,
                capture_output=True,
                timeout=10,
                text=True,
            )

    def close(self) -> None:
        for namespace in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        self.namespaces.clear()


def _ip_of(index: int) -> str:
    return f"10.78.{index // 250}.{index % 250 + 1}"


def _mac_of(index: int) -> str:
    return f"02:78:00:00:{index // 250:02x}:{index % 250 + 1:02x}"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def open_hosts(count: int) -> Hosts:
    """Namespaces when this process may make them, else loopback (say which in the report)."""
    hosts = Hosts(count)
    try:
        hosts.build()
    except (OSError, subprocess.SubprocessError):
        hosts.close()
    return hosts
