"""system.events() on a cluster system: member events arrive with the actors' own."""

from __future__ import annotations

import trio

import swimactors
from swimactors.membership import MemberDown, MemberLeft, MemberUp
from swimactors.membership.types import format_address

from .cluster_helpers import FAST, cluster_of, open_systems


async def test_member_up_and_left_reach_system_events() -> None:
    with trio.fail_after(30):
        async with open_systems(1) as (a,):
            with a.events() as events:
                seed = format_address(cluster_of(a).node.address)
                async with swimactors.open_system(
                    "late", bind="127.0.0.1:0", seeds=[seed], config=FAST, shutdown_timeout=2.0
                ):
                    async for event in events:
                        if isinstance(event, MemberUp) and event.member.name == "late":
                            break
                async for event in events:  # gone: DOWN (or LEFT after a graceful leave)
                    if isinstance(event, MemberDown | MemberLeft) and event.member.name == "late":
                        break
