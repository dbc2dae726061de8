"""One log format for everything an agent prints: ``HH:MM:SS.mmm [node] text``.

The agent's own lines (events, "listening on ...") and the stdlib ``logging`` records of
every layer (split-brain decisions, transport warnings) share the clock and the node name,
and anything that came from the network is printed with control characters escaped
(:func:`swimactors.logs.printable`; the library's loggers escape their records already,
and this format escapes any other logger's too).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from ..logs import printable, printable_traceback

__all__ = ["clock", "configure_logging"]


def clock(now: float | None = None) -> str:
    """Local wall-clock time with milliseconds, as every agent line starts."""
    now = time.time() if now is None else now
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


class _Formatter(logging.Formatter):
    def __init__(self, node: str) -> None:
        super().__init__()
        self._node = printable(node)

    def format(self, record: logging.LogRecord) -> str:
        text = f"{clock(record.created)} [{self._node}] {record.levelname} {record.name}: "
        text += printable(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:  # a peer's words too
            text += "\n" + printable_traceback(record.exc_info[1])
        return text


def configure_logging(level: str, node: str, stream: TextIO | None = None) -> None:
    """Route the root logger to ``stream`` (stderr) in the agent's format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(node))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
