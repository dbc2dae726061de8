"""A full state too large for one message, in parts: the cut, its codec, the merge in any
order, and the rule that a node re-registers after a false DOWN only once the parts it
merged cover every key."""

from __future__ import annotations

import contextlib
import random

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors import wire
from swimactors.registry import NameAdded, NameLost, Registry, RegistryDecodeError, State
from swimactors.registry.codec import decode, decode_part, encode, encode_part
from swimactors.registry.crdt import entry_dot, joined
from swimactors.registry.parts import PART_ITEMS, Coverage, Part, cut

from .histories import History, histories
from .test_delegate import FakeCore, _node


def _parts(state: State, items: int, size: int = 1 << 20) -> list[Part]:
    """A whole cycle of ``state``'s parts, through the codec."""
    parts, start = [], None
    while True:
        part = cut(state, start, items, size)
        parts.append(decode_part(encode_part(part)))
        if part.end is None:
            return parts
        assert start is None or part.end > start  # every part moves on
        start = part.end


def _merge_in_order(receiver: Registry, parts: list[Part]) -> None:
    """Merge ``parts`` as given; a piece whose earlier counters have not arrived waits
    (as the delegate's waiting pieces do) and is merged as soon as they have."""
    waiting = []
    for part in parts:
        receiver.merge(part.state)
        if part.piece is not None:
            waiting.append(part.piece)
        progress = True
        while progress:
            left = [piece for piece in waiting if not receiver.merge_piece(piece)]
            progress, waiting = len(left) < len(waiting), left
    assert waiting == []


@settings(max_examples=150)
@given(histories, st.integers(1, 40), st.integers(40, 400), st.randoms(use_true_random=False))
def test_any_state_in_parts_merged_in_any_order_is_the_whole(
    history: History, items: int, size: int, rng: random.Random
) -> None:
    for state in history.states:
        parts = _parts(state, items, size)
        for receiver_state in (State(), *history.states[:2]):
            receiver = Registry("zz", 0)
            receiver.merge(receiver_state)
            shuffled = list(parts)
            rng.shuffle(shuffled)
            _merge_in_order(receiver, shuffled)
            assert receiver.state() == joined(receiver_state, state)


def test_a_state_that_fits_is_one_whole_part_every_version_reads() -> None:
    registry = Registry("b", 1)
    registry.register_all([(f"name-{i}", "/user/x#1", b"") for i in range(100)])
    part = registry.part(None)
    assert part.whole and part.piece is None
    assert decode(encode_part(part)) == registry.state()  # the format from before parts


NAMES = 45000


def test_a_registry_past_one_message_converges_between_two_nodes_in_parts() -> None:
    """One process of 45,000 names (270,000 CBOR items: past ~43,000 registrations, or one
    process at MAX_NAMES_PER_PROCESS, every peer refused the whole state) reaches a peer
    by push/pulls, in parts of one process."""
    a, _ = _node("a")
    b, _ = _node("b")
    a.register("mine", "a#1")
    b.registry.register_all([(f"service-{i}", f"/user/w-{i}#1", b"") for i in range(NAMES)])
    with pytest.raises(RegistryDecodeError, match="CBOR items"):
        decode(encode(b.registry.state()))
    exchanges = 0
    while len(a.registry) < NAMES + 1:
        data = b.local_state(join=False)
        assert wire.scan(data) <= PART_ITEMS + 32  # the part's own framing: ~20 items
        a.merge_remote_state(data, join=False, now=float(exchanges))
        b.merge_remote_state(a.local_state(join=False), join=False, now=float(exchanges))
        exchanges += 1
    per_part = (PART_ITEMS - 6) // 6  # registrations of 6 items, after their process's 6
    assert exchanges == -(-NAMES // per_part) == 9
    assert a.registry.state() == joined(a.registry.state(), b.registry.state())
    assert b.registry.lookup("mine") is not None
    assert a.counters["rejected_malformed"] == 0 and b.counters["state_parts_sent"] == 9


def test_a_registration_larger_than_a_part_goes_alone() -> None:
    registry = Registry("b", 1)
    registry.register_all([(f"n{i}", "a#1", b"m" * 4000) for i in range(3)])
    parts = _parts(registry.state(), items=1000, size=1000)
    taken = [len(p.state.entries) + len(p.piece.entries if p.piece else []) for p in parts]
    assert taken == [0, 1, 1, 1]  # b's own floor, then one registration a part


# -- the codec -----------------------------------------------------------------------------


@given(histories, st.integers(1, 30), st.data())
def test_parts_round_trip_and_corrupted_ones_fail_cleanly(
    history: History, items: int, data: st.DataObject
) -> None:
    for state in history.states:
        for part in _parts(state, items):
            encoded = encode_part(part)
            again = decode_part(encoded)
            assert (again.start, again.end, again.state) == (part.start, part.end, part.state)
            assert again.piece == part.piece
            corrupted = bytearray(encoded)
            position = data.draw(st.integers(0, len(corrupted) - 1))
            corrupted[position] = data.draw(st.integers(0, 255))
            with contextlib.suppress(RegistryDecodeError):
                decode_part(bytes(corrupted))


_key = st.none() | st.tuples(
    st.sampled_from(["", "n", "o"]), st.integers(-1, 4), st.integers(-1, 4)
)
_group = st.tuples(
    st.sampled_from(["n", "o"]),
    st.integers(0, 3),
    st.integers(0, 5),
    st.lists(st.integers(0, 6), max_size=3),
    st.lists(
        st.tuples(
            st.integers(0, 6),
            st.integers(0, 3),
            st.sampled_from(["x", ""]),
            st.just("a"),
            st.just(b""),
        ),
        max_size=3,
    ),
)


@given(
    _key,
    _key,
    st.lists(_group, max_size=3),
    st.dictionaries(st.sampled_from(["n", "o"]), st.integers(-1, 3)),
)
def test_the_part_decoder_is_total(
    start: object, end: object, groups: object, floors: object
) -> None:
    """Any ``[2, start, end, groups, floors]`` decodes to a part within its range, or is
    refused with RegistryDecodeError."""
    data = cbor2.dumps([2, start, end, groups, floors])
    try:
        part = decode_part(data)
    except RegistryDecodeError:
        return
    for node in part.state.floors:
        assert (part.start is None or part.start <= (node, 0, 0)) and (
            part.end is None or (node, 0, 0) < part.end
        )
    for dot in part.state.entries:
        assert part.end is None or dot < part.end
        assert part.start is None or dot >= part.start
    if part.piece is not None:
        for entry in part.piece.entries:
            assert part.start is not None and entry_dot(entry) >= part.start


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_part_decoder(data: bytes) -> None:
    with contextlib.suppress(RegistryDecodeError):
        decode_part(data)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ([2, ["n", 1, 5], ["n", 1, 5], [], {}], "is empty"),
        ([2, ["n", 1, 5], None, [], {"n": 1}], "floor of 'n' outside"),
        ([2, None, ["n", 1, 1], [["n", 1, 0, [], []]], {}], "outside the part's range"),
        ([2, None, ["n", 1, 3], [["n", 1, 3, [], []]], {}], "counters outside"),
        ([2, None, ["n", 1, 3], [["n", 1, 2, [4], []]], {}], "counters outside"),
        ([2, ["n", 1, 5], None, [["n", 1, 0, [4], []]], {}], "counters outside"),
        ([2, ["n", 1, 5], None, [["n", 1, 2, [], []]], {}], "ends before it starts"),
        ([2, ["n", 1, 5], None, [["n", 1, 6, [], [[7, 0, "x", "a", b""]]]], {}], "causal context"),
        ([2, ["n", 1, 5], None, [["n", 1, 6, [], [[5, 0, "x", "a", b""]] * 2]], {}], "twice"),
        ([2, ["", 1, 5], None, [], {}], "node name"),
        ([2, ["n", 1, 2**44], None, [], {}], "out of range"),
        ([2, None, None, [], {}, 1], "wrong number of fields"),
    ],
)
def test_malformed_parts_get_a_typed_error(bad: object, reason: str) -> None:
    with pytest.raises(RegistryDecodeError, match=reason):
        decode_part(cbor2.dumps(bad))


def test_a_piece_decodes_with_its_range_and_merges_only_after_the_counters_below_it() -> None:
    registry = Registry("b", 1)
    registry.register_all([(f"n{i}", "a#1", b"") for i in range(10)])
    registry.unregister("n7")
    first, second = _parts(registry.state(), items=30)[:2]
    assert second.piece is not None and second.piece.low == second.start[2]  # type: ignore[index]
    receiver = Registry("a", 1)
    assert not receiver.merge_piece(second.piece)  # counters below it not seen yet
    receiver.merge(first.state)
    assert receiver.merge_piece(second.piece)


# -- coverage ------------------------------------------------------------------------------


def test_coverage_completes_only_when_the_ranges_leave_no_gap() -> None:
    coverage = Coverage()
    coverage.add(("m", 0, 0), None)
    coverage.add(None, ("c", 1, 4))
    assert not coverage.complete()
    coverage.add(("c", 1, 5), ("m", 0, 0))
    assert not coverage.complete()  # the key ("c", 1, 4) is missing
    coverage.add(("c", 1, 4), ("c", 1, 5))
    assert coverage.complete()


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 6)), max_size=12))
def test_coverage_is_complete_exactly_when_the_ranges_cover_every_key(
    ranges: list[tuple[int, int]],
) -> None:
    """Points 1..5 stand for keys ("n", k, 0), 0 for the start of the order (None) and 6
    for its end (None); the half grid between them for the keys in between."""
    coverage = Coverage()
    covered: set[int] = set()
    for low, high in ranges:
        if low >= high:
            continue
        coverage.add(None if low == 0 else ("n", low, 0), None if high == 6 else ("n", high, 0))
        covered |= set(range(2 * low, 2 * high))  # [low, high) on the half grid
    assert coverage.complete() == (covered == set(range(12)))


# -- the delegate: re-registration after a false DOWN waits for every key --------------------


def _false_down(names: int) -> tuple[object, FakeCore, Registry]:
    """Node a, declared DOWN by mistake (and refuted), and b, whose state took one of a's
    names over meanwhile and holds ``names`` more."""
    delegate, core = _node("a", incarnation=5)
    delegate.register("x", "ax")
    delegate.register("y", "ay")
    other = Registry("b", 1)
    other.merge(delegate.registry.state())
    floor = other.node_down("a", 5)
    other.register("x", "bx")  # b takes x over while a counts as dead
    other.register_all([(f"b-{i}", "b#1", b"") for i in range(names)])
    core.incarnation = 6  # a refuted
    delegate.notify_message(encode(floor), 1.0)
    assert delegate.registry.lookup("x") is None and delegate.registry.lookup("y") is None
    delegate.registry.take_changes()
    return delegate, core, other


def test_after_a_false_down_a_node_re_registers_only_after_the_last_part() -> None:
    delegate, core, other = _false_down(names=20)
    sender = _node("b")[0]
    sender.registry = other
    sender.part_items = 40
    parts = []
    while True:
        parts.append(sender.local_state(join=False))
        if sender._next is None:
            break
    assert len(parts) == 5 and sender.counters["state_parts_sent"] == len(parts)  # 4 pieces
    syncs = core.syncs
    for number, data in enumerate(parts[::-1], 1):  # in reverse: pieces wait for their start
        assert delegate.counters["reregistrations"] == 0
        delegate.merge_remote_state(data, join=False, now=2.0)
        if number < len(parts):
            assert core.syncs == syncs + number  # each incomplete one asks for the next
    assert delegate.counters["reregistrations"] == 1
    assert delegate.registry.lookup("x").node == "b"  # type: ignore[union-attr]
    assert delegate.registry.lookup("y").node == "a"  # type: ignore[union-attr]
    assert [type(c) for c in delegate.registry.take_changes()][-1:] == [NameAdded]
    other.merge(decode(core.sent[-1]))
    assert other.lookup("y").node == "a" and other.lookup("x").node == "b"  # type: ignore[union-attr]


def test_a_lost_part_holds_the_re_registration_until_a_later_cycle_fills_the_gap() -> None:
    delegate, _, other = _false_down(names=60)
    sender = _node("b")[0]
    sender.registry = other
    sender.part_items = 40
    first_cycle = [sender.local_state(join=False) for _ in range(3)]
    while sender._next is not None:
        sender.local_state(join=False)  # these never reach a
    for data in first_cycle:
        delegate.merge_remote_state(data, join=False, now=2.0)
    assert delegate.counters["reregistrations"] == 0
    while delegate.counters["reregistrations"] == 0:  # the next cycle, from its start
        delegate.merge_remote_state(sender.local_state(join=False), join=False, now=3.0)
    assert sender._next is None  # it took the cycle's last part
    assert delegate.registry.lookup("x").node == "b"  # type: ignore[union-attr]
    assert NameLost in [type(c) for c in delegate.registry.take_changes()]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=60), st.integers(8, 60))
def test_the_last_part_rule_never_fires_before_every_part_was_merged(
    deliveries: list[int], items: int
) -> None:
    """Parts of one cycle delivered in any order, lost or duplicated: a re-registers at
    the delivery that completes the cycle, never before, and then holds all of b's state."""
    delegate, _, other = _false_down(names=30)
    wanted = other.state()
    parts = _parts(wanted, items)
    delivered: set[int] = set()
    for index in deliveries:
        delivered.add(index % len(parts))
        delegate.merge_remote_state(encode_part(parts[index % len(parts)]), join=False, now=2.0)
        complete = len(delivered) == len(parts)
        if delegate.counters["reregistrations"]:
            assert complete and _holds(delegate.registry.state(), wanted)
            break
        assert not complete or delegate.counters["pieces_dropped"]  # a dropped one comes again


def _holds(state: State, wanted: State) -> bool:
    """Whether ``state`` has merged everything of ``wanted`` but a's own process."""
    others = [r for r in wanted.context.replicas() if r[0] != "a"]
    return all(dot in state.entries for dot in wanted.entries if dot[0] != "a") and all(
        state.context.vv.get(r, 0) >= wanted.context.vv.get(r, 0) for r in others
    )


def test_a_piece_that_arrived_before_the_false_down_does_not_count_for_it() -> None:
    """Its range was merged, but from before this node was dropped: a takeover made since
    may be missing from it."""
    delegate, core = _node("a", incarnation=5)
    delegate.register("x", "ax")
    other = Registry("b", 1)
    other.register_all([(f"b-{i}", "b#1", b"") for i in range(12)])
    first, second, *rest = _parts(other.state(), items=60)
    assert second.piece is not None and rest == []
    delegate.merge_remote_state(encode_part(second), join=False, now=0.0)  # waits
    assert delegate.counters["pieces_waiting"] == 1
    other.merge(delegate.registry.state())
    delegate.notify_message(encode(other.node_down("a", 5)), 1.0)
    core.incarnation = 6  # refuted
    after_b = Part(("b", 2, 0), None, State())  # a peer with nothing past b's process
    delegate.merge_remote_state(encode_part(after_b), join=False, now=1.5)
    delegate.merge_remote_state(encode_part(first), join=False, now=2.0)  # the piece merges
    assert delegate.registry.lookup("b-11") is not None
    assert delegate.counters["reregistrations"] == 0  # the piece's range is not counted
    delegate.merge_remote_state(encode_part(second), join=False, now=3.0)
    assert delegate.counters["reregistrations"] == 1


def test_a_piece_whose_cloud_repeats_a_counter_of_its_range_merges_it_once() -> None:
    """The decoder lets a piece list a counter both in its range and its cloud; merging
    it into a state holding more of that process than the piece covers (counter by
    counter, not by every dot held) drops the registration once, and nothing else."""
    state = State()
    for counter in range(1, 11):
        state.add((f"n{counter}", "r", 1, "x#1", b"", counter, counter))
    assert state.merge_range(("r", 1), 9, 9, [9], []) == {"n9"}
    assert sorted(state.by_name) == sorted(f"n{c}" for c in range(1, 11) if c != 9)
