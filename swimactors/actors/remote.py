"""The actor wire protocol between nodes: frame layouts and the value codec (sans-IO).

Every frame is one CBOR array whose first item says its kind.  ``parse`` checks a frame's
shape strictly (a malformed frame means a broken or hostile peer: the connection is
dropped); the message inside is decoded separately by ``decode_value``, so a message the
receiver cannot decode fails only that message (an error reply, or a dead letter).

    [HELLO, node, incarnation, window]       first frame on a connection, each way
    [TELL, path, uid, sender, value]         sender: [node, path, uid] or None
    [ASK, corr, path, uid, sender, value]
    [REPLY, corr, value]
    [ERROR, corr, kind, type_name, message, traceback]
    [CREDIT, n]                              n more requests may be sent (flow control)
    [WATCH, path, uid] / [UNWATCH, path, uid]
    [TERMINATED, path, uid, reason]          the watched actor stopped

A value is ``[0, plain CBOR]``, ``[1, [tag, field, ...]]`` for a ``@message`` or
``[2, node, path, uid]`` for a bare :class:`ActorRef`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import wire
from .errors import (
    ActorError,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    NodeDown,
    Unsendable,
)
from .message import MESSAGES, decode_ref, encode_ref
from .ref import ActorRef

__all__ = [
    "ASK",
    "CREDIT",
    "ERROR",
    "HELLO",
    "REPLY",
    "TELL",
    "TERMINATED",
    "UNWATCH",
    "WATCH",
    "decode_error",
    "decode_value",
    "encode_error",
    "encode_value",
    "parse",
]

HELLO, TELL, ASK, REPLY, ERROR, CREDIT, WATCH, UNWATCH, TERMINATED = range(9)

_PLAIN, _MESSAGE, _REF = range(3)


def _uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _ref(value: Any) -> bool:
    return value is None or (
        type(value) is list
        and len(value) == 3
        and type(value[0]) is str
        and type(value[1]) is str
        and _uint(value[2])
    )


def _address(f: list[Any], at: int) -> bool:
    return type(f[at]) is str and _uint(f[at + 1])


_CHECKS: dict[int, Callable[[list[Any]], bool]] = {
    HELLO: lambda f: len(f) == 4 and type(f[1]) is str and _uint(f[2]) and _uint(f[3]),
    TELL: lambda f: len(f) == 5 and _address(f, 1) and _ref(f[3]),
    ASK: lambda f: len(f) == 6 and _uint(f[1]) and _address(f, 2) and _ref(f[4]),
    REPLY: lambda f: len(f) == 3 and _uint(f[1]),
    ERROR: lambda f: len(f) == 6 and _uint(f[1]) and all(type(v) is str for v in f[2:]),
    CREDIT: lambda f: len(f) == 2 and _uint(f[1]),
    WATCH: lambda f: len(f) == 3 and _address(f, 1),
    UNWATCH: lambda f: len(f) == 3 and _address(f, 1),
    TERMINATED: lambda f: len(f) == 4 and _address(f, 1) and (f[3] is None or type(f[3]) is str),
}
"""Each frame kind's layout (see the module docstring)."""


def parse(frame: bytes) -> list[Any]:
    """One frame's items, checked against its kind's layout; :class:`wire.WireError` if not."""
    items = wire.loads(frame)
    if type(items) is list and items and type(items[0]) is int:
        check = _CHECKS.get(items[0])
        if check is not None and check(items):
            return items
    raise wire.WireError("malformed actor frame")


def encode_value(value: Any) -> list[Any]:
    """A message or reply as CBOR data; :class:`Unsendable` if it cannot cross the wire."""
    if isinstance(value, ActorRef):
        return [_REF, *encode_ref(value)]
    if MESSAGES.is_registered(type(value)):
        return [_MESSAGE, MESSAGES.to_data(value)]
    try:
        return [_PLAIN, wire.check_plain(value)]
    except wire.WireError as exc:
        raise Unsendable(
            f"{type(value).__qualname__} cannot go to another node: use plain data or a "
            f"@message class ({exc})"
        ) from None


def decode_value(data: Any) -> Any:
    """The inverse of :func:`encode_value` (refs bind through the running system)."""
    if isinstance(data, list) and data:
        kind = data[0]
        if kind == _PLAIN and len(data) == 2:
            return wire.check_plain(data[1])
        if kind == _MESSAGE and len(data) == 2:
            return MESSAGES.from_data(data[1])
        if kind == _REF and len(data) == 4:
            return decode_ref(data[1:])
    raise wire.WireError("malformed actor value")


_ERROR_KINDS: dict[str, type[ActorError]] = {
    "failed": ActorFailed,
    "stopped": ActorStopped,
    "timeout": AskTimeout,
    "full": MailboxFull,
    "down": NodeDown,
}


def encode_error(corr: int, error: BaseException) -> list[Any]:
    """An ERROR frame for an ask that failed on this node."""
    if isinstance(error, ActorFailed):
        return [ERROR, corr, "failed", error.type_name, error.message, error.traceback]
    kind = next((k for k, t in _ERROR_KINDS.items() if isinstance(error, t)), None)
    if kind is None:  # not an actor error: report it as the recipient failing
        failed = ActorFailed.from_exception(error)
        return [ERROR, corr, "failed", failed.type_name, failed.message, failed.traceback]
    return [ERROR, corr, kind, type(error).__qualname__, str(error), ""]


def decode_error(items: list[Any]) -> ActorError:
    """The typed exception an ERROR frame stands for."""
    _, _, kind, type_name, message, traceback_text = items
    cls = _ERROR_KINDS.get(kind)
    if cls is None or cls is ActorFailed:
        return ActorFailed(type_name, message, traceback_text)
    return cls(message)
