"""Protocol abuse on the actor port by a stranger with no key (a plaintext cluster): system
requests with values past what the protocol can carry are refused, so no forged request
breaks a node for good."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from swimactors import System
from swimactors.actors import protocol
from swimactors.actors.transport import SYSTEM_PATH
from swimactors.cluster.grains import MAX_CLOCK, Grain, GrainProbe
from swimactors.placement import Placement
from tests.cluster.cluster_helpers import cluster_of, open_systems
from tests.security.test_actor_port import actor_port, hello, raw_connection

pytestmark = pytest.mark.network


class Counter(Grain):
    async def on_activate(self) -> None:
        self.state = self.state or 0

    async def receive(self, msg: Any, ctx: Any) -> Any:
        self.state += 1
        return self.state


async def ask_system(system: System, request: object) -> bytes:
    """A stranger's one ASK to ``system`` itself; the raw reply frame."""
    stream = await raw_connection(actor_port(system))
    where = protocol.address(SYSTEM_PATH, 0, None)
    await stream.send_all(
        hello("stranger") + protocol.ask_frame(1, where, protocol.value_bytes(request))
    )
    reply = b""
    with trio.move_on_after(5):
        while len(reply) < 4 or len(reply) < 4 + int.from_bytes(reply[:4], "big"):
            reply += await stream.receive_some(65536)
    await stream.aclose()
    return reply


async def test_a_grain_probe_past_the_clock_limit_is_refused() -> None:
    """A probe with clock 2**64-1 pushed the grains' Lamport clock past what the wire
    carries: every later probe or claim from that node went out as a bignum its peers
    refuse, closing the connection, so activations went ahead without an answer (two
    activations of one grain), for good."""
    with trio.fail_after(60):
        async with open_systems(2) as (a, b):
            for system in (a, b):
                system.register_grain("counter", Counter, placement=Placement.LOCAL)
            for clock in (2**64 - 1, MAX_CLOCK + 1):
                await ask_system(b, GrainProbe("counter", "x", clock, "stranger", 1))
            assert b.grains.clock <= MAX_CLOCK
            await ask_system(b, GrainProbe("counter", "x", MAX_CLOCK, "stranger", 1))
            assert b.grains.clock == MAX_CLOCK  # at the limit it stays there
            # b activates first, then a asks: a's probe finds b's activation
            answers = [await s.grain("counter", "shared").ask("add") for s in (b, a)]
            held = [s.name for s in (a, b) for (_, i) in s.grains.local if i == "shared"]
            assert held == ["n1"] and answers == [1, 2]
            assert cluster_of(a).transport.counters["rejected_malformed"] == 0
