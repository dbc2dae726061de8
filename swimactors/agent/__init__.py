"""The membership agent: a node run from the command line, with an HTTP API.

``swimactors agent`` (:mod:`swimactors.agent.runner`) runs one node in the foreground;
its API routes live in :mod:`swimactors.agent.api`, served by :mod:`swimactors.agent.http`.
:mod:`swimactors.agent.cluster` starts local agent processes for the demo, tests and
benchmarks.
"""
