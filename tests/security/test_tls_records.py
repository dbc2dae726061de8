"""TLS as sealed records (ssl.SSLObject over memory BIOs): the handshake proves the peer's
certificate names; what one end seals into ``unsent`` opens at the other however the bytes
are cut, in order, large writes included, and it interoperates with ``trio.SSLStream``; an
altered record, a cut record or an untrusted certificate breaks the stream."""

from __future__ import annotations

import pytest
import trio
import trio.testing
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors.security import TlsConfig
from swimactors.security.records import SecureStream
from swimactors.security.tls_stream import open_tls


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsConfig]:
    """TLS configs of "a" and "b" from one CA, and of "x" from another."""
    directory = tmp_path_factory.mktemp("pki")
    found = {}
    for ca_name, names in (("ca", ["a", "b"]), ("other", ["x"])):
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(directory / f"{ca_name}.pem"))
        for name in names:
            issued = ca.issue_cert(name)
            issued.cert_chain_pems[0].write_to_path(str(directory / f"{name}.crt"))
            issued.private_key_pem.write_to_path(str(directory / f"{name}.key"))
            found[name] = TlsConfig(
                cert=str(directory / f"{name}.crt"),
                key=str(directory / f"{name}.key"),
                ca=str(directory / f"{ca_name}.pem"),
            )
    return found


async def handshake(
    client: TlsConfig, server: TlsConfig
) -> tuple[tuple[SecureStream, frozenset[str]], tuple[SecureStream, frozenset[str]]]:
    """Both ends of a TLS connection over an in-memory stream pair."""
    left, right = trio.testing.memory_stream_pair()
    ends: dict[str, tuple[SecureStream, frozenset[str]]] = {}

    async def open_end(side: str, stream: trio.abc.Stream, config: TlsConfig) -> None:
        context = config.server if side == "server" else config.client
        ends[side] = await open_tls(stream, context, server_side=side == "server")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(open_end, "client", left, client)
            nursery.start_soon(open_end, "server", right, server)
    return ends["client"], ends["server"]


async def test_the_handshake_proves_both_certificates_names(
    configs: dict[str, TlsConfig],
) -> None:
    (client, server_names), (server, client_names) = await handshake(configs["a"], configs["b"])
    assert (server_names, client_names) == ({"b"}, {"a"})
    await client.send_all(b"hello")
    assert await server.receive_some() == b"hello"
    await server.send_all(b"x" * 300_000)  # many TLS records in one write
    received = b""
    while len(received) < 300_000:
        received += await client.receive_some(100_000)
    assert received == b"x" * 300_000


@settings(max_examples=25, deadline=None)
@given(
    writes=st.lists(st.binary(min_size=1, max_size=40_000), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=5000), max_size=30),
)
def test_sealed_bytes_open_in_order_however_they_are_cut(
    configs: dict[str, TlsConfig], writes: list[bytes], cuts: list[int]
) -> None:
    async def main() -> None:
        (sender, _), (receiver, _) = await handshake(configs["a"], configs["b"])
        for data in writes:
            sender.seal(data)
        wire = bytes(sender.unsent)
        opened = b""
        for cut in [*cuts, len(wire)]:
            piece, wire = wire[:cut], wire[cut:]
            if piece:
                opened += receiver.open(piece)
        assert opened == b"".join(writes)
        receiver.end()  # whole records: a clean end

    trio.run(main)


async def test_it_speaks_tls_with_trio_ssl_streams(configs: dict[str, TlsConfig]) -> None:
    left, right = trio.testing.memory_stream_pair()
    theirs = trio.SSLStream(right, configs["b"].server, server_side=True)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(theirs.do_handshake)
            ours, names = await open_tls(left, configs["a"].client, server_side=False)
        assert names == {"b"}
        await ours.send_all(b"ping")
        assert await theirs.receive_some() == b"ping"
        await theirs.send_all(b"pong")
        assert await ours.receive_some() == b"pong"


async def test_an_altered_or_cut_record_breaks_the_stream(configs: dict[str, TlsConfig]) -> None:
    (sender, _), (receiver, _) = await handshake(configs["a"], configs["b"])
    sender.seal(b"important")
    record = bytearray(sender.unsent)
    sender.unsent.clear()
    record[-3] ^= 1
    with pytest.raises(trio.BrokenResourceError):
        receiver.open(bytes(record))
    (sender, _), (receiver, _) = await handshake(configs["a"], configs["b"])
    sender.seal(b"cut short")
    assert receiver.open(bytes(sender.unsent[:-4])) == b""
    with pytest.raises(trio.BrokenResourceError, match="inside a TLS record"):
        receiver.end()


async def test_a_certificate_from_another_ca_is_refused_by_both_ends(
    configs: dict[str, TlsConfig],
) -> None:
    left, right = trio.testing.memory_stream_pair()
    failures: list[str] = []

    async def open_end(stream: trio.abc.Stream, config: TlsConfig, server_side: bool) -> None:
        context = config.server if server_side else config.client
        try:
            await open_tls(stream, context, server_side=server_side)
        except trio.BrokenResourceError as exc:
            failures.append(str(exc))
        await stream.aclose()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(open_end, left, configs["a"], False)
            nursery.start_soon(open_end, right, configs["x"], True)
    assert len(failures) == 2 and all("TLS handshake" in f for f in failures), failures
