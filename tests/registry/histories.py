"""Hypothesis strategy: random histories of three registry replicas, their deltas and states.

A history mixes registrations, unregistrations, node failures, restarts (a new process at
a higher incarnation), refutations after a false DOWN, delta deliveries and full-state
syncs, so the states and deltas it yields are the reachable ones the laws are about.
"""

from __future__ import annotations

import attrs
from hypothesis import strategies as st

from swimactors.registry import Registry, State

NODES = ("n0", "n1", "n2")
NAMES = ("a", "b", "c", "d")

Op = tuple[str, int, int, int]
"""(kind, replica index, argument, argument)."""

_op = st.tuples(
    st.sampled_from(
        ["register", "register_all", "unregister", "down", "sync", "deliver", "restart", "refute"]
    ),
    st.integers(0, 2),
    st.integers(0, 1000),
    st.integers(0, 6),
)


@attrs.define
class History:
    replicas: list[Registry]
    deltas: list[State]
    states: list[State]
    """Final states of every process that ever ran (dead ones as of their last step)."""
    held: list[set[str]]
    """The names each live replica registered and has not unregistered."""


def run(ops: list[Op]) -> History:
    replicas = [Registry(node, 1) for node in NODES]
    deltas: list[State] = []
    dead: list[State] = []
    held: list[set[str]] = [set() for _ in NODES]
    for kind, i, a, b in ops:
        replica = replicas[i]
        if kind == "register":
            deltas.append(replica.register(NAMES[a % 4], f"{replica.node}:{b % 2}"))
            held[i].add(NAMES[a % 4])
        elif kind == "register_all":  # two or three names in one delta
            names = [NAMES[(a + k) % 4] for k in range(2 + b % 2)]
            claims = [(name, f"{replica.node}:{k % 2}", b"") for k, name in enumerate(names)]
            deltas.append(replica.register_all(claims))
            held[i].update(names)
        elif kind == "unregister":
            deltas.append(replica.unregister(NAMES[a % 4]))
            held[i].discard(NAMES[a % 4])
        elif kind == "down":
            deltas.append(replica.node_down(NODES[a % 3], b))
        elif kind == "sync":
            replica.merge(replicas[a % 3].state())
        elif kind == "deliver" and deltas:
            replica.merge(deltas[a % len(deltas)])
        elif kind == "restart":
            dead.append(replica.state())
            replicas[i] = Registry(replica.node, replica.incarnation + 4)
            held[i] = set()
        elif kind == "refute":
            delta = replica.set_incarnation(replica.incarnation + 1 + b % 2)
            if delta is not None:
                deltas.append(delta)
    return History(replicas, deltas, dead + [r.state() for r in replicas], held)


histories = st.lists(_op, max_size=40).map(run)
