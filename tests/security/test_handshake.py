"""The connection handshake (sans-IO): two key holders agree on fresh keys and authentic
names; a wrong key or label, a tampered hello or proof, a plaintext peer or a replayed
recording fails; sealed records open once, in order, and nowhere else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors.security import HandshakeError, Keyring, SealedStream, StreamHandshake

K1, K2 = b"1" * 32, b"2" * 32


def sealed(stream: SealedStream, data: bytes) -> bytes:
    """The records carrying ``data``."""
    out = bytearray()
    stream.seal(data, out)
    return bytes(out)


def opened(stream: SealedStream, data: bytes) -> bytes:
    return stream.open(data, bytearray())


def connect(
    ring_i: Keyring, ring_r: Keyring, label_i: str = "c", label_r: str = "c"
) -> tuple[SealedStream, SealedStream, StreamHandshake, StreamHandshake]:
    i = StreamHandshake(ring_i, label_i, "alice", initiator=True)
    r = StreamHandshake(ring_r, label_r, "bob", initiator=False)
    hello_i, hello_r = i.hello(), r.hello()
    proof_i, proof_r = i.on_hello(hello_r), r.on_hello(hello_i)
    return i.on_proof(proof_r), r.on_proof(proof_i), i, r


@given(st.lists(st.binary(max_size=300), max_size=10))
def test_key_holders_agree_and_records_round_trip_in_order(writes: list[bytes]) -> None:
    a, b, i, r = connect(Keyring(K1), Keyring(K1))
    assert (i.peer_name, r.peer_name) == ("bob", "alice")
    for data in writes:
        assert opened(b, sealed(a, data)) == data
        assert opened(a, sealed(b, data)) == data


def test_rotation_the_responder_follows_the_initiators_installed_key() -> None:
    connect(Keyring(K2, [K1]), Keyring(K1, [K2]))  # primaries differ, both hold both
    with pytest.raises(HandshakeError):
        connect(Keyring(K2), Keyring(K1))


@pytest.mark.parametrize(
    ("ring_r", "label_r"), [(Keyring(K2, [b"3" * 32]), "c"), (Keyring(K1), "other")]
)
def test_a_wrong_key_or_label_fails(ring_r: Keyring, label_r: str) -> None:
    with pytest.raises(HandshakeError):
        connect(Keyring(K1), ring_r, label_r=label_r)


def test_an_impostor_without_the_key_cannot_complete_under_any_name() -> None:
    """Mallory holds a key id (public) but not the key: her proof never verifies."""
    victim = StreamHandshake(Keyring(K1), "c", "bob", initiator=False)
    mallory = StreamHandshake(Keyring(K2, [K1]), "c", "alice", initiator=True)
    hello = bytearray(mallory.hello())
    hello[2:6] = Keyring(K1).primary_id  # claim the cluster key's id
    victim.on_hello(bytes(hello))
    with pytest.raises(HandshakeError):
        victim.on_proof(b"\0" * 32)


@given(st.data())
def test_a_tampered_hello_or_proof_fails(draw: st.DataObject) -> None:
    i = StreamHandshake(Keyring(K1), "c", "alice", initiator=True)
    r = StreamHandshake(Keyring(K1), "c", "bob", initiator=False)
    hello_i = bytearray(i.hello())
    index = draw.draw(st.integers(0, len(hello_i) - 1))
    hello_i[index] ^= 1 << draw.draw(st.integers(0, 7))
    try:
        proof_r = r.on_hello(bytes(hello_i))
    except HandshakeError:
        return
    proof_i = i.on_hello(r.hello())
    with pytest.raises(HandshakeError):
        i.on_proof(proof_r)
    with pytest.raises(HandshakeError):
        r.on_proof(proof_i)


def test_a_recorded_connection_cannot_be_replayed() -> None:
    first_i = StreamHandshake(Keyring(K1), "c", "alice", initiator=True)
    first_r = StreamHandshake(Keyring(K1), "c", "bob", initiator=False)
    recorded_hello, recorded_proof = first_i.hello(), first_i.on_hello(first_r.hello())
    victim = StreamHandshake(Keyring(K1), "c", "bob", initiator=False)
    victim.on_hello(recorded_hello)  # fresh responder nonce: other keys
    with pytest.raises(HandshakeError):
        victim.on_proof(recorded_proof)


def test_records_replayed_reordered_or_reflected_fail() -> None:
    a, b, _, _ = connect(Keyring(K1), Keyring(K1))
    one, two = sealed(a, b"1"), sealed(a, b"2")
    with pytest.raises(HandshakeError):
        opened(b, two)  # out of order
    assert opened(b, one) == b"1"
    with pytest.raises(HandshakeError):
        opened(b, one)  # replayed
    with pytest.raises(HandshakeError):
        opened(a, sealed(a, b"3"))  # reflected back to its sender


@pytest.mark.parametrize("frame", [b"", b"\x84plaintext", b"\x1d\x01", b"\x1d" * 300])
def test_a_plaintext_or_malformed_hello_fails(frame: bytes) -> None:
    with pytest.raises(HandshakeError):
        StreamHandshake(Keyring(K1), "c", "bob", initiator=False).on_hello(frame)
