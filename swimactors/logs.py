"""The library's loggers, which escape what they print: log lines carry text a peer wrote
(member and actor names, paths, error messages from its replies), and a control
character in it must not reach a terminal or forge a log line.

Every module's logger comes from :func:`logger`; its records leave it with their message
and traceback escaped (:func:`printable`), whatever handler and format an application
gives them.
"""

from __future__ import annotations

import logging
import traceback

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


class _Escaping(logging.Filter):
    """Formats a record's message once, escaped, and its traceback likewise."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = printable(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = printable_traceback(record.exc_info[1])
        return True


_ESCAPING = _Escaping()


def logger(name: str) -> logging.Logger:
    """The logger ``name``, escaping what it logs."""
    log = logging.getLogger(name)
    log.addFilter(_ESCAPING)  # (once: a filter already there is not added again)
    return log
