"""Which peer addresses a node talks to: ``Config.cidrs_allowed`` (memberlist's
``CIDRsAllowed``), parsed once and looked up per packet.

The allow-list is a tuple of IP networks; None (the default) allows every address.  It is
enforced in two places, both reading :class:`AllowList`: the socket transports drop a
datagram, and refuse a TCP connection, from a source outside it before anything is read,
opened or decoded (``udp_not_allowed``, ``tcp_not_allowed``); the core refuses a member
whose advertised address is outside it (``rejected_not_allowed``), so it is never probed
or gossiped to.  No I/O here: the core imports it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["AllowList", "Network", "address_in", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CACHED = 4096
"""Source hosts whose verdicts :class:`AllowList` keeps; past it all are forgotten."""


def parse_networks(value: str | Iterable[str | Network]) -> tuple[Network, ...]:
    """Networks from ``"10.0.0.0/8, fd00::/8"`` or an iterable of such strings (or
    networks).  Host bits may be set (``10.1.2.3/8`` is ``10.0.0.0/8``), as Go's
    ``net.ParseCIDR`` takes them; a bare address is its own /32 or /128.  Raises
    ValueError naming the entry that is not a network."""
    items = value.split(",") if isinstance(value, str) else list(value)
    networks: list[Network] = []
    for item in items:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        if not isinstance(item, str):
            raise ValueError(f"not a network: {item!r}")
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a network (CIDR): {item.strip()!r}") from None
    return tuple(networks)


def address_in(networks: tuple[Network, ...], host: str) -> bool:
    """Whether ``host``, an IP literal, lies in one of ``networks`` (an IPv4-mapped IPv6
    address counts as its IPv4 address).  A host name is not: it cannot be checked
    without a lookup, so with an allow-list members must advertise IP literals."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


class AllowList:
    """``Config.cidrs_allowed`` as a per-packet test: ``allowed(host)``, each host's
    verdict computed once (at most :data:`CACHED` kept)."""

    def __init__(self, networks: tuple[Network, ...]) -> None:
        self.networks = networks
        self._verdicts: dict[str, bool] = {}

    def __call__(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            if len(self._verdicts) >= CACHED:
                self._verdicts.clear()
            verdict = self._verdicts[host] = address_in(self.networks, host)
        return verdict
