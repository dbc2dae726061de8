"""swimactors: SWIM membership, a gossip CRDT registry and trio actors for Python clusters."""

__version__ = "0.1.0"
