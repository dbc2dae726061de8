"""The library's loggers escape what they print: text a peer wrote (an error message in
its reply, a name, a path) reaches logs and terminals without its control characters,
whatever handler the application gives them (the agent's format escapes as well)."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from typing import Any

import pytest

import swimactors
from swimactors import Consistency, ConsistencyError
from swimactors.cluster.ddata import DataWrite
from swimactors.ddata import GCounter
from swimactors.logs import logger, printable
from swimactors.sim.systems import replay, simulated_systems
from swimactors.sim.trio_engine import SimNet
from tests.cluster.test_ddata import _formed, bounded

HOSTILE = "\x1b]0;owned\x07\x1b[2J\nFAKE 12:00:00 [n9] WARNING quorum lost"


def test_a_peers_error_text_is_logged_escaped(caplog: pytest.LogCaptureFixture) -> None:
    """n1 answers n0's replicated write with an error whose message holds terminal escapes
    and a line break: n0 logs that it did not answer with the text escaped.  Before, the
    line went out raw (a forged log line, a terminal retitled and cleared)."""
    caplog.set_level(logging.DEBUG, "swimactors.ddata")

    async def app(net: SimNet) -> list[str]:
        async with simulated_systems(net, 2) as (n0, n1):
            await _formed([n0, n1])
            served = n1.serve_request

            def hostile(request: Any, peer: str) -> Any:
                if isinstance(request, DataWrite):
                    raise ValueError(HOSTILE)
                return served(request, peer)

            n1.serve_request = hostile  # type: ignore[method-assign]
            with pytest.raises(ConsistencyError):
                await n0.data.update(
                    "c", GCounter, lambda c, w: c.increment(w, 1), write=Consistency.ALL
                )
            return []

    replay(bounded(app), 1)
    lines = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].isprintable()
    assert "\\x1b]0;owned\\x07\\x1b[2J\\nFAKE" in lines[0]


def test_a_traceback_is_escaped_line_by_line(caplog: pytest.LogCaptureFixture) -> None:
    log = logger("swimactors.test_escaping")
    caplog.set_level(logging.WARNING, "swimactors.test_escaping")
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        log.warning("peer %s said %r", "n\x1b9", "x", exc_info=True)
    (record,) = caplog.records
    assert record.getMessage() == "peer n\\x1b9 said 'x'"
    text = logging.Formatter().format(record)
    assert "\x1b" not in text and "\\x1b]0;owned" in text
    assert "FAKE" in text.splitlines()[-1] and "\\nFAKE" in text  # no line of its own
    assert printable(printable(HOSTILE)) == printable(HOSTILE)  # the agent's format again


def test_every_library_logger_escapes() -> None:
    """One helper for every module: a logger made with ``logging.getLogger`` in a new
    module would print raw."""
    for info in pkgutil.walk_packages(swimactors.__path__, "swimactors."):
        if info.name != "swimactors.__main__":
            importlib.import_module(info.name)
    loggers = [
        (name, log)
        for name, log in logging.Logger.manager.loggerDict.items()
        if name.startswith("swimactors") and isinstance(log, logging.Logger)
    ]
    module_loggers = {
        id(value)
        for name, module in list(sys.modules.items())
        if name.startswith("swimactors")
        for value in vars(module).values()
        if isinstance(value, logging.Logger)
    }
    assert len(module_loggers) >= 15
    unescaped = [name for name, log in loggers if id(log) in module_loggers and not log.filters]
    assert unescaped == []
