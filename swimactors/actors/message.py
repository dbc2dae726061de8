"""``@message``: frozen attrs classes registered for the wire under stable string tags.

Every message type is checked at decoration time: each field's annotation must have a wire
codec (see :meth:`swimactors.wire.TypeRegistry.check`), so a message that could not
cross to another node fails where it is defined, not when it is first sent.  Fields may
hold :class:`ActorRef`; on the wire a ref is ``[node, path, uid]`` and decoding binds it
through :data:`ref_resolver`, which the running system sets.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar, dataclass_transform, overload

import attrs

from .. import wire
from .ref import ActorRef

__all__ = ["MESSAGES", "Terminated", "decode_ref", "encode_ref", "message", "ref_resolver"]

T = TypeVar("T")
RefResolver = Callable[[str, str, int], ActorRef]

ref_resolver: ContextVar[RefResolver | None] = ContextVar("swimactors_ref_resolver", default=None)
"""Turns a decoded ``(node, path, uid)`` into a live ref; set by the running system."""


def encode_ref(ref: Any) -> list[Any]:
    """A ref on the wire: ``[node, path, uid]``."""
    return [ref.node, ref.path, ref.uid]


def decode_ref(value: Any) -> ActorRef:
    """A live ref for ``[node, path, uid]``, bound through :data:`ref_resolver`."""
    if not (isinstance(value, list) and len(value) == 3):
        raise wire.WireError("an actor ref must be [node, path, uid]")
    node, path, uid = value
    if type(node) is not str or type(path) is not str or type(uid) is not int:
        raise wire.WireError("an actor ref must be [str, str, int]")
    resolve = ref_resolver.get()
    if resolve is None:
        raise wire.WireError("an actor ref can only be decoded inside a running system")
    return resolve(node, path, uid)


MESSAGES: wire.TypeRegistry[str] = wire.TypeRegistry("actors", checked=True)
"""Every ``@message`` class, by tag; fields may hold an :class:`ActorRef`."""
MESSAGES.add_codec(ActorRef, encode_ref, decode_ref)


def _register(cls: type[T], tag: str | None) -> type[T]:
    frozen: type[T] = cls if attrs.has(cls) else attrs.frozen(cls)  # type: ignore[assignment]
    MESSAGES.check(frozen)
    for field, hint in typing.get_type_hints(frozen).items():
        if hint is object:  # reads as "any Python object", but only plain data can travel
            raise TypeError(
                f"{cls.__qualname__}.{field}: `object` cannot be a message field; use "
                "typing.Any for plain data (None, bool, int, float, str, bytes, list, dict) "
                "or a concrete type"
            )
    MESSAGES.add(tag or f"{cls.__module__}.{cls.__qualname__}", frozen)
    return frozen


@overload
@dataclass_transform(frozen_default=True)
def message(cls: type[T], /) -> type[T]: ...


@overload
@dataclass_transform(frozen_default=True)
def message(tag: str | None = None, /) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True)
def message(arg: Any = None, /) -> Any:
    """Make a class a frozen attrs message registered for the wire.

    ``@message`` tags it ``module.Class``; ``@message("chat.Join")`` picks the tag.  A field
    whose annotation cannot go on the wire is a TypeError here; a tag that already names
    another class is a ValueError.
    """
    if isinstance(arg, type):
        return _register(arg, None)
    if arg is not None and not isinstance(arg, str):
        raise TypeError("use @message or @message('tag') on a class")

    def decorate(cls: type[T]) -> type[T]:
        return _register(cls, arg)

    return decorate


@message("swimactors.ReceiveTimeout")
class ReceiveTimeout:
    """Delivered to an actor that set ``ctx.set_receive_timeout(t)`` each time it has had
    no message for ``t`` seconds (Akka's receive timeout; stop on it to passivate)."""


@message("swimactors.Terminated")
class Terminated:
    """Delivered once to each watcher when the watched actor stops.

    ``reason`` is None for a normal stop, else a line naming the error that stopped it.
    """

    ref: ActorRef
    reason: str | None = None
