"""The agent's live dashboard: ``GET /ui`` (one self-contained page) fed by ``GET
/v1/stream``, server-sent events carrying a snapshot of the node's view (members, the
event timeline, actor names and holders, groups and the nodes of their members, grain
activations (kind, identity, node) and the nodes hosting each kind, quorum state, packet
rates) whenever the event log grows, and at least every :data:`INTERVAL` s.

It is served by the agent's own HTTP server (a streamed response there), so it needs no
second port and no other dependency; at most :data:`MAX_STREAMS` pages at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import trio

from ..cluster.grains import GRAIN_PREFIX, HOST_PREFIX
from ..cluster.groups import GROUP_PREFIX
from .api import member_json
from .control import AgentControl, entry_json
from .http import Request, Response, Router

__all__ = ["INTERVAL", "MAX_STREAMS", "add_dashboard", "snapshot"]

INTERVAL = 1.0
MAX_STREAMS = 8
TIMELINE = 50


def snapshot(control: AgentControl) -> dict[str, Any]:
    """What the page shows, as JSON-ready data."""
    node, system = control.node, control.system
    names: list[dict[str, Any]] = []
    grains: list[dict[str, Any]] = []
    hosts: dict[str, list[str]] = {}
    groups: set[str] = set()
    if system.cluster is not None:
        registry = system.cluster.names.registry
        for name in registry.names():
            holder = registry.lookup(name)
            if name.startswith(GROUP_PREFIX):  # "$group/GROUP/...": one member's registration
                groups.add(name[len(GROUP_PREFIX) :].split("/", 1)[0])
            elif holder is None:
                continue
            elif name.startswith(GRAIN_PREFIX):  # "$grain/KIND/IDENTITY": an activation
                kind, _, identity = name[len(GRAIN_PREFIX) :].partition("/")
                grains.append({"kind": kind, "identity": identity, "node": holder.node})
            elif name.startswith(HOST_PREFIX):  # "$hosts/KIND/NODE": a node hosts KIND
                hosts.setdefault(name[len(HOST_PREFIX) :].partition("/")[0], []).append(holder.node)
            else:
                names.append({"name": name, "node": holder.node})
    counters = node.counters
    return {
        "node": node.name,
        "time": time.time(),
        "quorum": system.quorum_state,
        "members": [member_json(m) for m in sorted(node.members(), key=lambda m: m.name)],
        "actors": names,
        "groups": [
            {"name": group, "members": sorted(ref.node for ref in system.group_members(group))}
            for group in sorted(groups)
        ],
        "grains": sorted(grains, key=lambda g: (g["kind"], g["identity"])),
        "grain_hosts": [{"kind": k, "nodes": sorted(v)} for k, v in sorted(hosts.items())],
        "timeline": [entry_json(e) for e in control.log.since(control.log.last - TIMELINE)],
        "packets": {"sent": counters["packets_sent"], "received": counters["packets_received"]},
    }


def add_dashboard(control: AgentControl, router: Router) -> Router:
    """Add ``GET /ui`` and ``GET /v1/stream`` to ``router``."""
    page = resources.files(__package__).joinpath("dashboard.html").read_bytes()
    streams = trio.CapacityLimiter(MAX_STREAMS)

    async def ui(request: Request) -> Response:
        return Response(200, page, "text/html; charset=utf-8")

    async def stream(request: Request) -> Response:
        try:
            streams.acquire_nowait()
        except trio.WouldBlock:
            return Response.error(503, f"at most {MAX_STREAMS} dashboards at once")

        async def events() -> AsyncIterator[bytes]:
            try:
                while True:
                    seen = control.log.last
                    data = json.dumps(snapshot(control), separators=(",", ":"))
                    yield f"event: snapshot\ndata: {data}\n\n".encode()
                    with trio.move_on_after(INTERVAL):
                        await control.log.wait_after(seen)
            finally:
                streams.release()

        return Response(
            200,
            b"",
            "text/event-stream",
            headers=(("Cache-Control", "no-cache"),),
            stream=events,
        )

    router.add("GET", "/ui", ui)
    router.add("GET", "/v1/stream", stream)
    return router
