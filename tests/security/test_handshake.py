"""The connection handshake (sans-IO): two key holders agree on fresh keys and authentic
names; a wrong key or label, a tampered hello or proof, a plaintext peer or a replayed
recording fails; sealed frames open once, in order, and nowhere else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors.security import HandshakeError, Keyring, SealedStream, StreamHandshake

K1, K2 = b"1" * 32, b"2" * 32


def connect(
    ring_i: Keyring, ring_r: Keyring, label_i: str = "c", label_r: str = "c"
) -> tuple[SealedStream, SealedStream, StreamHandshake, StreamHandshake]:
    i = StreamHandshake(ring_i, label_i, "alice", initiator=True)
    r = StreamHandshake(ring_r, label_r, "bob", initiator=False)
    hello_i, hello_r = i.hello(), r.hello()
    proof_i, proof_r = i.on_hello(hello_r), r.on_hello(hello_i)
    return i.on_proof(proof_r), r.on_proof(proof_i), i, r


@given(st.lists(st.binary(max_size=300), max_size=10))
def test_key_holders_agree_and_frames_round_trip_in_order(frames: list[bytes]) -> None:
    a, b, i, r = connect(Keyring(K1), Keyring(K1))
    assert (i.peer_name, r.peer_name) == ("bob", "alice")
    for frame in frames:
        assert b.open(a.seal(frame)) == frame
        assert a.open(b.seal(frame)) == frame


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


def test_frames_replayed_reordered_or_reflected_fail() -> None:
    a, b, _, _ = connect(Keyring(K1), Keyring(K1))
    one, two = a.seal(b"1"), a.seal(b"2")
    with pytest.raises(HandshakeError):
        b.open(two)  # out of order
    assert b.open(one) == b"1"
    with pytest.raises(HandshakeError):
        b.open(one)  # replayed
    with pytest.raises(HandshakeError):
        a.open(a.seal(b"3"))  # reflected back to its sender


@pytest.mark.parametrize("frame", [b"", b"\x84plaintext", b"\x1d\x01", b"\x1d" * 300])
def test_a_plaintext_or_malformed_hello_fails(frame: bytes) -> None:
    with pytest.raises(HandshakeError):
        StreamHandshake(Keyring(K1), "c", "bob", initiator=False).on_hello(frame)
