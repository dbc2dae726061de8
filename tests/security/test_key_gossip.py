"""Key rotation by gossip (sans-IO): the keyring is a last-writer-wins register, so nodes
converge whatever order changes arrive in; keys never travel while plaintext is allowed;
malformed keyrings are dropped and counted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors import wire
from swimactors.membership.keys import MAX_CLOCK, KeyGossip
from swimactors.security import Keyring, KeyringError

K1, K2, K3 = b"1" * 32, b"2" * 32, b"3" * 32


def node(primary: bytes = K1, *others: bytes) -> tuple[KeyGossip, list[bytes]]:
    sent: list[bytes] = []
    return KeyGossip(Keyring(primary, others), sent.append), sent


def test_install_use_remove_spread_to_a_peer() -> None:
    a, sent = node()
    b, _ = node()
    a.install(K2)
    a.use(K2)
    a.remove(K1)
    assert a.keyring.keys == [K2]
    for payload in sent:
        b.notify_message(payload, 0.0)
    assert b.keyring.keys == [K2] and b.clock == a.clock == 3


@given(st.permutations(range(3)))
def test_changes_arriving_in_any_order_converge_on_the_last(order: list[int]) -> None:
    a, sent = node()
    a.install(K2)
    a.use(K2)
    a.remove(K1)
    b, _ = node()
    for index in order:
        b.notify_message(sent[index], 0.0)
    assert (b.keyring.primary, b.keyring.keys) == (K2, [K2])


def test_a_restarted_node_catches_up_by_push_pull() -> None:
    a, _ = node()
    a.install(K2)
    a.use(K2)
    restarted, _ = node(K1)
    assert restarted.local_state(join=True) == b""  # clock 0 is never sent
    restarted.merge_remote_state(a.local_state(join=False), join=True, now=0.0)
    assert restarted.keyring.primary == K2


def test_concurrent_changes_resolve_the_same_way_everywhere() -> None:
    a, from_a = node()
    b, from_b = node()
    a.install(K2)
    b.install(K3)
    a.notify_message(from_b[0], 0.0)
    b.notify_message(from_a[0], 0.0)
    assert a.keyring.keys == b.keyring.keys


def test_keys_never_travel_while_plaintext_is_allowed() -> None:
    a, sent = node()
    a.keyring.plaintext = "accept"
    with pytest.raises(KeyringError):
        a.install(K2)
    a.keyring.plaintext = "refuse"
    a.install(K2)
    b, _ = node()
    b.keyring.plaintext = "send"
    b.notify_message(sent[0], 0.0)
    assert b.keyring.keys == [K1] and b.counters["keyring_ignored_unsealed"] == 1
    a.keyring.plaintext = "accept"
    assert a.local_state(join=False) == b""


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        wire.dumps([1, K2, [K1]]),  # primary not among the keys
        wire.dumps([0, K1, [K1]]),  # clock 0
        wire.dumps([1, b"x", [b"x"]]),  # wrong key size
        wire.dumps([1, K1, [K1] * 17]),  # too many keys
        wire.dumps({"clock": 1}),
    ],
)
def test_malformed_keyrings_are_dropped_and_counted(payload: bytes) -> None:
    a, _ = node()
    a.notify_message(payload, 0.0)
    assert a.keyring.keys == [K1] and a.counters["rejected_keyring"] == 1


def test_refused_changes_raise_and_change_nothing() -> None:
    a, sent = node()
    with pytest.raises(KeyringError):
        a.use(K2)  # not installed
    with pytest.raises(KeyringError):
        a.remove(K1)  # the primary
    assert sent == [] and a.clock == 0


def test_at_the_clock_s_maximum_a_change_is_refused_not_made_alone() -> None:
    """A keyring at clock 2**53-1 (sent by a key holder) leaves no room for a next change.
    Before: the change was made here at clock 2**53, which every peer refuses as
    malformed, so this node alone sealed with the new key.  Now it raises, changing
    nothing, and says how to start over."""
    a, sent = node()
    b, _ = node()
    at_maximum = wire.dumps([MAX_CLOCK, K2, [K1, K2]])
    for peer in (a, b):
        peer.notify_message(at_maximum, 0.0)
        assert peer.clock == MAX_CLOCK and peer.keyring.primary == K2
    with pytest.raises(KeyringError, match="maximum"):
        a.use(K1)
    assert sent == [] and a.keyring.primary == K2 and a.clock == MAX_CLOCK
