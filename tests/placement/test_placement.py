"""Placement: rendezvous hashing moves ~1/N of the identities on a change, and only those."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from swimactors.placement import Placement, moved, owners, place, rendezvous, score

IDENTITIES = [f"user-{i}" for i in range(2000)]

node_sets = st.sets(st.text(min_size=1, max_size=12), min_size=2, max_size=16)


def _tolerance(p: float) -> float:
    """Five standard deviations of a binomial share over IDENTITIES, plus rounding."""
    return 5 * math.sqrt(p * (1 - p) / len(IDENTITIES)) + 1 / len(IDENTITIES)


@settings(max_examples=25, deadline=None)
@given(nodes=node_sets, new=st.text(min_size=1, max_size=12))
def test_a_join_moves_about_one_in_n_identities_all_to_the_new_node(
    nodes: set[str], new: str
) -> None:
    if new in nodes:
        return
    after = nodes | {new}
    changed = moved(IDENTITIES, nodes, after)
    share = len(changed) / len(IDENTITIES)
    expected = 1 / len(after)
    assert abs(share - expected) <= _tolerance(expected)
    assert all(rendezvous(i, after) == new for i in changed)


@settings(max_examples=25, deadline=None)
@given(nodes=node_sets, data=st.data())
def test_a_departure_moves_exactly_the_departed_nodes_identities(
    nodes: set[str], data: st.DataObject
) -> None:
    gone = data.draw(st.sampled_from(sorted(nodes)))
    before = owners(IDENTITIES, nodes)
    changed = moved(IDENTITIES, nodes, nodes - {gone})
    assert changed == {i for i, owner in before.items() if owner == gone}
    expected = 1 / len(nodes)
    assert abs(len(changed) / len(IDENTITIES) - expected) <= _tolerance(expected)


@given(nodes=node_sets, identity=st.text(max_size=20), rng=st.randoms(use_true_random=False))
def test_every_node_computes_the_same_owner_whatever_the_candidate_order(
    nodes: set[str], identity: str, rng: random.Random
) -> None:
    shuffled = sorted(nodes)
    rng.shuffle(shuffled)
    assert rendezvous(identity, shuffled) == rendezvous(identity, sorted(nodes))
    assert rendezvous(identity, shuffled) in nodes


def test_scores_are_stable_across_processes() -> None:
    """A fixed value: the hash is blake2b, not Python's per-process salted hash()."""
    assert score("node-a", "user-1") == 0x305C697F476179C2
    assert len({score(f"n{i}", "x") for i in range(1000)}) == 1000


def test_the_other_placements() -> None:
    nodes = {"a", "b", "c"}
    assert place("id", set()) is None
    assert place("id", nodes, Placement.LOCAL, local="b") == "b"
    assert place("id", nodes, Placement.LOCAL, local="z") is None
    draws = {place("id", nodes, Placement.RANDOM, rng=random.Random(s)) for s in range(50)}
    assert draws == nodes
    assert place("id", nodes, Placement.LEAST_LOADED, loads={"a": 3, "b": 1, "c": 2}) == "b"
    tied = place("id", nodes, Placement.LEAST_LOADED, loads={})
    assert tied == rendezvous("id", nodes)
