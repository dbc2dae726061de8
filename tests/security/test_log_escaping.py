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


class Kept(logging.Handler):
    """A structured handler: keeps each record as it reaches handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def kept_record(*args: Any) -> logging.LogRecord:
    """The record of one warning from a library logger, as a handler gets it."""
    log = logger("swimactors.test_structured")
    handler = Kept()
    log.addHandler(handler)
    try:
        log.warning(*args)
    finally:
        log.removeHandler(handler)
    (record,) = handler.records
    return record


def test_a_forged_line_in_an_argument_is_escaped_and_the_record_keeps_its_values() -> None:
    """The format and the values stay apart for a handler that reads them (JSON,
    OpenTelemetry); the line a formatter prints has the newline escaped.  Before, the
    record reached handlers as one flattened message with no arguments."""
    record = kept_record("peer %s said %r after %d tries", HOSTILE, "x", 3)
    line = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert len(line.splitlines()) == 1 and line.isprintable()
    assert "\\nFAKE 12:00:00 [n9] WARNING quorum lost" in line
    assert record.msg == "peer %s said %r after %d tries"
    assert record.args == (printable(HOSTILE), "x", 3)


def test_a_printable_record_reaches_handlers_untouched() -> None:
    value = object()
    record = kept_record("value %(n)s", {"n": value})
    assert isinstance(record.args, dict) and record.args["n"] is value
    hostile = kept_record("value %(n)s of %(peer)s", {"n": value, "peer": HOSTILE})
    assert hostile.args == {"n": value, "peer": printable(HOSTILE)}


def test_a_value_whose_text_is_unprintable_prints_escaped_and_is_still_held() -> None:
    """An exception whose text a peer wrote, given as a value, not a string."""
    error = ValueError(HOSTILE)
    record = kept_record("reply from %s: %s (%r)", "n1", error, error)
    assert record.getMessage().isprintable()
    assert f"{printable(HOSTILE)} ({printable(repr(error))})" in record.getMessage()
    assert isinstance(record.args, tuple)
    assert record.args[0] == "n1" and record.args[1].value is error


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


@pytest.mark.network
async def test_the_command_line_prints_what_peers_wrote_escaped() -> None:
    """A forged member's tags and a forged user event's payload reach the operator's
    terminal through `swimactors members` and `swimactors monitor`: before, raw (a
    terminal retitled and cleared, a forged line).  Now escaped, as the logs are."""
    import json as json_module
    import subprocess

    import trio

    from swimactors import wire
    from swimactors.agent.cluster import open_local_cluster, wait_until
    from swimactors.agent.commands import _describe
    from swimactors.agent.events import EVENT_CHANNEL
    from swimactors.agent.http import http_get
    from swimactors.membership.messages import Alive, UserMessage, encode_message
    from swimactors.membership.meta import encode_meta
    from swimactors.membership.types import format_address
    from tests.security.test_attacks import gossip_with, send_datagram

    with trio.fail_after(60):
        async with open_local_cluster(profile="lan") as cluster:
            victim = await cluster.start("v")
            member = Alive("m", ("127.254.0.1", 9), 1, encode_meta({"role": HOSTILE}))
            event = UserMessage(
                EVENT_CHANNEL, wire.dumps(["m", 10**12, "deploy", HOSTILE.encode()])
            )
            for message in (member, event):
                packet = gossip_with(encode_message(message))
                await trio.to_thread.run_sync(send_datagram, victim.gossip, packet)

            events: list[dict[str, Any]] = []

            async def heard() -> bool:
                _, body = await http_get(victim.http, "/v1/events?since=0")
                found = json_module.loads(body)["events"]
                events[:] = [e for e in found if e["kind"] == "user"]
                return bool(events)

            assert await wait_until(heard, 5) is not None
            command = [sys.executable, "-m", "swimactors", "members"]
            command += ["--http", format_address(victim.http)]
            listed = await trio.run_process(command, capture_stdout=True, stderr=subprocess.DEVNULL)
    shown = [listed.stdout.decode(), _describe(events[0])]
    for text in shown:
        assert "\x1b" not in text and "\x07" not in text and "\nFAKE" not in text
        assert "\\x1b]0;owned\\x07\\x1b[2J\\nFAKE" in text
