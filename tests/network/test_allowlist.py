"""``Config.cidrs_allowed`` on real loopback sockets, on both drivers (trio and the lean
membership thread): a datagram from a source outside the list is dropped before it is
opened or decoded (``udp_not_allowed``), a TCP connection from one is closed before
anything is read (``tcp_not_allowed``), a node outside it never gets into the view of
nodes that keep it out (memberlist's TestMemberlist_JoinDifferentNetworksMultiMasks; there
the outsider still learns the others from their answer to its push/pull, here nothing is
answered), and a system's actor port refuses it too."""

from __future__ import annotations

import logging
import socket

import pytest
import trio

from swimactors.membership import Status, start_node
from swimactors.membership.lean import DRIVER_VARIABLE
from swimactors.security import Keyring
from tests.cluster.cluster_helpers import FAST, open_systems, until
from tests.fronts.helpers import sees_up, wait_for
from tests.fronts.timing import CONFIG, CONVERGE_BOUND
from tests.security.test_actor_port import (
    Echo,
    actor_port,
    closed_by_peer,
    counter,
    raw_connection,
)

pytestmark = pytest.mark.network

GUARDED = CONFIG.replace(cidrs_allowed="127.0.0.1/32")
"""127.0.0.1 only: a peer bound to 127.0.0.2 (also loopback) is outside."""


def send_from(source: str, destination: tuple[str, int], data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(data, destination)


def connect_from(source: str, destination: tuple[str, int]) -> bytes:
    """Connect from ``source``, send a frame's length, and read until the peer closes."""
    with socket.create_connection(destination, timeout=5, source_address=(source, 0)) as sock:
        try:
            sock.sendall(b"\x00\x00\x00\x10")
            return sock.recv(64)
        except ConnectionResetError:
            return b""


@pytest.mark.parametrize("driver", ["trio", "lean"])
@pytest.mark.parametrize("keyed", [False, True])
def test_sources_outside_the_list_are_dropped_before_decoding(
    driver: str, keyed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DRIVER_VARIABLE, driver)
    config = GUARDED.replace(keyring=Keyring(b"K" * 32)) if keyed else GUARDED
    with start_node(name="a", bind="127.0.0.1:0", config=config) as a:
        send_from("127.0.0.2", a.address, b"junk from outside")
        send_from("127.0.0.1", a.address, b"junk from inside")
        # the same socket reads them in order: once the second is refused, the first was read
        inside = "rejected_sealing" if keyed else "rejected_malformed"
        wait_for(lambda: sum(v for k, v in a.counters.items() if k.startswith(inside)), 5.0)
        counters = a.counters
        assert counters["udp_not_allowed"] == 1
        assert sum(v for k, v in counters.items() if k.startswith(inside)) == 1
        assert connect_from("127.0.0.2", a.address) == b""
        wait_for(lambda: a.counters["tcp_not_allowed"] == 1, 5.0)
        assert a.counters["tcp_connections_accepted"] == 0


@pytest.mark.parametrize("driver", ["trio", "lean"])
def test_a_node_outside_the_list_never_joins_those_that_keep_it_out(
    driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DRIVER_VARIABLE, driver)
    with (
        start_node(name="a", bind="127.0.0.1:0", config=GUARDED) as a,
        start_node(name="b", bind="127.0.0.1:0", seeds=[a.address], config=GUARDED) as b,
    ):
        wait_for(lambda: sees_up(a, {"a", "b"}) and sees_up(b, {"a", "b"}), CONVERGE_BOUND)
        with start_node(name="c", bind="127.0.0.2:0", seeds=[a.address, b.address]) as c:
            # its push/pulls come over TCP from 127.0.0.1 (the route's source) but name its
            # address, where an answer would go: refused whole
            wait_for(lambda: a.counters["rejected_not_allowed"] >= 1, CONVERGE_BOUND)
            wait_for(lambda: b.counters["rejected_not_allowed"] >= 1, CONVERGE_BOUND)
            for node in (a, b):
                assert {m.name for m in node.members()} == {"a", "b"}
            assert {m.name for m in c.members() if m.status is Status.UP} == {"c"}


async def test_a_systems_actor_port_refuses_connections_from_outside_the_list() -> None:
    """A system's actor port reads the same list: a connection from outside is closed
    before the handshake (``not_allowed``); members inside still talk."""
    with trio.fail_after(30):
        async with open_systems(2, config=FAST.replace(cidrs_allowed="127.0.0.1/32")) as (a, b):
            stream = await raw_connection(actor_port(b), source="127.0.0.2")
            assert await closed_by_peer(stream)
            await until(lambda: counter(b, "not_allowed")() == 1)
            await b.spawn(Echo(), name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            assert await ref.ask("inside") == "inside"
            assert counter(b, "not_allowed")() == 1


def test_a_node_advertising_an_address_outside_its_own_list_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """memberlist's node that "should not even see itself": here it knows itself, and its
    operator is told that peers with the same list will refuse it."""
    caplog.set_level(logging.WARNING)
    with start_node(
        name="a", bind="127.0.0.1:0", config=CONFIG.replace(cidrs_allowed="10.0.0.0/8")
    ):
        pass
    assert any("outside its own cidrs_allowed" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with start_node(name="b", bind="127.0.0.1:0", config=GUARDED):
        pass
    assert not any("cidrs_allowed" in r.getMessage() for r in caplog.records)
