"""Proxies: an actor's methods called like methods, each call an ask (Pulsing's ``@as_actor``).

``@as_actor`` reads a class's public methods and makes each one a pair of ``@message``
types: ``<tag>.<method>`` holds the arguments (one field per parameter, typed and
defaulted as the method declares them) and ``<tag>.<method>.reply`` holds the result
(typed by the return annotation).  The class becomes an :class:`Actor` whose ``receive``
runs the method a call names.  :func:`proxy` turns a ref (local or remote, the same way)
into an object with the same methods: each builds the call, checks the arguments against
the annotations, asks, and unwraps the reply.  Across nodes the wire codecs check both on
decode, as for any message; nothing is pickled.
"""

from __future__ import annotations

import inspect
import operator
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, overload

import attrs

from ..logs import logger
from .actor import Actor
from .errors import BadCall, BadReply
from .message import MESSAGES, message
from .ref import DEFAULT_ASK_TIMEOUT

__all__ = ["Interface", "WrongReturn", "as_actor", "proxy"]

log = logger("swimactors.actors")

T = TypeVar("T")


@message("swimactors.WrongReturn")
class WrongReturn:
    """The answer to a call whose method returned what its annotation refuses; the caller
    raises :class:`BadReply` with ``refusal`` (the actor is not failed for it)."""

    refusal: str


_ACTOR_NAMES = frozenset(dir(Actor))
"""Attributes of every actor (receive, the hooks, context): never remote methods."""


@attrs.frozen
class Method:
    """One remote method: its call and reply messages and how to check and run them."""

    name: str
    signature: str
    call: type
    reply: type
    checks: tuple[tuple[str, Callable[[Any], bool]], ...]
    answer: Callable[[Any], Any]
    """The reply for what the method returned (a :class:`WrongReturn` if it does not fit)."""
    returns_hint: Any
    run: Callable[[Any, Any], Any]
    is_async: bool
    parameters: inspect.Signature
    """The method's parameters after ``self``."""


@attrs.frozen
class Interface:
    """What ``@as_actor`` learned about a class: its tag and methods."""

    tag: str
    name: str
    methods: dict[str, Method]
    by_call: dict[type, Method]
    proxy_type: type


class Asker(Protocol):
    """What a proxy asks through: an :class:`ActorRef` (trio) or an ``aio.AsyncRef``."""

    def ask(self, msg: Any, timeout: float | None = ...) -> Awaitable[Any]: ...


def _show(hint: Any) -> str:
    """An annotation as it is written (``int``, ``list[int]``, ``ActorRef | None``)."""
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    return repr(hint).replace("typing.", "").replace("swimactors.actors.ref.", "")


def _signature(where: str, params: list[inspect.Parameter], hints: dict[str, Any]) -> str:
    shown = []
    for param in params:
        text = f"{param.name}: {_show(hints[param.name])}"
        if param.default is not param.empty:
            text += f" = {param.default!r}"
        if param.kind is param.KEYWORD_ONLY and "*" not in shown:
            shown.append("*")
        shown.append(text)
    return f"{where}({', '.join(shown)}) -> {_show(hints['return'])}"


def _internal_message(tag: str, name: str, namespace: dict[str, Any]) -> type:
    """A call or reply message: registered for the wire like any ``@message``, but a plain
    slotted attrs class (never handed to user code, so frozen would only cost time)."""
    cls = attrs.define(type(name, (), namespace), slots=True, weakref_slot=False)
    registered: type = message(tag)(cls)
    return registered


def _answer(signature: str, hint: Any, reply: type) -> Callable[[Any], Any]:
    """Check a method's result against its annotation and wrap it in its reply."""

    def refuse(result: Any) -> WrongReturn:
        refusal = f"{signature} returned {result!r} ({type(result).__name__}), not {_show(hint)}"
        log.warning("%s", refusal)
        return WrongReturn(refusal)

    if hint is type(None):
        done = reply()
        return lambda result: done if result is None else refuse(result)
    fits = MESSAGES.checker(hint)
    return lambda result: reply(result) if fits(result) else refuse(result)


def _runner(name: str, positional: tuple[str, ...], keyword: tuple[str, ...]) -> Any:
    """``run(instance, call)``: the instance's method applied to the call's fields."""
    if keyword:

        def run(instance: Any, call: Any) -> Any:
            args = [getattr(call, p) for p in positional]
            kwargs = {k: getattr(call, k) for k in keyword}
            return getattr(instance, name)(*args, **kwargs)

        return run
    if not positional:
        return lambda instance, call: getattr(instance, name)()
    if len(positional) == 1:
        (field,) = positional
        return lambda instance, call: getattr(instance, name)(getattr(call, field))
    read = operator.attrgetter(*positional)
    return lambda instance, call: getattr(instance, name)(*read(call))


def _method(cls: type, tag: str, name: str, function: Callable[..., Any]) -> Method:
    where = f"{cls.__qualname__}.{name}"
    try:
        hints = typing.get_type_hints(function)
    except NameError as exc:
        raise TypeError(f"{where}: cannot resolve an annotation ({exc})") from None
    signature = inspect.signature(function)
    params = list(signature.parameters.values())[1:]  # after self
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": cls.__module__}
    positional: list[str] = []
    keyword: list[str] = []
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"{where}: a remote method takes named parameters, not {param}")
        if param.name.startswith("_") or param.name not in hints:
            raise TypeError(f"{where}: parameter {param.name!r} needs an annotation and no '_'")
        namespace["__annotations__"][param.name] = hints[param.name]
        kw_only = param.kind is param.KEYWORD_ONLY
        default = attrs.NOTHING if param.default is param.empty else param.default
        namespace[param.name] = attrs.field(default=default, kw_only=kw_only)
        (keyword if kw_only else positional).append(param.name)
    if "return" not in hints:
        raise TypeError(f"{where}: annotate what it returns (`-> None` for nothing)")
    returns_hint = hints["return"]
    call = _internal_message(f"{tag}.{name}", where, namespace)
    reply_namespace: dict[str, Any] = {"__module__": cls.__module__, "__annotations__": {}}
    if returns_hint is not type(None):
        reply_namespace["__annotations__"]["value"] = returns_hint
    reply = _internal_message(
        f"{tag}.{name}.reply", f"{cls.__name__}.{name}.reply", reply_namespace
    )
    checks = tuple((p, MESSAGES.checker(hints[p])) for p in [*positional, *keyword])
    signature_text = _signature(where, params, hints)
    return Method(
        name=name,
        signature=signature_text,
        call=call,
        reply=reply,
        checks=checks,
        answer=_answer(signature_text, returns_hint, reply),
        returns_hint=returns_hint,
        run=_runner(name, tuple(positional), tuple(keyword)),
        is_async=inspect.iscoroutinefunction(function),
        parameters=signature.replace(parameters=params),
    )


def _public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, Actor):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in _ACTOR_NAMES:
                continue
            if inspect.isfunction(value):
                found[name] = value
            else:
                found.pop(name, None)  # a later class made it something else
    return found


def _receive(by_call: dict[type, Method], fallback: Any, is_async: bool) -> Any:
    """The generated ``receive``: run the method a call names, check and wrap its result;
    anything else goes to the class's own ``receive`` (if it has one)."""

    if is_async:

        async def receive_async(self: Any, msg: Any, ctx: Any) -> Any:
            method = by_call.get(type(msg))
            if method is None:
                if fallback is None:
                    return None
                result = fallback(self, msg, ctx)
                return await result if inspect.isawaitable(result) else result
            result = method.run(self, msg)
            if method.is_async:
                result = await result
            return method.answer(result)

        return receive_async

    def receive(self: Any, msg: Any, ctx: Any) -> Any:
        method = by_call.get(type(msg))
        if method is None:
            return None if fallback is None else fallback(self, msg, ctx)
        return method.answer(method.run(self, msg))

    return receive


def _why(parameters: inspect.Signature, args: Any, kwargs: Any, error: TypeError) -> str:
    """Why arguments do not bind to a method, said about the method (not its message)."""
    try:
        parameters.bind(*args, **kwargs)
    except TypeError as exc:
        return str(exc)
    return str(error)


def _proxy_type(interface_name: str, methods: dict[str, Method]) -> type:
    """A class with one ``async def`` per remote method, over ``ref`` and ``timeout``."""

    def call_of(method: Method) -> Callable[..., Any]:
        make, checks, signature = method.call, method.checks, method.signature
        reply: Any = method.reply
        has_value = method.returns_hint is not type(None)
        parameters = method.parameters

        async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                msg = make(*args, **kwargs)
            except TypeError as exc:
                raise BadCall(f"{signature}: {_why(parameters, args, kwargs, exc)}") from None
            for field, check in checks:
                value = getattr(msg, field)
                if not check(value):
                    raise BadCall(
                        f"{signature}: {field}={value!r} does not fit its annotation; "
                        "nothing was sent"
                    )
            answer = await self.ref.ask(msg, self.timeout)
            if type(answer) is not reply:
                if type(answer) is WrongReturn:
                    raise BadReply(answer.refusal)
                raise BadReply(
                    f"{self.ref} answered {signature} with {answer!r}: is it a {interface_name}?"
                )
            return answer.value if has_value else None

        call.__name__ = call.__qualname__ = method.name
        call.__doc__ = f"Ask the actor to run {signature}."
        return call

    def __init__(self: Any, ref: Asker, timeout: float | None) -> None:
        self.ref = ref
        self.timeout = timeout

    def __getattr__(self: Any, name: str) -> Any:
        raise AttributeError(
            f"{interface_name} has no remote method {name!r} "
            f"(it has: {', '.join(sorted(methods)) or 'none'})"
        )

    def __repr__(self: Any) -> str:
        return f"<{interface_name} proxy for {self.ref}>"

    namespace: dict[str, Any] = {name: call_of(m) for name, m in methods.items()}
    namespace.update(
        __slots__=("ref", "timeout"),
        __init__=__init__,
        __getattr__=__getattr__,
        __repr__=__repr__,
    )
    return type(f"{interface_name}Proxy", (), namespace)


def _decorate(cls: type, tag: str | None) -> type:
    tag = tag or f"{cls.__module__}.{cls.__qualname__}"
    functions = _public_methods(cls)
    methods = {name: _method(cls, tag, name, f) for name, f in functions.items()}
    own_receive = getattr(cls, "receive", None)
    if own_receive is Actor.receive:
        own_receive = None
    is_async = any(m.is_async for m in methods.values()) or (
        own_receive is not None and inspect.iscoroutinefunction(own_receive)
    )
    by_call = {m.call: m for m in methods.values()}
    interface = Interface(
        tag=tag,
        name=cls.__qualname__,
        methods=methods,
        by_call=by_call,
        proxy_type=_proxy_type(cls.__qualname__, methods),
    )
    namespace = {
        "receive": _receive(by_call, own_receive, is_async),
        "__interface__": interface,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    if issubclass(cls, Actor):
        for name, value in namespace.items():
            setattr(cls, name, value)
        return cls
    return type(cls.__name__, (cls, Actor), namespace)


@overload
def as_actor(cls: type[T], /) -> type[T]: ...


@overload
def as_actor(tag: str | None = None, /) -> Callable[[type[T]], type[T]]: ...


def as_actor(arg: Any = None, /) -> Any:
    """Make a class an actor whose public methods are asks (see :func:`proxy`).

    Every public method needs annotations with a wire codec on each parameter and on its
    return (``-> None`` for nothing); ``*args``, ``**kwargs`` and positional-only
    parameters are refused (TypeError here).  ``@as_actor("counter")`` sets the tag the
    messages are registered under (default ``module.Class``): give it when client and
    server may name the class differently.  A ``receive`` the class defines still gets
    every other message (Terminated, plain tells).
    """
    if isinstance(arg, type):
        return _decorate(arg, None)
    if arg is not None and not isinstance(arg, str):
        raise TypeError("use @as_actor or @as_actor('tag') on a class")
    return lambda cls: _decorate(cls, arg)


def interface_of(cls: type) -> Interface:
    """The :class:`Interface` of an ``@as_actor`` class (TypeError for any other)."""
    interface = getattr(cls, "__interface__", None)
    if not isinstance(interface, Interface):
        raise TypeError(f"{getattr(cls, '__qualname__', cls)!r} is not an @as_actor class")
    return interface


def proxy(ref: Asker, cls: type[T], timeout: float | None = DEFAULT_ASK_TIMEOUT) -> T:
    """An object with ``cls``'s methods, each an ask to ``ref`` (local or on another node;
    an :class:`ActorRef`, or the asyncio front's ref): ``await counter.increment(5)``.
    A call that does not fit the method raises :class:`BadCall` before anything is sent;
    an answer that is not the method's reply raises :class:`BadReply`; the ask's own
    errors (:class:`AskTimeout`, :class:`ActorFailed`, ...) pass through.  For static
    typing, declare the methods ``async def``."""
    if not callable(getattr(ref, "ask", None)):
        raise TypeError(f"a proxy needs a ref (an ActorRef, or the asyncio front's), not {ref!r}")
    proxy_object: T = interface_of(cls).proxy_type(ref, timeout)
    return proxy_object
