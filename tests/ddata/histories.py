"""Hypothesis strategy: random histories of three processes updating one replicated value.

A history mixes updates, delta deliveries, full-state syncs and restarts (a new process of
the same node at a higher incarnation, starting empty or from a peer's state), so the
states and deltas it yields are the reachable ones the laws are about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import strategies as st

from swimactors.ddata import (
    Flag,
    GCounter,
    LWWMap,
    LWWRegister,
    ORSet,
    PNCounter,
    ReplicatedData,
    Writer,
)

NODES = ("n0", "n1", "n2")
ELEMENTS: tuple[Any, ...] = ("a", "b", 3, b"d")

Mutate = Callable[[Any, Writer, int], Any]
"""Apply one mutation chosen by an integer argument; return the delta."""


AMOUNTS: dict[str, Callable[[int], int]] = {
    "gcounter": lambda a: a % 5,
    "pncounter": lambda a: a % 7 - 3,
}
"""The amount a counter update adds, from its argument."""


def _gcounter(c: GCounter, w: Writer, a: int) -> GCounter:
    return c.increment(w, AMOUNTS["gcounter"](a))


def _pncounter(c: PNCounter, w: Writer, a: int) -> PNCounter:
    return c.increment(w, AMOUNTS["pncounter"](a))


def _orset(s: ORSet, w: Writer, a: int) -> ORSet:
    element = ELEMENTS[a % len(ELEMENTS)]
    if a % 9 == 8:
        return s.clear(w)
    return s.remove(w, element) if a % 3 == 0 else s.add(w, element)


def _register(r: LWWRegister, w: Writer, a: int) -> LWWRegister:
    return r.set(w, [a % 4, "x"] if a % 2 else a % 4)


def _map(m: LWWMap, w: Writer, a: int) -> LWWMap:
    key = "k" + str(a % 3)
    return m.remove(w, key) if a % 4 == 0 else m.set(w, key, a % 5)


def _flag(f: Flag, w: Writer, a: int) -> Flag:
    return f.switch_on(w) if a % 3 == 0 else Flag()


MODELS: dict[str, tuple[type, Mutate]] = {
    "gcounter": (GCounter, _gcounter),
    "pncounter": (PNCounter, _pncounter),
    "orset": (ORSet, _orset),
    "lwwregister": (LWWRegister, _register),
    "lwwmap": (LWWMap, _map),
    "flag": (Flag, _flag),
}


@attrs.define
class History:
    kind: type
    replicas: list[Any]
    incarnations: list[int]
    deltas: list[Any]
    states: list[Any]
    """Final states of every process that ever ran (dead ones as of their last step)."""
    total: int
    """For counters: the sum of every increment any process made."""


_op = st.tuples(
    st.sampled_from(["update", "update", "deliver", "sync", "restart", "adopt"]),
    st.integers(0, 2),
    st.integers(0, 1000),
    st.integers(0, 1000),
)


def run(model: str, ops: list[tuple[str, int, int, int]]) -> History:
    kind, mutate = MODELS[model]
    replicas: list[Any] = [kind() for _ in NODES]
    incarnations = [1, 1, 1]
    deltas: list[ReplicatedData] = []
    dead: list[Any] = []
    total = 0
    now = 0.0
    for step, (op, i, a, b) in enumerate(ops):
        now = step * 0.001 + (b % 3) * 0.0005  # clocks that sometimes run backwards
        if op == "update":
            writer = Writer(NODES[i], incarnations[i], now)
            deltas.append(mutate(replicas[i], writer, a))
            total += AMOUNTS[model](a) if model in AMOUNTS else 0
        elif op == "deliver" and deltas:
            replicas[i].merge(deltas[a % len(deltas)])
        elif op == "sync":
            replicas[i].merge(replicas[a % 3])
        elif op in ("restart", "adopt"):
            dead.append(replicas[i].copy())
            incarnations[i] += 1 + b % 3
            replicas[i] = kind() if op == "restart" else replicas[a % 3].copy()
    states = [r.copy() for r in replicas] + dead
    return History(kind, replicas, incarnations, deltas, states, total)


operations = st.lists(_op, max_size=40)
"""The steps of one history, for :func:`run`."""


def histories(model: str) -> st.SearchStrategy[History]:
    return operations.map(lambda ops: run(model, ops))
