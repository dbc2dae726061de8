"""Seeds from DNS: ``--join dns://NAME[:PORT]`` (A/AAAA records) and ``dns+srv://NAME``
(SRV records, each with its own port; e.g. a Kubernetes headless service's
``_gossip._udp.swim.default.svc.cluster.local``).

A name is resolved again on every join attempt, so pods that come and go are found as
they are now, not as they were when the agent started.  Lookups go through dnspython in a
worker thread (the resolver of ``/etc/resolv.conf``, or ``nameserver`` for tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import dns.exception
import dns.rdatatype
import dns.resolver
import trio

from ..logs import logger
from ..membership.node import Node
from ..membership.types import Address, format_address, parse_address

__all__ = ["DEFAULT_PORT", "DnsSeed", "is_dns_seed", "join_until_joined", "parse_dns_seed"]

log = logger("swimactors.agent.discovery")
DEFAULT_PORT = 7946
LOOKUP_TIMEOUT = 3.0
FIRST_RETRY = 1.0
MAX_RETRY = 30.0
MAX_SEEDS = 64
"""Addresses taken from one answer (a large service is joined through a few of them)."""


@attrs.frozen
class DnsSeed:
    """A seed given as a DNS name: A/AAAA records at ``port``, or SRV records (``srv``)."""

    name: str
    srv: bool
    port: int = DEFAULT_PORT


def is_dns_seed(text: str) -> bool:
    """Whether a ``--join`` value is a ``dns://`` or ``dns+srv://`` seed."""
    return text.startswith(("dns://", "dns+srv://"))


def parse_dns_seed(text: str) -> DnsSeed:
    """``dns://NAME[:PORT]`` or ``dns+srv://NAME``; ValueError for anything else."""
    scheme, _, rest = text.partition("://")
    if scheme not in ("dns", "dns+srv") or not rest or "/" in rest:
        raise ValueError(f"expected dns://NAME[:PORT] or dns+srv://NAME, got {text!r}")
    if scheme == "dns+srv":
        return DnsSeed(rest.rstrip("."), srv=True, port=0)
    name, sep, port = rest.rpartition(":")
    if sep and port.isdigit() and 0 < int(port) < 65536:
        return DnsSeed(name, srv=False, port=int(port))
    return DnsSeed(rest, srv=False)


def _resolver(nameserver: Address | None) -> dns.resolver.Resolver:
    if nameserver is None:
        return dns.resolver.Resolver()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nameserver[0]]
    resolver.port = nameserver[1]
    return resolver


def _lookup(seed: DnsSeed, nameserver: Address | None) -> list[Address]:
    resolver = _resolver(nameserver)
    resolver.lifetime = LOOKUP_TIMEOUT
    found: list[Address] = []
    try:
        if seed.srv:
            answer = resolver.resolve(seed.name, dns.rdatatype.SRV, search=True)
            for record in sorted(answer, key=lambda r: (r.priority, -r.weight)):
                target = record.target.to_text().rstrip(".")
                for host in _addresses(resolver, target):
                    found.append((host, record.port))
        else:
            found = [(host, seed.port) for host in _addresses(resolver, seed.name)]
    except dns.exception.DNSException as exc:
        log.warning("cannot resolve %s: %s", seed.name, exc)
    return list(dict.fromkeys(found))[:MAX_SEEDS]


def _addresses(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    hosts: list[str] = []
    for kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
        try:
            answer = resolver.resolve(name, kind, search=True)
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            continue
        hosts.extend(record.to_text() for record in answer)
    return hosts


async def resolve_seeds(seeds: Sequence[str], nameserver: Address | None = None) -> list[Address]:
    """Every seed as addresses: ``host:port`` ones as they are, DNS ones looked up now."""
    found: list[Address] = []
    for text in seeds:
        if is_dns_seed(text):
            seed = parse_dns_seed(text)
            found += await trio.to_thread.run_sync(
                _lookup, seed, nameserver, abandon_on_cancel=True
            )
        else:
            found.append(parse_address(text))
    return found


async def join_until_joined(
    node: Node, seeds: Sequence[str], nameserver: Address | None = None
) -> None:
    """Resolve ``seeds`` and join through them, again with backoff (resolving anew each
    time) until this node sees another live member."""
    delay = FIRST_RETRY
    while not any(m.name != node.name and m.status.is_alive for m in node.members()):
        addresses = [a for a in await resolve_seeds(seeds, nameserver) if a != node.address]
        if addresses:
            log.info("joining through %s", ", ".join(format_address(a) for a in addresses))
            node.join(addresses)
        await trio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY)
