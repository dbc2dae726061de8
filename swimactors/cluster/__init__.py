"""The top layer: membership + registry + quorum + actors make a cluster of actor systems.

:mod:`.system` (``System``, ``open_system``, ``Environment``), :mod:`.names` (public names
across nodes) and :mod:`.split_brain` (what a quorum decision does to a system).  Their
public names are exported from :mod:`swimactors`.
"""

__all__: list[str] = []
