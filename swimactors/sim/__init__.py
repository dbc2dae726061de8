"""Deterministic simulation of whole clusters in one thread, from a seed.

``World`` runs many sans-IO membership cores over a simulated network with latency,
loss, duplication, reordering, partitions and link rules, and node faults (crash,
restart, pause, slow, starve, clock drift).  ``Metrics`` turns a run into detection times,
false positives, dissemination and load figures.  See docs/simulation.md.
"""

from .heap import relaxed_gc
from .metrics import CrashStats, Metrics
from .network import Action, LinkModel, Network, Route, Rule
from .node import Core, CoreFactory, NodeSpec, NodeState, SimNode
from .rng import Streams, derive_seed
from .starvation import Starvation
from .trace import Trace, first_divergence
from .world import Fault, PacketRecord, SimulationError, World, address_for, swim_factory

__all__ = [
    "Action",
    "Core",
    "CoreFactory",
    "CrashStats",
    "Fault",
    "LinkModel",
    "Metrics",
    "Network",
    "NodeSpec",
    "NodeState",
    "PacketRecord",
    "Route",
    "Rule",
    "SimNode",
    "SimulationError",
    "Starvation",
    "Streams",
    "Trace",
    "World",
    "address_for",
    "derive_seed",
    "first_divergence",
    "relaxed_gc",
    "swim_factory",
]
