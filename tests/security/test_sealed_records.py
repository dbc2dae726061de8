"""The keyed records of an actor connection (sans-IO): their wire form is fixed (a 4-byte
length, then AES-GCM with the record number as nonce and the label as associated data),
they open from any cut of the byte stream, and an altered, cut or foreign record never
yields plaintext (the connection closes on the error)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from swimactors.security import HandshakeError, SealedStream
from swimactors.security.handshake import RECORD

KEY_AB, KEY_BA = b"a" * 32, b"b" * 32


def pair(label: bytes = b"c") -> tuple[SealedStream, SealedStream]:
    return SealedStream(KEY_AB, KEY_BA, label), SealedStream(KEY_BA, KEY_AB, label)


def sealed(stream: SealedStream, *writes: bytes) -> bytes:
    out = bytearray()
    for data in writes:
        stream.seal(data, out)
    return bytes(out)


@pytest.mark.parametrize("label", [b"", b"c"])
def test_the_wire_form_is_length_then_aes_gcm_by_record_number_with_the_label(
    label: bytes,
) -> None:
    """What nodes of every release read: the empty label seals as no associated data."""
    a, _ = pair(label)
    expected = b""
    for number, data in enumerate([b"first", b"", b"x" * 1000]):
        record = AESGCM(KEY_AB).encrypt(number.to_bytes(12, "big"), data, label)
        expected += len(record).to_bytes(4, "big") + record
        a.seal(data, out := bytearray())
        assert bytes(out) == (len(record).to_bytes(4, "big") + record)
    assert sealed(pair(label)[0], b"first", b"", b"x" * 1000) == expected


@given(
    writes=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_records_open_from_any_cut_of_the_stream(writes: list[bytes], cuts: list[int]) -> None:
    a, b = pair()
    stream = sealed(a, *writes)
    plain = b""
    start = 0
    for end in [*sorted(c for c in cuts if c < len(stream)), len(stream)]:
        if end > start:
            plain += b.open(stream[start:end], bytearray())
            start = end
    assert plain == b"".join(writes)
    b.end()  # nothing cut


def test_a_write_larger_than_a_record_goes_as_several() -> None:
    a, b = pair()
    data = bytes(range(256)) * (RECORD // 256 * 2 + 3)
    stream = sealed(a, data)
    assert len(stream) == len(data) + 3 * (4 + 16)
    assert b.open(stream, bytearray()) == data


@given(st.data())
def test_an_altered_byte_yields_no_plaintext_it_breaks_the_stream(draw: st.DataObject) -> None:
    a, b = pair()
    writes = draw.draw(st.sampled_from([[b"hello"], [b"hello", b"world"]]))
    stream = bytearray(sealed(a, *writes))
    index = draw.draw(st.integers(0, len(stream) - 1))
    stream[index] ^= 1 << draw.draw(st.integers(0, 7))
    with pytest.raises(HandshakeError):
        plain = b.open(bytes(stream), bytearray())
        assert plain in (b"", b"hello")  # a bigger length waits for bytes never sent
        b.end()


def test_a_record_under_another_label_or_cut_short_fails() -> None:
    a, _ = pair(b"c")
    _, other = pair(b"d")
    with pytest.raises(HandshakeError):
        other.open(sealed(a, b"hello"), bytearray())
    _, b = pair()
    assert b.open(sealed(pair()[0], b"hello")[:-1], bytearray()) == b""
    with pytest.raises(HandshakeError):
        b.end()


def test_a_record_announcing_more_than_the_limit_breaks_the_stream() -> None:
    _, b = pair()
    with pytest.raises(HandshakeError):
        b.open((RECORD + 17).to_bytes(4, "big") + b"\0" * 64, bytearray())
