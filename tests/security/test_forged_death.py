"""One forged Dead without a key, at the worst incarnation still accepted (the edge of the
horizon), on real sockets: the member outbids it, and its cluster names, dropped with its
registry floor, come back with the refutation; at the maximum the news is refused."""

from __future__ import annotations

import socket
import time

import pytest
import trio

import swimactors
from swimactors.membership import Status
from swimactors.membership.core import INCARNATION_HORIZON
from swimactors.membership.messages import MAX_INCARNATION, Dead, encode_message, encode_packet
from tests.cluster.cluster_helpers import FAST, cluster_of, open_systems, until

pytestmark = pytest.mark.network


class Echo(swimactors.Actor):
    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return msg


def forge_dead(to: tuple[str, int], about: str, incarnation: int) -> None:
    packet = encode_packet(FAST.label, "outsider", [encode_message(Dead(about, incarnation, "x"))])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(packet, to)


def up_above(system: swimactors.System, name: str, incarnation: int) -> bool:
    found = cluster_of(system).node.member(name)
    return found is not None and found.status is Status.UP and found.incarnation > incarnation


async def test_a_forged_death_is_outbid_and_the_names_come_back() -> None:
    with trio.fail_after(30):
        async with open_systems(2) as (a, b):
            await b.spawn(Echo(), name="svc", public=True)
            ref = await a.wait_for("svc", timeout=10)
            node = cluster_of(a).node
            forge_dead(node.address, b.name, MAX_INCARNATION)
            await until(lambda: node.counters["rejected_future"] == 1)
            assert up_above(a, b.name, 0)

            edge = int(time.time() * 1000) + INCARNATION_HORIZON - 60_000
            forge_dead(node.address, b.name, edge)
            registry = cluster_of(a).names.registry
            # a took b for dead at the forged incarnation: b's names there are floored ...
            await until(lambda: registry.state().floors.get(b.name) == edge)
            # ... until b outbids it and re-registers them above the floor
            await until(lambda: up_above(a, b.name, edge))
            await until(lambda: a.lookup("svc") is not None)
            ref = await a.wait_for("svc", timeout=10)
            assert ref.node == b.name
            assert await ref.ask("back") == "back"
