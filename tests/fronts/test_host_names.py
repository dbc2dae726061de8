"""A forged member at a host name whose DNS does not answer, on both membership drivers:
its name is looked up once (then remembered as failing), off the loop and within the
lookup deadline, and the node's traffic to real members goes on unhurt."""

from __future__ import annotations

import socket
import time

import pytest

from swimactors.membership import MemberSuspect, start_node, transport
from swimactors.membership.lean import DRIVER_VARIABLE
from swimactors.membership.messages import Alive, PingReq, encode_message, encode_packet
from swimactors.membership.transport import SockAddr, TransportLimits

from .helpers import sees_up, wait_for
from .timing import CONFIG, CONVERGE_BOUND

pytestmark = pytest.mark.network

DARK = "dark.invalid"
RESOLVER_TIMEOUT = 1.0
"""How long the fake resolver takes to give up on the dark name (glibc's is 5 s a try)."""


@pytest.mark.parametrize("driver", ["lean", "trio"])
def test_a_forged_member_at_a_name_that_never_resolves_costs_one_lookup(
    driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DRIVER_VARIABLE, driver)
    monkeypatch.setattr(TransportLimits, "resolve_timeout", 0.3, raising=False)
    lookups: list[float] = []
    real = transport.resolve_now

    def dark_resolver(host: str, port: int, family: int = 0) -> tuple[int, SockAddr]:
        if host != DARK:
            return real(host, port, family)
        lookups.append(time.monotonic())
        time.sleep(RESOLVER_TIMEOUT)  # a DNS server that never answers, then the give-up
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(transport, "resolve_now", dark_resolver)
    with (
        start_node(name="a", bind="127.0.0.1:0", config=CONFIG) as a,
        start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=CONFIG) as b,
    ):
        wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
        forged = Alive("mallory", (DARK, 7946), 1)
        packet = encode_packet(CONFIG.label, "p1", [encode_message(forged)])
        with a.events(timeout=0) as events, socket.socket(type=socket.SOCK_DGRAM) as udp:
            udp.sendto(packet, a.address)
            wait_for(lambda: "mallory" in {m.name for m in a.members()}, CONVERGE_BOUND)
            wait_for(lambda: a.counters["udp_send_errors"] > 0, CONVERGE_BOUND)
            # probes every 0.5 s and gossip every 0.05 s keep sending to mallory
            time.sleep(3 * RESOLVER_TIMEOUT)
            suspected = [e for e in events if isinstance(e, MemberSuspect)]
        # one lookup per node (b hears of mallory from a), then remembered as failing
        assert len(lookups) <= 2, f"{len(lookups)} lookups of the dark name"
        assert a.counters["udp_send_errors"] > 3  # what went to mallory, dropped
        assert [e.member.name for e in suspected if e.member.name != "mallory"] == []
        assert sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"})


@pytest.mark.parametrize("driver", ["lean", "trio"])
def test_forged_names_that_never_answer_leave_room_for_a_member_heard_directly(
    driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen dark names (ping requests for them: any stranger can ask) hold the lookups
    a node may run at once until their deadline; a real member that joins under a host
    name meanwhile has sent the node packets itself, so its name takes a place kept for
    such (``vouched_lookups``) and the node reaches it at once.  Before, its lookup
    waited for a free place and the two did not converge."""
    monkeypatch.setenv(DRIVER_VARIABLE, driver)
    monkeypatch.setattr(TransportLimits, "resolve_timeout", 6.0, raising=False)
    dark: list[str] = []
    real = transport.resolve_now

    def dark_resolver(host: str, port: int, family: int = 0) -> tuple[int, SockAddr]:
        if not host.endswith(".invalid"):
            return real(host, port, family)
        dark.append(host)
        time.sleep(6.5)  # never answers within the deadline
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(transport, "resolve_now", dark_resolver)
    requests = [
        encode_message(PingReq(i, f"mallory{i}", (f"dark{i}.invalid", 7946)))
        for i in range(TransportLimits.max_lookups)
    ]
    with start_node(name="a", bind="127.0.0.1:0", config=CONFIG) as a:
        with socket.socket(type=socket.SOCK_DGRAM) as udp:
            udp.sendto(encode_packet(CONFIG.label, "p1", requests), a.address)
        room = TransportLimits.max_lookups - TransportLimits.vouched_lookups
        wait_for(lambda: len(dark) >= room, CONVERGE_BOUND)
        time.sleep(0.2)  # (before: all sixteen)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with (
            a.events(timeout=0) as events,
            start_node(
                name="b",
                bind=f"127.0.0.1:{port}",
                advertise=f"localhost:{port}",
                seeds=[a.address],
                config=CONFIG,
            ) as b,
        ):
            wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
            time.sleep(2.0)  # four of a's probes, its push/pull
            suspected = [e.member.name for e in events if isinstance(e, MemberSuspect)]
            assert "b" not in suspected
            member = a.member("b")
            assert member is not None and member.address == ("localhost", port)
