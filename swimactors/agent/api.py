"""The agent's HTTP API over one node: ``/v1/members``, ``/v1/health`` and ``/metrics``.

The ``/v1/members`` JSON is a contract that outside tests rely on: a list of objects with
``name``, ``address`` ("host:port"), ``status`` ("up" | "suspect" | "down" | "left"),
``incarnation`` (int) and ``meta`` (object).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from ..membership.meta import decode_meta
from ..membership.node import Node
from ..membership.types import Member, Status, format_address
from .http import Request, Response, Router

if TYPE_CHECKING:
    from ..cluster.system import System
from .prometheus import PREFIX, family, render_metrics

__all__ = ["actors_router", "member_json", "membership_router"]


def member_json(member: Member) -> dict[str, Any]:
    """One member as ``GET /v1/members`` lists it (a contract outside tools rely on)."""
    return {
        "name": member.name,
        "address": format_address(member.address),
        "status": member.status.value,
        "incarnation": member.incarnation,
        "meta": decode_meta(member.meta),
    }


def status_counts(members: list[Member]) -> dict[str, int]:
    """How many members are in each status (every status present, zeros included)."""
    counts = dict.fromkeys((s.value for s in Status), 0)
    for member in members:
        counts[member.status.value] += 1
    return counts


def membership_router(
    node: Node,
    router: Router | None = None,
    *,
    extra_health: Callable[[], Mapping[str, object]] | None = None,
    extra_gauges: Callable[[], Mapping[str, int]] | None = None,
    extra_metrics: Callable[[], str] | None = None,
) -> Router:
    """Add the membership routes for ``node`` to ``router`` (a new one by default);
    ``extra_health`` and ``extra_gauges`` add fields to ``/v1/health`` and gauges to ``/metrics``
    (the split-brain layer's ``"quorum": "ok" | "lost"``)."""
    router = router if router is not None else Router()
    started = trio.current_time()
    started_wall = time.time()

    async def members(request: Request) -> Response:
        ordered = sorted(node.members(), key=lambda m: m.name)
        return Response.json([member_json(m) for m in ordered])

    async def health(request: Request) -> Response:
        local = node.local_member
        return Response.json(
            {
                "status": "ok" if local.status.is_alive else local.status.value,
                "name": node.name,
                "address": format_address(node.address),
                "incarnation": local.incarnation,
                "awareness": node.awareness,
                "members": status_counts(node.members()),
                "started": started_wall,
                "uptime": trio.current_time() - started,
                **(extra_health() if extra_health is not None else {}),
            }
        )

    async def metrics(request: Request) -> Response:
        text = render_metrics(
            status_counts(node.members()),
            node.counters,
            node.awareness,
            extra_gauges() if extra_gauges is not None else {},
            (extra_metrics() if extra_metrics is not None else "") + _http_metrics(router),
        )
        return Response.text(text, content_type="text/plain; version=0.0.4; charset=utf-8")

    router.add("GET", "/v1/members", members)
    router.add("GET", "/v1/health", health)
    router.add("GET", "/metrics", metrics)
    return router


def _http_metrics(router: Router) -> str:
    lines: list[str] = []
    family(
        lines,
        "http_host_refused_total",
        "counter",
        "HTTP requests refused for a Host header that is not allowed (DNS rebinding).",
    )
    lines.append(f"{PREFIX}_http_host_refused_total {router.refused_hosts}")
    return "\n".join(lines) + "\n"


def actors_router(system: System, router: Router | None = None) -> Router:
    """Add ``GET /v1/actors``: the cluster registry's names as a JSON list of
    ``{name, node, actor_id}`` (the winning registration of each name)."""
    router = router if router is not None else Router()

    async def actors(request: Request) -> Response:
        assert system.cluster is not None
        registry = system.cluster.names.registry
        entries = [registry.lookup(name) for name in registry.names()]
        return Response.json(
            [{"name": r.name, "node": r.node, "actor_id": r.actor_id} for r in entries if r]
        )

    router.add("GET", "/v1/actors", actors)
    return router
