"""The split-brain rules over hand-built views, the parser, and the at-most-one-side
property over random partitions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swimactors.membership import Member, Status, encode_meta
from swimactors.quorum import (
    AGE_KEY,
    MemberInfo,
    QuorumConfigError,
    Strategy,
    View,
    age_meta,
    down_all,
    keep_majority,
    keep_oldest,
    keep_referee,
    member_info,
    parse_strategy,
    stable_after_for,
    static_quorum,
)

NAMES = ("a", "b", "c", "d", "e")


def members(*names: str) -> list[MemberInfo]:
    """Members aged in the order given: the first is the oldest."""
    return [
        MemberInfo(name, ("10.0.0.1", 7000 + i), started=100 + i) for i, name in enumerate(names)
    ]


def view(
    me: str, side: str, everyone: str = "abcde", reports: tuple[tuple[str, str], ...] = ()
) -> View:
    return View(me, members(*everyone), frozenset(side), reports)


def serves(rule: Strategy, me: str, side: str, everyone: str = "abcde") -> bool:
    return rule.decide(view(me, side, everyone)).serving


# -- keep-majority ------------------------------------------------------------------------


def test_majority_side_survives_and_downs_the_rest() -> None:
    outcome = keep_majority().decide(view("c", "cde"))
    assert outcome.serving and outcome.down == {"a", "b"}
    assert not serves(keep_majority(), "a", "ab")


def test_majority_tie_goes_to_the_lowest_name_and_address() -> None:
    assert serves(keep_majority(), "b", "ab", "abcd")
    assert not serves(keep_majority(), "c", "cd", "abcd")
    same_name = [MemberInfo("x", ("10.0.0.2", 1)), MemberInfo("y", ("10.0.0.1", 1))]
    assert View("x", same_name, {"x"}).lowest().name == "x"  # name first, then address


def test_majority_three_way_split_has_no_winner() -> None:
    for me, side in (("a", "ab"), ("c", "cd"), ("e", "e")):
        assert not serves(keep_majority(), me, side)


# -- static-quorum ------------------------------------------------------------------------


def test_static_quorum_counts_reachable_members() -> None:
    rule = static_quorum(3)
    assert serves(rule, "a", "abc") and not serves(rule, "d", "de")
    assert not serves(rule, "a", "ab", "ab")  # a forming cluster below the quorum waits


def test_static_quorum_stops_when_the_cluster_outgrew_it() -> None:
    outcome = static_quorum(2).decide(view("a", "ab", "abcd"))
    assert not outcome.serving and "outgrew" in outcome.reason


def test_static_quorum_refuses_an_unsafe_size_at_start_up() -> None:
    static_quorum(3, max_members=5)
    with pytest.raises(QuorumConfigError, match="at least 4"):
        static_quorum(3, max_members=6)
    with pytest.raises(QuorumConfigError):
        static_quorum(0)
    with pytest.raises(QuorumConfigError):
        parse_strategy("static-quorum:2", max_members=4)


# -- keep-oldest --------------------------------------------------------------------------


def test_keep_oldest_side_with_the_oldest_survives() -> None:
    assert serves(keep_oldest(), "b", "ab")
    assert not serves(keep_oldest(), "c", "cde")


def test_keep_oldest_alone_downs_itself_and_the_rest_survive() -> None:
    assert not serves(keep_oldest(), "a", "a")
    outcome = keep_oldest().decide(view("b", "bcde"))
    assert outcome.serving and outcome.down == {"a"}
    assert serves(keep_oldest(down_if_alone=False), "a", "a")
    assert not serves(keep_oldest(down_if_alone=False), "b", "bcde")


def test_keep_oldest_alone_in_a_three_way_split_nobody_serves() -> None:
    for me, side in (("a", "a"), ("b", "bc"), ("d", "de")):
        assert not serves(keep_oldest(), me, side)


def test_keep_oldest_single_member_cluster_serves() -> None:
    assert serves(keep_oldest(), "a", "a", "a")


def test_age_comes_from_metadata_and_unknown_ages_are_youngest() -> None:
    old = Member("z", ("h", 1), 9, Status.UP, encode_meta(age_meta(5)))
    unknown = Member("a", ("h", 2), 1, Status.UP, b"")
    garbage = Member("b", ("h", 3), 1, Status.UP, encode_meta({AGE_KEY: "soon"}))
    superscript = Member("c", ("h", 4), 1, Status.UP, encode_meta({AGE_KEY: "²"}))
    infos = [member_info(m) for m in (old, unknown, garbage, superscript)]
    assert [i.started for i in infos] == [5, None, None, None]
    assert View("a", infos, {"a"}).oldest().name == "z"
    with pytest.raises(ValueError):
        age_meta(-1)


# -- keep-referee and down-all --------------------------------------------------------------


def test_keep_referee_side_that_reaches_the_referee_survives() -> None:
    rule = keep_referee("c")
    assert serves(rule, "d", "cd") and not serves(rule, "a", "ab")
    assert not serves(rule, "a", "abcde", "abde")  # a referee that is no member


def test_down_all_stops_every_side_but_serves_a_whole_cluster() -> None:
    assert serves(down_all(), "a", "abcde")
    assert not serves(down_all(), "a", "abcd")
    assert not serves(down_all(), "e", "e")


# -- asymmetric reachability -----------------------------------------------------------------


def test_one_way_report_inside_a_side_removes_both_ends_from_it() -> None:
    seen = view("c", "abcde", reports=(("a", "b"),))
    assert seen.indirect == {"a", "b"} and seen.side == {"c", "d", "e"}
    outcome = keep_majority().decide(seen)
    assert outcome.serving and outcome.down == {"a", "b"}
    assert not keep_majority().decide(view("a", "abcde", reports=(("a", "b"),))).serving


def test_one_way_report_about_an_unreachable_member_changes_nothing() -> None:
    seen = view("c", "cde", reports=(("a", "b"), ("c", "a")))
    assert seen.indirect == frozenset() and seen.side == {"c", "d", "e"}


def test_referee_indirectly_connected_counts_as_unreachable() -> None:
    assert not keep_referee("a").decide(view("c", "abcde", reports=(("e", "a"),))).serving


def test_view_must_include_this_node() -> None:
    with pytest.raises(ValueError, match="include this node"):
        View("z", members("a"), {"a"})


# -- parser and stable_after ---------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        keep_majority(),
        static_quorum(4),
        keep_oldest(),
        keep_oldest(down_if_alone=False),
        keep_referee("node-7"),
        down_all(),
    ],
)
def test_spec_round_trips_through_the_parser(rule: Strategy) -> None:
    assert parse_strategy(rule.spec) == rule


@pytest.mark.parametrize(
    "text",
    [
        "",
        "keep-majority:3",
        "static-quorum",
        "static-quorum:x",
        "static-quorum:-1",
        "keep-referee:",
        "keep-oldest:maybe",
        "majority",
        "down-all:now",
    ],
)
def test_parser_refuses_unknown_forms_with_a_typed_error(text: str) -> None:
    with pytest.raises(QuorumConfigError, match="expected keep-majority"):
        parse_strategy(text)


def test_stable_after_follows_akkas_table() -> None:
    table = {2: 7.0, 5: 7.0, 10: 10.0, 20: 13.0, 50: 17.0, 100: 20.0, 1000: 30.0}
    for size, seconds in table.items():
        assert stable_after_for(size) == pytest.approx(seconds, abs=0.1)


# -- at most one side serves ------------------------------------------------------------------


@st.composite
def partitions(
    draw: st.DrawFn,
) -> tuple[list[MemberInfo], list[frozenset[str]], list[tuple[str, str]]]:
    count = draw(st.integers(1, 9))
    names = [f"m{i}" for i in range(count)]
    ages = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    infos = [
        MemberInfo(n, ("10.0.0.1", 7000 + i), started=a)
        for i, (n, a) in enumerate(zip(names, ages, strict=True))
    ]
    labels = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    sides = [
        frozenset(n for n, label in zip(names, labels, strict=True) if label == side)
        for side in sorted(set(labels))
    ]
    reports = draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=3))
    return infos, sides, reports


RULES = st.one_of(
    st.just(keep_majority()),
    st.builds(keep_oldest, st.booleans()),
    st.builds(keep_referee, st.sampled_from(["m0", "m3", "nobody"])),
)


@given(partitions(), RULES)
def test_at_most_one_side_serves(
    case: tuple[list[MemberInfo], list[frozenset[str]], list[tuple[str, str]]], rule: Strategy
) -> None:
    infos, sides, reports = case
    winners = []
    for side in sides:
        me = min(side)
        local = [r for r in reports if r[0] in side and r[1] in side]  # a side's own reports
        outcome = rule.decide(View(me, infos, side, local))
        if outcome.serving:
            winners.append(side)
            assert outcome.down == frozenset(m.name for m in infos) - side | (
                View(me, infos, side, local).indirect
            )
    assert len(winners) <= 1


@given(partitions(), st.integers(1, 5))
def test_static_quorum_at_most_one_side_serves_within_its_size(
    case: tuple[list[MemberInfo], list[frozenset[str]], list[tuple[str, str]]], size: int
) -> None:
    infos, sides, _ = case
    rule = static_quorum(size)
    served = [side for side in sides if rule.decide(View(min(side), infos, side)).serving]
    assert len(served) <= 1


@given(partitions())
def test_down_all_no_side_serves_a_split(
    case: tuple[list[MemberInfo], list[frozenset[str]], list[tuple[str, str]]],
) -> None:
    infos, sides, _ = case
    served = [side for side in sides if down_all().decide(View(min(side), infos, side)).serving]
    assert served == ([] if len(sides) > 1 else sides)
