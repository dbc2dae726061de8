"""The split-brain rules over hand-built views, the parser, and the at-most-one-side
property over random partitions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors.membership import Member, Status, encode_meta
from swimactors.quorum import (
    AGE_KEY,
    DownAll,
    MemberInfo,
    QuorumConfigError,
    StaticQuorum,
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


# -- indirectly connected members ------------------------------------------------------------

MUTUAL_AB = (("a", "b"), ("b", "a"))
MUTUAL_ABC = (*MUTUAL_AB, ("b", "c"), ("c", "b"), ("a", "c"), ("c", "a"))


@pytest.mark.parametrize(
    ("everyone", "reports", "kept", "akka"),
    [
        ("abc", MUTUAL_AB, "ac", "c"),  # {(A,B),C}
        ("abcde", MUTUAL_ABC, "ade", "de"),  # {(A,B,C),D,E}
        ("abcde", (("a", "e"), ("e", "a")), "abcd", "bcd"),
    ],
)
def test_mutual_reports_cost_the_fewest_youngest_members(
    everyone: str, reports: tuple[tuple[str, str], ...], kept: str, akka: str
) -> None:
    for me in everyone:
        seen = View(me, members(*everyone), frozenset(everyone), reports)
        assert seen.kept == set(kept) and seen.fully_connected == set(akka)
        assert seen.indirect == {n for pair in reports for n in pair} and not seen.far
        for rule in (keep_majority(), keep_oldest(), down_all(), static_quorum(len(kept))):
            outcome = rule.decide(seen)
            assert outcome.serving is (me in kept), (rule, me)
            assert outcome.down == (set(everyone) - set(kept) if me in kept else set())


def test_a_one_way_report_moves_nobody() -> None:
    seen = view("c", "abcde", reports=(("a", "b"),))  # stale: a holds b DOWN, b reaches a
    assert seen.mutual == frozenset() and seen.kept == set("abcde")
    seen = view("a", "acde", reports=(("c", "b"),))  # b unheard: on the far side
    assert seen.mutual == frozenset() and seen.far == {"b"} and seen.kept == set("acde")


def test_a_report_about_this_node_counts_once_it_reports_back() -> None:
    stale = view("c", "abc", "abc", reports=(("a", "c"), ("b", "c")))
    assert stale.mutual == frozenset() and keep_majority().decide(stale).serving
    cut = view("c", "bc", "abc", reports=(("a", "c"), ("b", "c")))  # c does not reach a
    assert cut.mutual == {("a", "c"), ("c", "a")} and cut.kept == {"a", "b"}
    outcome = keep_majority().decide(cut)
    assert not outcome.serving and "cut from a" in outcome.reason


def test_the_referee_removed_as_indirectly_connected_falls_back_to_akkas_reading() -> None:
    reports = (("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"))  # a: referee, most reports
    seen = View("d", members(*"abcde"), frozenset("abcde"), reports)
    assert seen.kept == set("bcde") and seen.fully_connected == {"d", "e"}
    assert keep_referee("a").decide(seen).serving  # Akka: the component holds a
    assert keep_referee("a").decide(seen).down == {"a", "b", "c"}
    assert not keep_referee("a").decide(View("b", seen.members, seen.reachable, reports)).serving


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


# -- at most one side serves: a network model ------------------------------------------------
#
# A network is a set of directed links that work.  Like SWIM, a node reaches a member
# when a probe and its ack get through, directly or through one helper; like the
# announcements, a report spreads along any path of links, so each node knows the
# reports of every node with a path to it.  In that settled state every node's outcome
# is computed with the real rules; the tracker's timing covers the way there.

Links = frozenset[tuple[int, int]]


def swim_reach(count: int, links: Links) -> list[set[int]]:
    def round_trip(a: int, b: int) -> bool:
        return (a, b) in links and (b, a) in links

    return [
        {
            y
            for y in range(count)
            if y == x
            or round_trip(x, y)
            or any(round_trip(x, h) and round_trip(h, y) for h in range(count))
        }
        for x in range(count)
    ]


def heard_by(count: int, links: Links) -> list[set[int]]:
    """``heard_by(...)[x]``: the nodes whose announcements reach x."""
    heard: list[set[int]] = [{x} for x in range(count)]
    for source in range(count):
        seen, frontier = {source}, [source]
        while frontier:
            a = frontier.pop()
            for b in range(count):
                if (a, b) in links and b not in seen:
                    seen.add(b)
                    frontier.append(b)
        for b in seen:
            heard[b].add(source)
    return heard


def settled_views(infos: list[MemberInfo], links: Links) -> list[View]:
    count = len(infos)
    names = [m.name for m in infos]
    reach, heard_from = swim_reach(count, links), heard_by(count, links)
    views = []
    for x in range(count):
        reports = {
            (names[o], names[s]) for o in heard_from[x] for s in range(count) if s not in reach[o]
        }
        heard = {names[o] for o in heard_from[x]}
        views.append(View(names[x], infos, {names[y] for y in reach[x]}, reports, heard))
    return views


def akka_serves(rule: Strategy, seen: View) -> bool:
    """Akka's rule on the same reports, one-way ones included: the component judged
    against the far members, only the members nobody reports kept (down-all: none)."""
    pairs = seen.reports | {(seen.self_name, n) for n in seen.names - seen.reachable}
    subjects, observers = {b for _, b in pairs}, {a for a, _ in pairs}
    if isinstance(rule, DownAll):
        return not subjects
    far = frozenset(subjects - observers)
    wins, _ = rule.judge(seen, seen.names - far, far)  # type: ignore[attr-defined]
    return seen.self_name not in subjects and wins


@st.composite
def networks(draw: st.DrawFn, majority: bool = False) -> tuple[list[MemberInfo], Links]:
    """Groups joined inside (the first one a majority when asked), some links added
    between them, some broken anywhere."""
    count = draw(st.integers(1, 7))
    ages = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    infos = [MemberInfo(f"m{i}", ("10.0.0.1", 7000 + i), started=a) for i, a in enumerate(ages)]
    labels = draw(st.lists(st.integers(0, 2), min_size=count, max_size=count))
    if majority:
        labels = sorted(labels)
        labels[: count // 2 + 1] = [0] * (count // 2 + 1)
    pairs = [(a, b) for a in range(count) for b in range(count) if a != b]
    links = {(a, b) for a, b in pairs if labels[a] == labels[b]}
    if pairs:
        links |= set(draw(st.lists(st.sampled_from(pairs), max_size=6)))
        broken = draw(st.lists(st.sampled_from(pairs), max_size=6))
        links -= {p for p in broken if not (majority and labels[p[0]] == labels[p[1]] == 0)}
    return infos, frozenset(links)


RULES = st.one_of(
    st.just(keep_majority()),
    st.builds(keep_oldest, st.booleans()),
    st.builds(keep_referee, st.sampled_from(["m0", "m3", "nobody"])),
    st.just(down_all()),
)


@settings(max_examples=300)
@given(networks(), st.one_of(RULES, st.builds(static_quorum, st.integers(1, 4))))
def test_at_most_one_side_serves_and_never_fewer_members_than_with_akkas_rule(
    network: tuple[list[MemberInfo], Links], rule: Strategy
) -> None:
    infos, links = network
    if isinstance(rule, StaticQuorum) and len(infos) > 2 * rule.size - 1:
        return  # refused at start-up (static_quorum(size, max_members=...))
    views = settled_views(infos, links)
    outcomes = {v.self_name: rule.decide(v) for v in views}
    serving = [name for name, outcome in outcomes.items() if outcome.serving]
    for name in serving:  # no serving node downs another: one side acts
        assert not outcomes[name].down & set(serving), (name, outcomes)
    assert len(serving) >= sum(akka_serves(rule, v) for v in views)


@settings(max_examples=200)
@given(networks(majority=True))
def test_a_fully_connected_majority_keeps_a_majority_serving(
    network: tuple[list[MemberInfo], Links],
) -> None:
    infos, links = network
    serving = [v for v in settled_views(infos, links) if keep_majority().decide(v).serving]
    assert 2 * len(serving) > len(infos)


@given(networks())
def test_a_clean_split_serves_exactly_the_winning_group(
    network: tuple[list[MemberInfo], Links],
) -> None:
    infos, links = network
    count = len(infos)
    groups: dict[frozenset[int], list[int]] = {}
    reach = swim_reach(count, links)
    clean = all((a, b) in links for a in range(count) for b in reach[a] if a != b) and all(
        (a, b) not in links for a in range(count) for b in range(count) if b not in reach[a]
    )
    if not clean:
        return
    for x in range(count):
        groups.setdefault(frozenset(reach[x]), []).append(x)
    views = settled_views(infos, links)
    for rule in (keep_majority(), keep_oldest(), down_all()):
        winners = [
            group
            for group in groups
            if rule.decide(View(f"m{min(group)}", infos, {f"m{i}" for i in group})).serving
        ]
        served = {i for i, v in enumerate(views) if rule.decide(v).serving}
        assert served == (set(winners[0]) if winners else set())
