"""The library's loggers, which escape what they print: log lines carry text a peer wrote
(member and actor names, paths, error messages from its replies), and a control
character in it must not reach a terminal or forge a log line.

Every module's logger comes from :func:`logger`; its records leave it with their message
and traceback escaped (:func:`printable`), whatever handler and format an application
gives them.  The record stays structured: ``msg`` is still the format and ``args`` the
values (a text escaped, anything else as it was unless its text is unprintable), so a
handler that keeps them apart (JSON, OpenTelemetry, Sentry's grouping by format) can.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

__all__ = ["logger", "printable", "printable_traceback"]


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_STRUCTURE = ("Traceback", "File ", "The above exception", "During handling", "+")
"""How the parts of a formatted traceback that are not an exception's text start."""


def printable_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as :func:`traceback.format_exception` gives it, each exception's
    text (and note) escaped whole, so a line break in it starts no line of the log."""
    parts = []
    for part in traceback.format_exception(exc):
        if part.lstrip(" |").startswith(_STRUCTURE):  # frames and headers: our own text
            parts.append("\n".join(map(printable, part.rstrip("\n").split("\n"))))
        else:
            parts.append(printable(part.rstrip("\n")))
    return "\n".join(parts)


class _Printed:
    """A value whose text has unprintable characters, printed escaped (``%s`` and ``%r``
    alike); the value itself is ``value``."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return printable(str(self.value))

    def __repr__(self) -> str:
        return printable(repr(self.value))


def _escaped(value: Any) -> Any:
    """``value`` as a record may carry it: a text escaped, a number or None as it is,
    any other value as it is unless its ``str`` or ``repr`` is unprintable."""
    if isinstance(value, str):
        return printable(value)
    if value is None or isinstance(value, (int, float)):
        return value
    if str(value).isprintable() and repr(value).isprintable():
        return value
    return _Printed(value)


class _Escaping(logging.Filter):
    """Escapes a record whose message would print unprintable text: its format and each
    of its values in place (the record stays structured), and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().isprintable():
            record.msg = _escaped(record.msg)
            args = record.args
            if isinstance(args, Mapping):
                record.args = {key: _escaped(value) for key, value in args.items()}
            elif args:
                record.args = tuple(map(_escaped, args))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = printable_traceback(record.exc_info[1])
        return True


_ESCAPING = _Escaping()


def logger(name: str) -> logging.Logger:
    """The logger ``name``, escaping what it logs."""
    log = logging.getLogger(name)
    log.addFilter(_ESCAPING)  # (once: a filter already there is not added again)
    return log
