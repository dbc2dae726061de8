"""The membership timing of the fronts' network tests and the bounds it implies."""

from __future__ import annotations

from swimactors.membership import Config

CONFIG = Config.local().replace(
    probe_interval=0.5,
    probe_timeout=0.25,
    gossip_interval=0.05,
    push_pull_interval=2.0,
    reconnect_interval=1.0,
)
"""Probes every 0.5 s: quick, yet a healthy node on a loaded 2-core box answers in time."""

CONVERGE_BOUND = 2 * CONFIG.push_pull_interval + 3.0


def suspicion_timeout(members: int) -> float:
    """How long a suspected member has to refute before a lone suspicion makes it DOWN."""
    return CONFIG.suspicion_timeouts(members)[0]


def down_bound(members: int) -> float:
    """The core contract's bound for 'every survivor marks a crashed node DOWN'."""
    return CONFIG.suspicion_timeouts(members)[1] + 3 * CONFIG.probe_interval + 1.0
