"""Sealing of packets (sans-IO): what one sealer seals another opens exactly once; every
tampered, truncated, replayed, stale, wrong-key, wrong-label or plaintext packet is dropped
and counted, never returned for decoding."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors.security import OVERHEAD, Keyring, KeyringError, PacketSealer, Rejected
from swimactors.security.keyring import generate_key

KEY = b"k" * 32
OTHER = b"o" * 32
NOW = 1_700_000_000.0

payloads = st.binary(min_size=0, max_size=2000)


def pair(
    sender_ring: Keyring | None = None, receiver_ring: Keyring | None = None, label: str = "c"
) -> tuple[PacketSealer, PacketSealer]:
    return (
        PacketSealer(sender_ring or Keyring(KEY), label),
        PacketSealer(receiver_ring or Keyring(KEY), label),
    )


@given(payloads)
def test_a_sealed_packet_opens_once_and_grows_by_the_overhead(data: bytes) -> None:
    sender, receiver = pair()
    sealed = sender.seal(data, NOW)
    assert len(sealed) == len(data) + OVERHEAD
    assert len(data) < 8 or sealed[25 : 25 + len(data)] != data  # not readable in transit
    assert receiver.open(sealed, NOW) == data
    assert receiver.open(sealed, NOW + 1) is Rejected.REPLAYED
    assert receiver.counters["opened_packets"] == 1
    assert receiver.counters["rejected_sealing_replayed"] == 1


@given(payloads, st.data())
def test_any_flipped_bit_is_dropped_as_forged_or_unknown(data: bytes, draw: st.DataObject) -> None:
    sender, receiver = pair()
    sealed = bytearray(sender.seal(data, NOW))
    index = draw.draw(st.integers(1, len(sealed) - 1))
    sealed[index] ^= 1 << draw.draw(st.integers(0, 7))
    result = receiver.open(bytes(sealed), NOW)
    assert result in (Rejected.FORGED, Rejected.UNKNOWN_KEY)
    assert receiver.counters["opened_packets"] == 0


@given(payloads, st.data())
def test_a_truncated_packet_is_dropped(data: bytes, draw: st.DataObject) -> None:
    sender, receiver = pair()
    sealed = sender.seal(data, NOW)
    cut = draw.draw(st.integers(1, len(sealed) - 1))
    assert receiver.open(sealed[:cut], NOW) in (Rejected.TRUNCATED, Rejected.FORGED)


@given(payloads)
def test_wrong_key_and_wrong_label_are_dropped(data: bytes) -> None:
    sender, stranger = pair(Keyring(KEY), Keyring(OTHER))
    assert stranger.open(sender.seal(data, NOW), NOW) is Rejected.UNKNOWN_KEY
    sender, other_cluster = PacketSealer(Keyring(KEY), "a"), PacketSealer(Keyring(KEY), "b")
    assert other_cluster.open(sender.seal(data, NOW), NOW) is Rejected.FORGED


@given(st.binary(max_size=200))
def test_random_bytes_never_open(data: bytes) -> None:
    _, receiver = pair()
    result = receiver.open(bytes([0x1C]) + data, NOW)
    assert isinstance(result, Rejected)
    assert isinstance(receiver.open(data, NOW), Rejected)  # plaintext refused by default


@given(st.permutations(list(range(40))), st.sets(st.integers(0, 39), max_size=10))
def test_reordered_and_duplicated_packets_open_exactly_once(
    order: list[int], duplicated: set[int]
) -> None:
    sender, receiver = pair()
    sealed = [sender.seal(bytes([i]), NOW) for i in range(40)]
    opened = []
    for i in order + sorted(duplicated):
        result = receiver.open(sealed[i], NOW)
        if not isinstance(result, Rejected):
            opened.append(result[0])
    assert sorted(opened) == list(range(40))


def test_packets_outside_the_window_or_the_age_are_dropped() -> None:
    sender, receiver = pair()
    first = sender.seal(b"old", NOW)
    later = [sender.seal(b"x", NOW) for _ in range(1100)]
    assert receiver.open(later[-1], NOW) == b"x"
    assert receiver.open(first, NOW) is Rejected.REPLAYED  # 1,100 behind: out of the window
    ring = Keyring(KEY, max_age=30)
    sender, receiver = pair(ring, Keyring(KEY, max_age=30))
    assert receiver.open(sender.seal(b"x", NOW - 31), NOW) is Rejected.STALE
    assert receiver.open(sender.seal(b"x", NOW + 31), NOW) is Rejected.STALE
    assert receiver.open(sender.seal(b"x", NOW - 29), NOW) == b"x"


def test_sessions_are_bounded_and_only_silent_ones_forgotten() -> None:
    receiver = PacketSealer(Keyring(KEY, max_age=10), "c", max_sessions=2)
    senders = [PacketSealer(Keyring(KEY), "c") for _ in range(3)]
    replay = senders[0].seal(b"a", NOW)
    assert receiver.open(replay, NOW) == b"a"
    assert receiver.open(senders[1].seal(b"b", NOW), NOW) == b"b"
    assert receiver.open(senders[2].seal(b"c", NOW + 5), NOW + 5) is Rejected.BUSY
    # 21 s later the first session is silent long enough to be forgotten
    assert receiver.open(senders[2].seal(b"c", NOW + 21), NOW + 21) == b"c"
    assert receiver.sessions == 2
    assert receiver.open(replay, NOW + 21) is Rejected.STALE  # and its replay is too old


def test_rotation_install_use_remove() -> None:
    old_ring, new_key = Keyring(KEY), OTHER
    sender, receiver = pair(old_ring, Keyring(KEY))
    old_ring.install(new_key)
    assert receiver.open(sender.seal(b"1", NOW), NOW) == b"1"  # still sealing with KEY
    receiver.keyring.install(new_key)
    old_ring.use(new_key)
    assert receiver.open(sender.seal(b"2", NOW), NOW) == b"2"
    receiver.keyring.use(new_key)
    receiver.keyring.remove(KEY)
    sealed_with_old = PacketSealer(Keyring(KEY), "c").seal(b"3", NOW)
    assert receiver.open(sealed_with_old, NOW) is Rejected.UNKNOWN_KEY
    assert receiver.open(sender.seal(b"4", NOW), NOW) == b"4"  # the sender left KEY for good
    with pytest.raises(KeyringError):
        receiver.keyring.remove(new_key)  # the primary


def test_plaintext_policies_for_migration() -> None:
    sending_plain = Keyring(KEY, plaintext="send")
    accepting = Keyring(KEY, plaintext="accept")
    strict = Keyring(KEY)
    plain_sender = PacketSealer(sending_plain, "c")
    assert plain_sender.seal(b"\x84plain", NOW) == b"\x84plain"
    assert PacketSealer(accepting, "c").open(b"\x84plain", NOW) == b"\x84plain"
    assert PacketSealer(strict, "c").open(b"\x84plain", NOW) is Rejected.UNSEALED
    sealed = PacketSealer(accepting, "c").seal(b"x", NOW)
    assert PacketSealer(sending_plain, "c").open(sealed, NOW) == b"x"


def test_keys_are_checked_and_never_printed() -> None:
    key = generate_key()
    assert len(base64.b64decode(key)) == 32
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(KeyringError):
            Keyring(bad)
    with pytest.raises(KeyringError):
        Keyring(KEY).use(OTHER)  # not installed
    assert key not in repr(Keyring(key))


def test_keyring_files_round_trip(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "keyring.json"
    ring = Keyring(KEY, [OTHER])
    ring.save(path)
    loaded = Keyring.load(path)
    assert loaded.keys == [KEY, OTHER]
    assert path.stat().st_mode & 0o077 == 0
    path.write_text("{}")
    with pytest.raises(KeyringError):
        Keyring.load(path)
