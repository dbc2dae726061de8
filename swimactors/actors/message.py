"""``@message``: frozen attrs classes registered for the wire under stable string tags.

Every message type is checked at decoration time: each field's annotation must have a wire
codec (see :meth:`swimactors.wire.TypeRegistry._codec_for`), so a message that could not
cross to another node fails where it is defined, not when it is first sent.  Fields may
hold :class:`ActorRef`; on the wire a ref is ``[node, path, uid]`` and decoding binds it
through :data:`ref_resolver`, which the running system sets.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar, dataclass_transform, overload

import attrs

from .. import wire
from ..wire import _Codec
from .ref import ActorRef

__all__ = ["MESSAGES", "MessageRegistry", "Terminated", "message", "ref_resolver"]

T = TypeVar("T")
RefResolver = Callable[[str, str, int], ActorRef]

ref_resolver: ContextVar[RefResolver | None] = ContextVar("swimactors_ref_resolver", default=None)
"""Turns a decoded ``(node, path, uid)`` into a live ref; set by the running system."""


def _encode_ref(ref: Any) -> list[Any]:
    return [ref.node, ref.path, ref.uid]


def _decode_ref(value: Any) -> ActorRef:
    if not (isinstance(value, list) and len(value) == 3):
        raise wire.WireError("an actor ref must be [node, path, uid]")
    node, path, uid = value
    if type(node) is not str or type(path) is not str or type(uid) is not int:
        raise wire.WireError("an actor ref must be [str, str, int]")
    resolve = ref_resolver.get()
    if resolve is None:
        raise wire.WireError("an actor ref can only be decoded inside a running system")
    return resolve(node, path, uid)


_REF_CODEC = _Codec(_encode_ref, _decode_ref)


class MessageRegistry(wire.TypeRegistry[str]):
    """The actor layer's string-tagged registry; also knows how to carry an ActorRef."""

    def _codec_for(self, hint: Any) -> _Codec:
        if hint is ActorRef:
            return _REF_CODEC
        return super()._codec_for(hint)

    def check(self, cls: type) -> None:
        """Raise TypeError unless every field of ``cls`` has a wire codec."""
        try:
            self._codecs(cls)
        except NameError as exc:
            raise TypeError(f"{cls.__qualname__}: cannot resolve an annotation ({exc})") from None
        except TypeError as exc:
            raise TypeError(f"{cls.__qualname__} cannot be a message: {exc}") from None


MESSAGES = MessageRegistry("actors")
"""Every ``@message`` class, by tag."""


def _register(cls: type[T], tag: str | None) -> type[T]:
    frozen: type[T] = cls if attrs.has(cls) else attrs.frozen(cls)  # type: ignore[assignment]
    MESSAGES.check(frozen)
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


@message("swimactors.Terminated")
class Terminated:
    """Delivered once to each watcher when the watched actor stops.

    ``reason`` is None for a normal stop, else a line naming the error that stopped it.
    """

    ref: ActorRef
    reason: str | None = None
