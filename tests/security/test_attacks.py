"""The single-packet attacks of issue 12, replayed against real agent processes on loopback.

Each attack is one frame or datagram (or one push/pull) sent to a victim agent ``v`` in a
cluster of three running the ``lan`` profile (probes every second, 0.5 s to answer).  The
defence is asserted from outside, as an operator would see it: the victim's memory
high-water mark grows by less than 50 MB, it spends less than 0.5 s of CPU on the attack
and the settling second after it (so no single step can stall its loop longer), its HTTP
API, served by the same loop and polled every 20 ms throughout, never takes 2 s to answer
(the margin is for a loaded test machine), its peers never suspect it, and ``/metrics``
counts the drop with a reason label.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import attrs
import cbor2
import pytest
import trio

from fuzz.hostile import sharing_bomb
from swimactors.agent.cluster import AgentProcess, LocalCluster, open_local_cluster, wait_until
from swimactors.agent.http import HttpError, http_get
from swimactors.membership.core import INCARNATION_HORIZON
from swimactors.membership.messages import (
    MAX_INCARNATION,
    Alive,
    MemberState,
    Ping,
    PushPull,
    UserMessage,
    encode_message,
    encode_packet,
)
from swimactors.membership.types import Address, Status
from swimactors.registry import codec as registry_codec
from swimactors.registry.codec import MAX_COUNTER
from swimactors.registry.crdt import State

pytestmark = pytest.mark.network

MAX_RSS_GROWTH = 50 * 1024 * 1024
MAX_STALL = 0.5
MAX_WALL_STALL = 2.0
"""The polled stall may exceed MAX_STALL only by the machine's load (CPU is asserted
strictly): the attacks of issue 12 stalled nodes 8.8 to 45 s."""
CONVERGE = 15.0


def _kib(status: str, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    assert match, field
    return int(match.group(1)) * 1024


def cpu_seconds(agent: AgentProcess) -> float:
    """User plus system CPU time of the agent's process so far."""
    with open(f"/proc/{agent.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(agent: AgentProcess) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of the agent's process, in bytes."""
    with open(f"/proc/{agent.pid}/status") as status:
        text = status.read()
    return _kib(text, "VmRSS"), _kib(text, "VmHWM")


@attrs.define
class Effect:
    """What one attack did to the victim, measured from outside."""

    stall: float = 0.0
    """Longest HTTP round trip to the victim while under attack (its loop's stall)."""
    cpu: float = 0.0
    """CPU seconds the victim used from the attack until a second after it: what one
    blocking step can stall its loop by on an idle machine, whatever else the machine
    runs (the wall-clock stall grows with the machine's load; this does not)."""
    rss_growth: int = 0
    """Peak resident memory during the attack minus resident memory before it."""


async def watch(victim: AgentProcess, effect: Effect, stop: trio.Event) -> None:
    """Poll the victim's API every 20 ms until ``stop``; keep the slowest answer."""
    while not stop.is_set():
        started = trio.current_time()
        with suppress(HttpError):
            await http_get(victim.http, "/v1/health", timeout=5.0)
        effect.stall = max(effect.stall, trio.current_time() - started)
        await trio.sleep(0.02)


async def under_attack(victim: AgentProcess, attack: Callable[[], Awaitable[None]]) -> Effect:
    """Run ``attack`` while watching the victim; settle one second after it."""
    effect = Effect()
    with open(f"/proc/{victim.pid}/clear_refs", "w") as clear:
        clear.write("5")  # reset the high-water mark to the current RSS
    before, _ = rss(victim)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch, victim, effect, stop)
        await trio.sleep(0.1)
        cpu = cpu_seconds(victim)
        await attack()
        await trio.sleep(1.0)
        effect.cpu = cpu_seconds(victim) - cpu
        stop.set()
    _, peak = rss(victim)
    effect.rss_growth = peak - before
    return effect


async def metric(agent: AgentProcess, name: str) -> int:
    status, body = await http_get(agent.http, "/metrics")
    assert status == 200
    match = re.search(rf"^swimactors_{re.escape(name)} (\d+)$", body.decode(), re.M)
    return int(match.group(1)) if match else 0


def rejected(reason: str) -> str:
    return f'packets_rejected_total{{reason="{reason}"}}'


async def statuses_of(agent: AgentProcess) -> dict[str, str]:
    found = await agent.statuses()
    return found or {}


def suspected(peers: list[AgentProcess], victim: str) -> list[str]:
    """Lines in which a peer reported the victim as anything but up."""
    pattern = re.compile(rf"(SUSPECT|DOWN|FAILED)\s+{re.escape(victim)}\s", re.I)
    return [line for peer in peers for line in peer.lines if pattern.search(line)]


@asynccontextmanager
async def cluster_of_three() -> AsyncIterator[
    tuple[LocalCluster, AgentProcess, list[AgentProcess]]
]:
    async with open_local_cluster(profile="lan") as cluster:
        victim = await cluster.start("v")
        peers = [await cluster.start(n, join=[victim.gossip]) for n in ("p1", "p2")]

        async def formed() -> bool:
            for agent in (victim, *peers):
                seen = await statuses_of(agent)
                if sorted(n for n, s in seen.items() if s == "up") != ["p1", "p2", "v"]:
                    return False
            return True

        assert await wait_until(formed, CONVERGE) is not None, "the cluster did not form"
        yield cluster, victim, peers


def send_datagram(to: Address, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(data, to)


async def send_frame(to: Address, payload: bytes) -> None:
    stream = await trio.open_tcp_stream(*to)
    async with stream:
        await stream.send_all(struct.pack(">I", len(payload)) + payload)
        with trio.move_on_after(1.0):  # the victim drops the connection, or we give up
            while await stream.receive_some(65536):
                pass


async def actor_address(victim: AgentProcess) -> Address:
    members = await victim.members()
    port = next(m["meta"]["actors"] for m in members if m["name"] == "v")
    return victim.gossip[0], int(port)


def text(value: str) -> bytes:
    raw = value.encode()
    return b"\x7a" + struct.pack(">I", len(raw)) + raw


def gossip_with(message: bytes, reliable: Address | None = None) -> bytes:
    """A membership packet from a forged "p1" whose one message is ``message`` (raw CBOR)."""
    return encode_packet("", "p1", [message], reliable)


def assert_harmless(effect: Effect, attack: str) -> None:
    print(
        f"{attack}: CPU {effect.cpu * 1000:.0f} ms, longest poll {effect.stall * 1000:.0f} ms, "
        f"RSS +{effect.rss_growth / 2**20:.1f} MB"
    )
    assert effect.cpu < MAX_STALL, f"{attack}: the victim spent {effect.cpu:.2f} s of CPU"
    assert effect.stall < MAX_WALL_STALL, f"{attack}: its loop stalled {effect.stall:.2f} s"
    assert effect.rss_growth < MAX_RSS_GROWTH, f"{attack}: RSS grew {effect.rss_growth >> 20} MB"


async def test_single_frame_and_datagram_bombs_are_dropped_cheaply() -> None:
    with trio.fail_after(120):
        async with cluster_of_three() as (_cluster, victim, peers):
            actors = await actor_address(victim)
            regex = b"\xd8\x23" + text("(a+)+$" * 8)
            mime = b"\xd8\x24" + text("Content-Type: text/plain\n\n" + "x" * 100)
            many_regexes = b"\x9a" + struct.pack(">I", 200_000) + regex * 200_000
            big_regex_frame = gossip_with(many_regexes, ("127.0.0.1", 1))
            attacks: dict[str, Callable[[], Awaitable[None]]] = {
                "sharing bomb on the actor port": lambda: send_frame(
                    actors, cbor2.dumps([1, "/user/x", 1, None, [0, None]])[:-1] + sharing_bomb()
                ),
                "regex frames on gossip TCP (4 MB)": lambda: send_frame(
                    victim.gossip, big_regex_frame[:4_300_000]
                ),
                "MIME frame on gossip TCP": lambda: send_frame(
                    victim.gossip, gossip_with(mime, ("127.0.0.1", 1))
                ),
                "regex datagram": lambda: trio.to_thread.run_sync(
                    send_datagram, victim.gossip, gossip_with(regex)
                ),
                "sharing-bomb datagram": lambda: trio.to_thread.run_sync(
                    send_datagram, victim.gossip, gossip_with(sharing_bomb())
                ),
                "oversized datagram (65,000 bytes)": lambda: trio.to_thread.run_sync(
                    send_datagram,
                    victim.gossip,
                    encode_packet("", "p1", [encode_message(Ping(1, "v"))] * 5_400)[:65_000],
                ),
            }
            for name, attack in attacks.items():
                assert_harmless(await under_attack(victim, attack), name)
            actor_drops = 'actor_transport_events_total{event="rejected_malformed"}'
            assert await metric(victim, actor_drops) == 1
            assert await metric(victim, rejected("oversized")) >= 1
            assert await metric(victim, rejected("malformed")) >= 4
            assert await metric(victim, "driver_errors_total") == 0
            assert suspected(peers, "v") == []
            assert (await statuses_of(peers[0]))["v"] == "up"


async def test_forged_death_at_any_incarnation_evicts_nobody_for_good() -> None:
    with trio.fail_after(120):
        async with cluster_of_three() as (cluster, victim, peers):
            for incarnation in (2**63 - 1, MAX_INCARNATION + 1):
                dead = cbor2.dumps([6, "v", incarnation, "p1"])
                for agent in (victim, *peers):
                    await trio.to_thread.run_sync(send_datagram, agent.gossip, gossip_with(dead))
            await trio.sleep(1.0)
            assert await metric(victim, rejected("out_of_range")) == 2
            assert await metric(victim, "driver_errors_total") == 0
            assert suspected(peers, "v") == []
            # at the maximum the victim could not outbid it: refused as news from the future
            target = peers[1]  # (the forged sender is p1)
            dead = cbor2.dumps([6, "v", MAX_INCARNATION, "p1"])
            await trio.to_thread.run_sync(send_datagram, target.gossip, gossip_with(dead))
            assert await wait_until(lambda: _counted(target, rejected("future")), 5.0) is not None
            assert suspected(peers, "v") == []
            # the worst news accepted, just inside the horizon: the victim outbids it
            edge = int(time.time() * 1000) + INCARNATION_HORIZON - 60_000
            dead = cbor2.dumps([6, "v", edge, "p1"])
            await trio.to_thread.run_sync(send_datagram, target.gossip, gossip_with(dead))
            assert await wait_until(lambda: _refuted_above(victim, edge), CONVERGE) is not None

            async def up_everywhere() -> bool:
                for agent in peers:
                    if (await statuses_of(agent)).get("v") != "up":
                        return False
                return True

            assert await wait_until(up_everywhere, CONVERGE) is not None, "v did not refute"
            assert await metric(victim, "driver_errors_total") == 0
            await cluster.stop("v")  # and a restarted v comes back under its name
            await cluster.start("v", join=[peers[0].gossip])
            assert await wait_until(up_everywhere, CONVERGE) is not None, "v did not rejoin"


async def test_a_push_pull_of_20000_forged_members_adds_a_bounded_number() -> None:
    with trio.fail_after(120):
        async with cluster_of_three() as (_cluster, victim, peers):
            members = tuple(
                MemberState.of(f"fake-{i}", ("10.255.0.1", 1 + i % 60000), 1, Status.UP, b"")
                for i in range(20_000)
            )
            frame = encode_packet(
                "", "p1", [encode_message(PushPull(False, True, members, {}))], ("127.0.0.1", 9)
            )
            effect = await under_attack(victim, lambda: send_frame(victim.gossip, frame))
            assert_harmless(effect, "a push/pull of 20,000 forged members")
            seen = await statuses_of(victim)
            assert sum(1 for name in seen if name.startswith("fake-")) == 1024
            assert await metric(victim, rejected("newcomer_limit")) == 20_000 - 1024
            assert suspected(peers, "v") == []


async def test_a_forged_registry_floor_is_dropped_and_counted() -> None:
    with trio.fail_after(120):
        async with cluster_of_three() as (_cluster, _victim, peers):
            floors = State()
            floors.floors["v"] = MAX_COUNTER  # would wipe every name v will ever hold
            forged = encode_message(UserMessage("registry", registry_codec.encode(floors)))
            target = peers[1]  # (the forged sender is p1)
            await trio.to_thread.run_sync(send_datagram, target.gossip, gossip_with(forged))
            event = 'registry_events_total{event="rejected_floors"}'
            assert await wait_until(lambda: _counted(target, event), 5.0) is not None
            assert suspected(peers, "v") == []


async def _refuted_above(victim: AgentProcess, incarnation: int) -> bool:
    """The victim's own incarnation is past ``incarnation`` (it outbid the news)."""
    own = [m for m in await victim.members() if m["name"] == victim.name]
    return bool(own) and int(own[0]["incarnation"]) > incarnation


async def _counted(agent: AgentProcess, name: str) -> bool:
    return await metric(agent, name) == 1


@pytest.mark.parametrize("host", ["x..y", "a" * 64 + ".example", "\u00e9" * 70])
def test_a_host_a_resolver_cannot_encode_is_refused_on_the_wire(host: str) -> None:
    """What IDNA cannot encode made the host-name lookup raise UnicodeError: a refused
    address on the wire, and an OSError (a failed lookup) from the resolver."""
    from swimactors.membership.messages import valid_host
    from swimactors.membership.transport import resolve_now

    assert not valid_host(host)
    assert all(valid_host(h) for h in ("10.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "db-1.lan."))
    with pytest.raises(OSError):
        resolve_now(host, 9)


async def test_a_member_at_a_host_name_no_resolver_can_encode_harms_no_node() -> None:
    """One forged Alive for a made-up member at host ``x..y``: every node that sent to it
    looked the name up, the lookup raised UnicodeError (not an OSError) and the node
    exited, and the member was gossiped on, so one datagram ended the whole cluster."""
    with trio.fail_after(120):
        async with cluster_of_three() as (_cluster, victim, peers):
            stand_in = encode_message(Alive("m", ("hhhh", 9), 1, b""))
            forged = stand_in.replace(b"hhhh", b"x..y")
            effect = await under_attack(
                victim,
                lambda: trio.to_thread.run_sync(send_datagram, victim.gossip, gossip_with(forged)),
            )
            assert_harmless(effect, "a member at host x..y")
            await trio.sleep(2.0)  # a probe period or two: sends to m would have begun
            assert all(agent.running for agent in (victim, *peers))
            assert await metric(victim, rejected("malformed")) == 1
            assert "m" not in await statuses_of(victim)
            assert suspected(peers, "v") == []


@pytest.mark.parametrize(
    "tag", [str(2**70), "99999", "0", "x..y:7000", "[::1]:0", "\u00b2", "localhost:70000"]
)
async def test_a_member_s_actor_address_out_of_range_is_none_and_never_dialled(tag: str) -> None:
    """A member's ``actors`` tag gave the actor port as any digits: past 2**63 the dial
    raised OverflowError (not an OSError) in the connection's task."""
    from swimactors.actors.transport import TCP
    from swimactors.cluster.system import Cluster
    from swimactors.membership import Member
    from swimactors.membership.meta import encode_meta

    member = Member("m", ("127.0.0.1", 9), 1, Status.UP, encode_meta({"actors": tag}))

    class View:
        def member(self, name: str) -> Member:
            return member

    assert Cluster(View(), None, None).actor_address("m") is None  # type: ignore[arg-type]
    with pytest.raises(OSError):
        await TCP.connect(("127.0.0.1", 2**70))


async def test_joining_through_a_host_no_resolver_takes_is_a_bad_request(tmp_path: Path) -> None:
    """`POST /v1/join` with `x..y:9`: a 500 (the join raised ValueError) now a 400 saying
    why (before the host rule, the lookup raised in the driver and ended the agent)."""
    from swimactors.agent.http import http_request

    (tmp_path / "token").write_text("t0ken\n")
    with trio.fail_after(60):
        async with open_local_cluster(profile="lan") as cluster:
            agent = await cluster.start(
                "v", extra_args=["--http-token-file", str(tmp_path / "token")]
            )
            for seed in ("x..y:9", "\u00e9\u00e9.example:9"):
                status, body = await http_request(
                    agent.http, "POST", "/v1/join", {"addresses": [seed]}, token="t0ken"
                )
                assert status == 400 and b"host name" in body
            await trio.sleep(1.0)
            assert agent.running
