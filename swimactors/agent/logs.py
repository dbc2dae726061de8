"""One log format for everything an agent prints: ``HH:MM:SS.mmm [node] text``.

The agent's own lines (events, "listening on ...") and the stdlib ``logging`` records of
every layer (split-brain decisions, transport warnings) share the clock and the node name,
and anything that came from the network is printed with control characters escaped.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

__all__ = ["clock", "configure_logging", "printable"]


def clock(now: float | None = None) -> str:
    """Local wall-clock time with milliseconds, as every agent line starts."""
    now = time.time() if now is None else now
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Formatter(logging.Formatter):
    def __init__(self, node: str) -> None:
        super().__init__()
        self._node = printable(node)

    def format(self, record: logging.LogRecord) -> str:
        text = f"{clock(record.created)} [{self._node}] {record.levelname} {record.name}: "
        text += printable(record.getMessage())
        if record.exc_info:  # an exception's message may carry a peer's words too
            lines = self.formatException(record.exc_info).split("\n")
            text += "".join("\n" + printable(line) for line in lines)
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
