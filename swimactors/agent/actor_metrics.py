"""The actor layer's ``/metrics`` series: live actors, mailbox depth, dead letters,
failures and restarts, the remote-ask latency histogram, the actor transport's
connections, frames, bytes and drops, and the registry's gossip and drops.

Everything is read when Prometheus scrapes (a walk over the local actors for the mailbox
gauges), so the actors' hot paths only pay for the ask histogram's one observation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..actors.cell import ActorCell
from ..actors.observe import Histogram
from .prometheus import PREFIX, family

if TYPE_CHECKING:
    from ..cluster.system import System

__all__ = ["render_actor_metrics"]


def _cells(cells: Iterator[ActorCell]) -> Iterator[ActorCell]:
    for cell in cells:
        yield cell
        yield from _cells(iter(cell.children.values()))


def _histogram(lines: list[str], name: str, help_text: str, histogram: Histogram) -> None:
    family(lines, name, "histogram", help_text)
    cumulative = 0
    for bound, count in zip(histogram.bounds, histogram.buckets, strict=False):
        cumulative += count
        lines.append(f'{PREFIX}_{name}_bucket{{le="{bound:g}"}} {cumulative}')
    lines.append(f'{PREFIX}_{name}_bucket{{le="+Inf"}} {histogram.count}')
    lines.append(f"{PREFIX}_{name}_sum {histogram.total:.6f}")
    lines.append(f"{PREFIX}_{name}_count {histogram.count}")


def render_actor_metrics(system: System) -> str:
    """The actor families, in the Prometheus text format (appended to ``/metrics``)."""
    lines: list[str] = []
    depths = [len(cell.queue) for cell in _cells(iter(system.children.values()))]
    gauges = (
        ("actors", "Actors running on this node.", system.live_actors),
        ("actor_mailbox_messages", "Messages waiting in this node's mailboxes.", sum(depths)),
        ("actor_mailbox_max", "Messages waiting in the fullest mailbox.", max(depths, default=0)),
    )
    counters = (
        ("actor_dead_letters", "Messages that reached no actor.", system.dead_letters.count),
        ("actor_failures", "Exceptions raised by actor code.", system.stats.failures),
        ("actor_restarts", "Actors rebuilt by a restart strategy.", system.stats.restarts),
        ("actor_late_replies", "Replies after their ask gave up.", system.stats.late_replies),
    )
    for name, help_text, value in gauges:
        family(lines, name, "gauge", help_text)
        lines.append(f"{PREFIX}_{name} {value}")
    for name, help_text, value in counters:
        family(lines, f"{name}_total", "counter", help_text)
        lines.append(f"{PREFIX}_{name}_total {value}")
    _histogram(
        lines,
        "actor_remote_ask_seconds",
        "Remote asks: seconds from sending to the reply, timeout or failure.",
        system.stats.remote_asks,
    )
    if system.cluster is not None:
        transport = system.cluster.transport
        family(lines, "actor_transport_connections", "gauge", "Open actor-transport peers.")
        lines.append(f"{PREFIX}_actor_transport_connections {len(transport.connections)}")
        family(
            lines,
            "actor_transport_events_total",
            "counter",
            "Actor transport: frames and bytes, dials and accepts, and drops by reason.",
        )
        for event, value in sorted(transport.counters.items()):
            lines.append(f'{PREFIX}_actor_transport_events_total{{event="{event}"}} {value}')
        family(
            lines,
            "registry_events_total",
            "counter",
            "Registry gossip: deltas and states received and sent, and drops by reason.",
        )
        registry = system.cluster.names.delegate.counters
        for event, value in sorted(registry.items()):
            lines.append(f'{PREFIX}_registry_events_total{{event="{event}"}} {value}')
    return "\n".join(lines) + "\n"
