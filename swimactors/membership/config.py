"""Membership configuration: memberlist's knobs, in float seconds, with three presets.

Defaults are HashiCorp memberlist's ``DefaultLANConfig`` / ``DefaultWANConfig`` /
``DefaultLocalConfig`` (the names are memberlist's, in snake_case); the reconnect and reap
settings follow Serf's ``reconnect_interval`` and ``reconnect_timeout`` idea.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from ..errors import SwimactorsError
from ..security import Keyring, TlsConfig
from ..wire import DEFAULT_PACKET_BUDGET
from .allowlist import AllowList, Network, address_in, parse_networks

__all__ = ["Config", "ConfigError"]


class ConfigError(SwimactorsError, ValueError):
    """A configuration value is out of range; the message names the field."""


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"Config.{attribute.name} must be a positive number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"Config.{attribute.name} must be finite, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"Config.{attribute.name} must be a number >= 0, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"Config.{attribute.name} must be finite, got {value!r}")


def _non_negative_int(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"Config.{attribute.name} must be an integer >= 0, got {value!r}")


def _at_least_one(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"Config.{attribute.name} must be an integer >= 1, got {value!r}")


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"Config.{attribute.name} must be True or False, got {value!r}")


def _keyring(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Keyring):
        raise ConfigError(f"Config.keyring must be a Keyring or None, got {value!r}")


def _tls(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, TlsConfig):
        raise ConfigError(f"Config.tls must be a TlsConfig or None, got {value!r}")


def _label(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or len(value.encode()) > 255:
        raise ConfigError(f"Config.{attribute.name} must be a string of at most 255 bytes")


def _networks(value: Any) -> tuple[Network, ...] | None:
    """``cidrs_allowed`` from None, ``"10.0.0.0/8,fd00::/8"`` or an iterable of networks."""
    if value is None:
        return None
    try:
        networks = parse_networks(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Config.cidrs_allowed: {exc}") from None
    if not networks:
        raise ConfigError(
            "Config.cidrs_allowed must name at least one network (None allows every address)"
        )
    return networks


@attrs.frozen(kw_only=True)
class Config:
    """Every timing and sizing knob of the SWIM core; see docs/configuration.md."""

    probe_interval: float = attrs.field(default=1.0, validator=_positive)
    probe_timeout: float = attrs.field(default=0.5, validator=_positive)
    indirect_checks: int = attrs.field(default=3, validator=_non_negative_int)
    suspicion_mult: int = attrs.field(default=4, validator=_at_least_one)
    suspicion_max_timeout_mult: int = attrs.field(default=6, validator=_at_least_one)
    retransmit_mult: int = attrs.field(default=4, validator=_at_least_one)
    gossip_interval: float = attrs.field(default=0.2, validator=_positive)
    gossip_nodes: int = attrs.field(default=3, validator=_non_negative_int)
    gossip_to_the_dead_time: float = attrs.field(default=30.0, validator=_positive)
    push_pull_interval: float = attrs.field(default=30.0, validator=_positive)
    push_pull_scale_threshold: int = attrs.field(default=32, validator=_at_least_one)
    push_pull_max_scale: int = attrs.field(default=4, validator=_at_least_one)
    awareness_max_multiplier: int = attrs.field(default=8, validator=_at_least_one)
    buddy_first: bool = attrs.field(default=True, validator=_flag)
    """Lifeguard's buddy system, first: a suspicion this node raises is sent to the suspect
    at once and spreads only if no refutation comes back within :attr:`buddy_timeout`.
    False: it spreads at once, and the suspect hears of it when probed (memberlist)."""
    notify_down_members: bool = attrs.field(default=False, validator=_flag)
    """A member this node's own suspicion timer declares DOWN is told so at once, by one
    datagram ``Dead(member, incarnation, self)`` to its address (foca's
    ``notify_down_members``): a live member refutes within a round trip instead of when
    it next speaks to a node holding it DOWN.  At most one notice per member per
    ``probe_interval`` (``notified_down``).  False: it is told when it next speaks."""
    reconnect_interval: float = attrs.field(default=30.0, validator=_positive)
    reap_time: float = attrs.field(default=3600.0, validator=_positive)
    dead_node_reclaim_time: float = attrs.field(default=0.0, validator=_non_negative)
    """How long a member must have been DOWN before its name may be claimed from another
    address (a restart on a new IP or port; ``rules.may_move``); until then such an
    Alive is refused as a conflict.  0: at once.  memberlist's ``DeadNodeReclaimTime``,
    whose 0 means never, but memberlist forgets a dead member after
    ``gossip_to_the_dead_time`` and then takes any address; a DOWN member is kept here
    for ``reap_time``."""
    tcp_timeout: float = attrs.field(default=10.0, validator=_positive)
    packet_budget: int = attrs.field(default=DEFAULT_PACKET_BUDGET, validator=_at_least_one)
    max_meta_size: int = attrs.field(default=512, validator=_non_negative_int)
    push_pull_max_newcomers: int = attrs.field(default=1024, validator=_at_least_one)
    """Members one push/pull may add that this node did not know; the rest are dropped
    (``rejected_newcomer_limit``) and learnt from gossip and later exchanges instead."""
    newcomer_rate: float = attrs.field(default=64.0, validator=_positive)
    """Unknown members this node adds per second at most, after a burst of
    ``newcomer_burst``: one push/pull adds at most ``push_pull_max_newcomers``, but
    repeated ones (or gossip naming made-up members) filled a node with tens of thousands
    it then probes in ring order, so a real member's failure was found by it only once
    per pass.  Past it an unknown member is dropped (``rejected_newcomer_rate``) and
    learnt later from gossip or a push/pull."""
    newcomer_burst: int = attrs.field(default=4096, validator=_at_least_one)
    """Unknown members this node may add at once after a quiet spell (a join into a
    cluster of thousands, two clusters merging): the depth of ``newcomer_rate``'s bucket."""
    push_pull_max_replies: int = attrs.field(default=128, validator=_at_least_one)
    """Push/pull requests answered per second at most (a burst of as many; memberlist's
    ``maxPushPullRequests`` is 128): each answer is this node's whole state, sent to the
    address the request names, so a stream of small requests must not buy unbounded work
    and traffic.  Past it a request is merged but not answered (``push_pull_replies_refused``)."""
    cidrs_allowed: tuple[Network, ...] | None = attrs.field(default=None, converter=_networks)
    """The networks peers may be in (memberlist's ``CIDRsAllowed``): datagrams and TCP
    connections from other sources are dropped before anything is read or decoded, and a
    member advertising an address outside them is refused (docs/security.md).  Given as
    ``"10.0.0.0/8,fd00::/8"`` or an iterable of CIDR strings; IPv4 and IPv6 are listed
    separately.  None (the default): every address."""
    label: str = attrs.field(default="", validator=_label)
    keyring: Keyring | None = attrs.field(default=None, validator=_keyring)
    """With a keyring every packet and frame is sealed (docs/security.md); None sends
    plaintext, for local development only."""
    tls: TlsConfig | None = attrs.field(default=None, validator=_tls)
    """Mutual TLS on the TCP channels (push/pull here, and the actor connections of a
    system): peers must show a certificate from ``tls.ca`` naming the node they claim to
    be.  Datagrams are not covered: give a keyring as well (docs/security.md)."""

    def __attrs_post_init__(self) -> None:
        if self.probe_timeout > self.probe_interval:
            raise ConfigError(
                "Config.probe_timeout must not exceed Config.probe_interval "
                f"({self.probe_timeout} > {self.probe_interval})"
            )
        if self.packet_budget < 256:
            raise ConfigError(f"Config.packet_budget must be >= 256, got {self.packet_budget}")

    @classmethod
    def lan(cls) -> Config:
        """memberlist's DefaultLANConfig: a data centre network."""
        return cls()

    @classmethod
    def wan(cls) -> Config:
        """memberlist's DefaultWANConfig: links with long, variable latency."""
        return cls(
            tcp_timeout=30.0,
            suspicion_mult=6,
            push_pull_interval=60.0,
            probe_timeout=3.0,
            probe_interval=5.0,
            gossip_nodes=4,
            gossip_interval=0.5,
            gossip_to_the_dead_time=60.0,
        )

    @classmethod
    def local(cls) -> Config:
        """memberlist's DefaultLocalConfig: one host or a fast, loss-free LAN."""
        return cls(
            tcp_timeout=1.0,
            indirect_checks=1,
            retransmit_mult=2,
            suspicion_mult=3,
            push_pull_interval=15.0,
            probe_timeout=0.2,
            probe_interval=1.0,
            gossip_interval=0.1,
            gossip_to_the_dead_time=15.0,
        )

    @classmethod
    def preset(cls, name: str) -> Config:
        """The preset called ``lan``, ``wan`` or ``local``."""
        presets = {"lan": cls.lan, "wan": cls.wan, "local": cls.local}
        try:
            return presets[name]()
        except KeyError:
            raise ConfigError(
                f"unknown profile {name!r}; choose one of {sorted(presets)}"
            ) from None

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed, validated like a new one."""
        unknown = set(changes) - {f.name for f in attrs.fields(Config)}
        if unknown:
            raise ConfigError(f"Config has no field(s) {', '.join(sorted(unknown))}")
        return attrs.evolve(self, **changes)

    def ip_allowed(self, host: str) -> bool:
        """Whether ``host`` (an IP literal) is in :attr:`cidrs_allowed`; always True
        without one, never for a host name with one (memberlist's ``IPAllowed``)."""
        return self.cidrs_allowed is None or address_in(self.cidrs_allowed, host)

    def allow_list(self) -> AllowList | None:
        """:attr:`cidrs_allowed` as a per-packet test with its own cache (None: no
        allow-list, and nothing to test)."""
        return None if self.cidrs_allowed is None else AllowList(self.cidrs_allowed)

    # -- formulas (memberlist's util.go and suspicion.go; see docs/protocol.md) ---------

    def retransmit_limit(self, members: int) -> int:
        """How many times one update is piggybacked: ``mult * ceil(log10(n + 1))``."""
        return self.retransmit_mult * math.ceil(math.log10(members + 1))

    @property
    def nack_timeout(self) -> float:
        """How long a ping-req helper waits for the target before it nacks: 80 % of the
        prober's window after its ping-req (``probe_interval - probe_timeout``), at most
        ``probe_timeout``.  memberlist waits ``probe_timeout``, so at the LAN defaults
        every nack reached the prober just after its period had ended and never counted
        for Lifeguard's local health."""
        return min(self.probe_timeout, 0.8 * (self.probe_interval - self.probe_timeout))

    @property
    def buddy_timeout(self) -> float:
        """How long a suspicion this node raises waits for the suspect's refutation before
        it spreads (``buddy_first``): a tenth of ``probe_timeout``, a round trip's budget.
        Every other node starts its suspicion timer that much later, so a real crash is
        DOWN everywhere that much later too (the first node's verdict reaches most by
        gossip at once, the rest by their own timers)."""
        return self.probe_timeout / 10

    def suspicion_timeouts(self, members: int) -> tuple[float, float]:
        """Lifeguard's (minimum, maximum) suspicion timeout for a cluster of ``members``."""
        scale = max(1.0, math.log10(max(1.0, float(members))))
        low = self.suspicion_mult * scale * self.probe_interval
        return low, low * self.suspicion_max_timeout_mult

    def push_pull_period(self, members: int) -> float:
        """Push/pull interval, stretched past the scale threshold but capped."""
        if members <= self.push_pull_scale_threshold:
            return self.push_pull_interval
        extra = math.ceil(math.log2(members) - math.log2(self.push_pull_scale_threshold)) + 1
        return self.push_pull_interval * min(extra, self.push_pull_max_scale)
