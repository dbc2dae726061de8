"""Mutual TLS on the TCP channels (push/pull and actor connections), with certificates from
a throwaway CA (trustme): a TLS cluster forms and answers remote asks; a certificate for
another name, another CA's certificate, or none at all is refused on both channels, counted
and logged once per peer; a peer that never finishes the handshake is dropped in time."""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import trio
import trustme

import swimactors
from swimactors.actors import protocol
from swimactors.actors.transport import TransportConfig
from swimactors.membership import Status
from swimactors.membership.messages import Ping, encode_message, encode_packet
from swimactors.membership.transport import TransportLimits
from swimactors.membership.types import Packet
from swimactors.security import Keyring, TlsConfig, TlsError
from swimactors.wire import encode_frame
from tests.cluster.cluster_helpers import FAST, cluster_of, until

pytestmark = pytest.mark.network

STRICT = TransportConfig(handshake_timeout=0.5)


class Echo(swimactors.Actor):
    def receive(self, msg: object, ctx: swimactors.Context) -> object:
        return msg


class Pki:
    """A CA and the files of the certificates it issues, under ``directory``."""

    def __init__(self, directory: Path, ca: trustme.CA | None = None) -> None:
        self.directory = directory
        self.ca = ca or trustme.CA()
        self.ca_file = directory / f"ca-{id(self.ca)}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def config(self, *names: str) -> TlsConfig:
        """A node's TLS config with a certificate naming ``names``."""
        issued = self.ca.issue_cert(*names)
        stem = self.directory / f"{'-'.join(names)}-{id(issued)}"
        issued.cert_chain_pems[0].write_to_path(f"{stem}.crt")
        issued.private_key_pem.write_to_path(f"{stem}.key")
        return TlsConfig(cert=f"{stem}.crt", key=f"{stem}.key", ca=str(self.ca_file))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def open_tls_system(
    name: str,
    tls: TlsConfig,
    seeds: list[str],
    transport: TransportConfig | None = None,
    membership_thread: bool = False,
) -> AbstractAsyncContextManager[swimactors.System]:
    return swimactors.open_system(
        name,
        bind="127.0.0.1:0",
        seeds=seeds,
        config=FAST.replace(tls=tls),
        transport=transport,
        shutdown_timeout=2.0,
        membership_thread=membership_thread,
    )


def seed_of(system: swimactors.System) -> list[str]:
    host, port = cluster_of(system).node.address
    return [f"{host}:{port}"]


def up(system: swimactors.System) -> set[str]:
    return {m.name for m in cluster_of(system).node.members() if m.status is Status.UP}


def actor_counter(system: swimactors.System, name: str) -> Callable[[], int]:
    return lambda: cluster_of(system).transport.counters[name]


def node_counter(system: swimactors.System, name: str) -> Callable[[], int]:
    return lambda: cluster_of(system).node.counters[name]


async def tls_client(address: tuple[str, int], tls: TlsConfig | None) -> trio.abc.Stream:
    """A connection to ``address``: TLS with ``tls``'s certificate, or plain TCP."""
    stream = await trio.open_tcp_stream(*address)
    if tls is None:
        return stream
    secured = trio.SSLStream(stream, tls.client)
    await secured.do_handshake()
    return secured


async def closed_by_peer(stream: trio.abc.Stream, timeout: float = 5.0) -> bool:
    with trio.move_on_after(timeout):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


def actor_port(system: swimactors.System) -> tuple[str, int]:
    address = cluster_of(system).actor_address(system.name)
    assert address is not None
    return address


@pytest.mark.parametrize("thread", [False, True], ids=["trio", "membership-thread"])
async def test_a_tls_cluster_forms_and_answers_remote_asks(pki: Pki, thread: bool) -> None:
    with trio.fail_after(30):
        async with (
            open_tls_system("n0", pki.config("n0"), [], membership_thread=thread) as a,
            open_tls_system("n1", pki.config("n1"), seed_of(a), membership_thread=thread) as b,
            open_tls_system("n2", pki.config("n2"), seed_of(a), membership_thread=thread) as c,
        ):
            await until(lambda: all(up(s) == {"n0", "n1", "n2"} for s in (a, b, c)))
            await c.spawn(Echo(), name="echo", public=True)
            ref = await a.wait_for("echo", timeout=10)
            answers = [await ref.ask(["x" * 5000, n]) for n in range(50)]
            assert [n for _, n in answers] == list(range(50))  # type: ignore[misc]
            big = "y" * 1_000_000  # many TLS records, more than one non-blocking send takes
            assert await ref.ask(big) == big
            assert await (await b.wait_for("echo", timeout=10)).ask("from b") == "from b"
            for system in (a, b, c):  # (a membership thread copies its counters now and then)
                await until(lambda s=system: node_counter(s, "tcp_frames_received")() > 0)
                assert node_counter(system, "tls_refused")() == 0
                assert node_counter(system, "rejected_certificate")() == 0
                assert actor_counter(system, "rejected_tls")() == 0


async def test_a_node_whose_own_certificate_names_another_node_cannot_start(pki: Pki) -> None:
    with pytest.raises(TlsError, match="names mallory, not the node 'n0'"):
        async with open_tls_system("n0", pki.config("mallory"), []):
            pass
    with pytest.raises(TlsError, match="cannot load"):
        TlsConfig(cert="/nonexistent.crt", key="/nonexistent.key", ca=str(pki.ca_file))


async def test_a_certificate_for_another_name_is_refused(
    pki: Pki, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mallory holds a certificate from the cluster's CA, for "mallory": she cannot speak
    as n1 on either channel, and a member dialled at her address is not her."""
    caplog.set_level(logging.WARNING)
    mallory = pki.config("mallory")
    with trio.fail_after(30):
        async with (
            open_tls_system("n0", pki.config("n0"), [], STRICT) as a,
            open_tls_system("n1", pki.config("n1"), seed_of(a), STRICT) as b,
        ):
            await until(lambda: up(a) == {"n0", "n1"})
            # the actor port: a HELLO as n1 under mallory's certificate, three times
            for _ in range(3):
                stream = await tls_client(actor_port(a), mallory)
                await stream.send_all(protocol.encode(protocol.Hello("n1", 1, 64)))
                assert await closed_by_peer(stream)
            assert actor_counter(a, "rejected_certificate")() == 3
            # push/pull: a packet from "n1" on mallory's connection is dropped by the core
            ping = encode_packet(FAST.label, "n1", [encode_message(Ping(1, "n0"))])
            for _ in range(3):
                stream = await tls_client(cluster_of(a).node.address, mallory)
                await stream.send_all(encode_frame(ping))
                await trio.aclose_forcefully(stream)
            await until(lambda: node_counter(a, "rejected_certificate")() == 3)
            # dialling: mallory listens where a believes a member "n9" has its actor port
            listeners = await trio.open_ssl_over_tcp_listeners(0, mallory.server, host="127.0.0.1")
            mallory_port = listeners[0].transport_listener.socket.getsockname()[1]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.serve_listeners, closed_by_peer, listeners)
                monkeypatch.setattr(
                    cluster_of(a), "actor_address", lambda node: ("127.0.0.1", mallory_port)
                )
                ghost = cluster_of(a).transport.resolve("n9", "echo", 1)
                with pytest.raises(swimactors.NodeDown):
                    await ghost.ask("for n9", timeout=5)
                assert actor_counter(a, "rejected_certificate")() == 4
                monkeypatch.undo()
                nursery.cancel_scope.cancel()
            # the real members were never disturbed
            await b.spawn(Echo(), name="echo", public=True)
            assert await (await a.wait_for("echo", timeout=10)).ask("ok") == "ok"
    refusals = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
    actor_logs = [m for m in refusals if m.startswith("refusing actor connections")]
    node_logs = [m for m in refusals if m.startswith("refusing TCP")]
    assert len(actor_logs) == 1, refusals  # once per peer host, not once per connection
    assert "HELLO as 'n1' with a certificate for mallory" in actor_logs[0]
    assert node_logs == []  # the push/pull connection itself was valid TLS


async def test_a_dialled_membership_peer_must_hold_the_members_certificate(pki: Pki) -> None:
    """The push/pull channel, dialling: the member known at an address must answer."""
    from swimactors.membership.transport import Transport

    mallory = pki.config("mallory")
    listeners = await trio.open_ssl_over_tcp_listeners(0, mallory.server, host="127.0.0.1")
    port = listeners[0].transport_listener.socket.getsockname()[1]
    sockets = Transport(tcp_timeout=2.0, tls=pki.config("n0"))
    await sockets.bind("127.0.0.1", 0)
    sockets.name_at = lambda address: "n1" if address[1] == port else None
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, closed_by_peer, listeners)
            sockets.start(nursery, lambda source, data, peer=None: None)
            sockets.send(Packet(("127.0.0.1", port), b"push/pull", reliable=True))
            await until(lambda: sockets.counters["tls_refused"] == 1)
            assert sockets.counters["tcp_frames_sent"] == 0
            nursery.cancel_scope.cancel()
    await sockets.aclose()


async def test_no_certificate_or_another_cas_is_refused_and_nothing_hangs(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    stranger = Pki(tmp_path).config("n2")  # the right name, from another CA
    with trio.fail_after(30):
        async with open_tls_system("n0", pki.config("n0"), [], STRICT) as a:
            # another CA's node cannot join (each side refuses the other's certificate)
            async with open_tls_system("n2", stranger, seed_of(a), STRICT) as outsider:
                await until(lambda: node_counter(a, "tls_refused")() >= 2)
                await until(lambda: node_counter(outsider, "tls_refused")() >= 2)
                assert up(a) == {"n0"}
                assert up(outsider) == {"n2"}
            # plaintext on either port is refused
            for port in (actor_port(a), cluster_of(a).node.address):
                stream = await tls_client(port, None)
                await stream.send_all(protocol.encode(protocol.Hello("n5", 1, 64)))
                assert await closed_by_peer(stream)
            await until(lambda: actor_counter(a, "rejected_tls")() == 1)
            # TLS that trusts the CA but shows no certificate of its own
            anonymous = ssl.create_default_context(cafile=str(pki.ca_file))
            anonymous.check_hostname = False
            refused = node_counter(a, "tls_refused")()
            for port in (actor_port(a), cluster_of(a).node.address):
                tcp = await trio.open_tcp_stream(*port)
                stream = trio.SSLStream(tcp, anonymous)
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.do_handshake()  # TLS 1.3: the server refuses after this
                    await stream.send_all(protocol.encode(protocol.Hello("n5", 1, 64)))
                assert await closed_by_peer(stream)
            await until(lambda: actor_counter(a, "rejected_tls")() == 2)
            await until(lambda: node_counter(a, "tls_refused")() == refused + 1)
            # a peer that connects and says nothing is dropped at the handshake deadline,
            # on the actor port (0.5 s here) and on membership's TCP (tcp_timeout, 1 s)
            refused = node_counter(a, "tls_refused")()
            for port, limit in ((actor_port(a), 0.5), (cluster_of(a).node.address, 1.0)):
                started = trio.current_time()
                silent = await tls_client(port, None)
                assert await closed_by_peer(silent, 3.0)
                assert limit <= trio.current_time() - started < limit + 1.5
            assert actor_counter(a, "handshake_timeouts")() == 1
            assert node_counter(a, "tls_refused")() == refused + 1
    logged = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
    # a and the outsider each logged the other once, for >= 2 refusals each (+ plaintext)
    assert len([m for m in logged if m.startswith("refusing TCP")]) == 2, logged
    assert len([m for m in logged if m.startswith("refusing actor")]) == 1, logged


async def test_tls_and_a_keyring_together(pki: Pki) -> None:
    """A keyring seals the datagrams TLS does not cover; actor connections use TLS alone."""
    key = Keyring(b"K" * 32)
    with trio.fail_after(30):
        async with (
            swimactors.open_system(
                "n0",
                bind="127.0.0.1:0",
                config=FAST.replace(tls=pki.config("n0"), keyring=key),
                shutdown_timeout=2.0,
            ) as a,
            swimactors.open_system(
                "n1",
                bind="127.0.0.1:0",
                seeds=seed_of(a),
                config=FAST.replace(tls=pki.config("n1"), keyring=key),
                shutdown_timeout=2.0,
            ) as b,
        ):
            await until(lambda: up(a) == up(b) == {"n0", "n1"})
            await b.spawn(Echo(), name="echo", public=True)
            assert await (await a.wait_for("echo", timeout=10)).ask("both") == "both"
            assert node_counter(a, "opened_packets")() > 0


def test_certificate_names_reads_dns_and_ip_alternatives() -> None:
    from swimactors.security.tls import certificate_names

    alternatives = (
        ("DNS", "n0"),
        ("IP Address", "10.0.0.1"),
        ("IP Address", "2001:DB8:0:0:0:0:0:1\n"),
        ("IP Address", "junk"),
        ("URI", "x:y"),
    )
    cert = {"subjectAltName": alternatives}
    assert certificate_names(cert) == {"n0", "10.0.0.1", "2001:db8::1"}
    assert certificate_names(None) == frozenset()
    assert certificate_names({}) == frozenset()


async def test_strangers_stalling_in_tls_handshakes_hold_a_bounded_number_of_places(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 connections from 8 addresses to each TCP port, each sending the first bytes of
    a ClientHello and no more: at most 16 handshakes stay per port (4 per address), the
    oldest making room for each newcomer, long before the 30 s deadlines; a new node then
    joins over TLS and asks."""
    monkeypatch.setattr(TransportLimits, "max_handshakes", 16)
    monkeypatch.setattr(TransportLimits, "max_handshakes_per_address", 4)
    crowded = TransportConfig(
        handshake_timeout=30.0, max_handshakes=16, max_handshakes_per_address=4
    )
    config = FAST.replace(tcp_timeout=30.0)
    with trio.fail_after(30):
        async with swimactors.open_system(
            "n0",
            bind="127.0.0.1:0",
            config=config.replace(tls=pki.config("n0")),
            transport=crowded,
            shutdown_timeout=2.0,
        ) as a:
            await a.spawn(Echo(), name="echo", public=True)
            stalled = []
            for port in (actor_port(a), cluster_of(a).node.address):
                for n in range(64):
                    sock = trio.socket.socket()
                    await sock.bind((f"127.0.0.{2 + n % 8}", 0))
                    await sock.connect(port)
                    stream = trio.SocketStream(sock)
                    await stream.send_all(b"\x16\x03\x01")  # a ClientHello's record header
                    stalled.append(stream)
            await until(lambda: actor_counter(a, "handshakes_displaced")() == 64 - 16)
            await until(lambda: node_counter(a, "tls_handshakes_displaced")() == 64 - 16)
            assert len(cluster_of(a).transport._newcomers) == 16
            async with swimactors.open_system(
                "n1",
                bind="127.0.0.1:0",
                seeds=seed_of(a),
                config=config.replace(tls=pki.config("n1")),
                shutdown_timeout=2.0,
            ) as b:
                await until(lambda: up(a) == up(b) == {"n0", "n1"})
                ref = await b.wait_for("echo", timeout=10)
                assert await ref.ask("through") == "through"
            for stream in stalled:
                await stream.aclose()
