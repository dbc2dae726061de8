"""Proxies: ``@as_actor`` classes called through ``system.proxy`` (local; remote in
tests/cluster/test_proxy_remote.py), typed errors for wrong calls and wrong answers, and
the argument checks agreeing with the wire's decoders."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import example, given
from hypothesis import strategies as st

import swimactors
from swimactors import Actor, ActorRef, BadCall, BadReply, Context, Terminated, as_actor, wire
from swimactors.actors.message import MESSAGES
from swimactors.actors.proxy import proxy


@as_actor("test.proxy.Counter")
class Counter:
    """A plain class made an actor: sync and async methods, defaults, keyword-only."""

    def __init__(self, value: int = 0) -> None:
        self.value = value
        self.others: list[Any] = []

    async def increment(self, n: int = 1) -> int:
        self.value += n
        return self.value

    def get(self) -> int:
        return self.value

    def describe(self, label: str, *, scale: float = 1.0, tags: list[str] | None = None) -> str:
        return f"{label}={self.value * scale}:{','.join(tags or [])}"

    def pair(self) -> tuple[int, str]:
        return (self.value, "v")

    def reset(self) -> None:
        self.value = 0

    def wrong(self) -> int:
        return "not an int"  # type: ignore[return-value]

    def receive(self, msg: Any, ctx: Context) -> Any:
        """Everything that is not a method call (a plain tell, Terminated)."""
        self.others.append(msg)
        return "other"

    def _private(self) -> int:  # not a remote method
        return 1


@as_actor("test.proxy.Greeter")
class Greeter(Actor):
    """An Actor subclass with only async methods."""

    async def greet(self, who: str) -> str:
        return f"hello {who}"


async def test_methods_are_asks_with_their_defaults_and_results(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(lambda: Counter(10), name="counter")
        counter = system.proxy(ref, Counter)
        assert await counter.increment(5) == 15
        assert await counter.increment() == 16
        assert await counter.get() == 16
        assert await counter.describe("v", scale=0.5, tags=["a", "b"]) == "v=8.0:a,b"
        assert await counter.describe(label="w") == "w=16.0:"
        assert await counter.pair() == (16, "v")
        assert await counter.reset() is None
        assert await counter.get() == 0
        assert await ref.ask("plain") == "other"  # the class's own receive gets the rest
        greeter = system.proxy(await system.spawn(Greeter), Greeter)
        assert await greeter.greet("ann") == "hello ann"
        assert isinstance(Counter(), Actor) and repr(counter).startswith("<Counter proxy")


async def test_a_wrong_call_is_a_bad_call_and_nothing_is_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        instance = Counter(1)
        counter = system.proxy(await system.spawn(instance), Counter)
        wrong_calls = [
            (lambda: counter.increment("5"), "n='5' does not fit"),
            (lambda: counter.increment(True), "n=True does not fit"),
            (lambda: counter.increment(1, 2), "too many positional arguments"),
            (lambda: counter.increment(m=1), "unexpected keyword argument 'm'"),
            (lambda: counter.describe(), "missing a required argument: 'label'"),
            (lambda: counter.describe("x", 2.0), "too many positional arguments"),
            (lambda: counter.describe("x", tags=["a", 1]), "tags=['a', 1] does not fit"),
            (lambda: counter.describe("x", scale=float("nan")), "scale=nan does not fit"),
        ]
        for call, why in wrong_calls:
            with pytest.raises(BadCall, match=re.escape(why)) as caught:
                await call()
            assert "Counter." in str(caught.value) and isinstance(caught.value, TypeError)
        assert instance.value == 1 and instance.others == []  # none reached the actor
        with pytest.raises(AttributeError, match="no remote method 'decrement'"):
            counter.decrement  # noqa: B018
        with pytest.raises(AttributeError, match="no remote method '_private'"):
            counter._private  # noqa: B018


async def test_a_wrong_answer_is_a_bad_reply_and_the_actor_carries_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        counter = system.proxy(await system.spawn(lambda: Counter(3)), Counter)
        with pytest.raises(BadReply, match=r"Counter.wrong\(\) -> int returned 'not an int'"):
            await counter.wrong()
        assert await counter.get() == 3  # not failed, not restarted
        not_a_counter = system.proxy(await system.spawn(Greeter), Counter)
        with pytest.raises(BadReply, match="is it a Counter"):
            await not_a_counter.get()


async def test_terminated_reaches_the_class_receive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Watching(Counter):
        async def on_start(self) -> None:
            self.context.watch(await self.context.spawn(Greeter, "child"))

    async with swimactors.open_system() as system:
        instance = Watching()
        ref = await system.spawn(instance)
        await trio.testing.wait_all_tasks_blocked()  # on_start has run
        child = await system.find(f"{ref.path}/child")
        assert child is not None
        await system.stop(child)
        await trio.testing.wait_all_tasks_blocked()
        assert instance.others == [Terminated(child)]
        assert await system.proxy(ref, Watching).increment(2) == 2


def test_classes_that_cannot_be_proxied_are_refused_where_they_are_written() -> None:
    def decorate(cls: type) -> None:
        as_actor(f"test.proxy.refused.{cls.__name__}")(cls)

    class NoAnnotation:
        def f(self, x) -> int:  # type: ignore[no-untyped-def]
            return 1

    class NoReturn:
        def f(self, x: int):  # type: ignore[no-untyped-def]
            return 1

    class Star:
        def f(self, *xs: int) -> int:
            return 1

    class NoCodec:
        def f(self, x: set[int]) -> int:
            return 1

    for cls, why in [
        (NoAnnotation, "needs an annotation"),
        (NoReturn, "annotate what it returns"),
        (Star, "named parameters"),
        (NoCodec, "no wire codec"),
    ]:
        with pytest.raises(TypeError, match=why):
            decorate(cls)
    ref = ActorRef("n", "p", 1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an @as_actor class"):
        proxy(ref, NoCodec)
    with pytest.raises(TypeError, match="needs a ref"):
        proxy("actor://n/p#1", Counter)  # type: ignore[arg-type]


HINTS: list[Any] = [
    int,
    float,
    str,
    bytes,
    bool,
    Any,
    int | None,
    list[int],
    list[str | None],
    dict[str, int],
    tuple[int, str],
    tuple[int, ...],
    dict[str, list[float]],
]

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@given(hint=st.sampled_from(HINTS), value=plain)
@example(hint=int, value=2**64)  # bignums are refused on the wire
@example(hint=float, value=-(2**64) - 1)
@example(hint=float, value=float("inf"))
@example(hint=int, value=True)
@example(hint=tuple[int, str], value=[1, "a"])
@example(hint=dict[str, int], value={b"k": 1})
def test_the_senders_check_accepts_exactly_what_the_receivers_decode_accepts(
    hint: Any, value: Any
) -> None:
    """For data as it arrives (plain CBOR values), the proxy's argument check and the
    field decoder the receiving node runs agree: a call the sender lets through decodes
    there, and one it refuses would have been refused there."""
    codec = MESSAGES._codec_for(hint)
    try:
        encoded = wire.loads(wire.dumps(value))
        codec.decode(encoded)
        decodes = True
    except (wire.WireError, ValueError, OverflowError):
        decodes = False
    assert MESSAGES.checker(hint)(value) == decodes


@given(n=st.integers(-(2**63), 2**63), tags=st.lists(st.text(max_size=4), max_size=4))
def test_a_call_survives_the_wire_as_itself(n: int, tags: list[str]) -> None:
    call_type = MESSAGES._by_tag["test.proxy.Counter.increment"]
    describe_type = MESSAGES._by_tag["test.proxy.Counter.describe"]
    for call in (call_type(n), describe_type("x", scale=0.5, tags=tags)):
        assert MESSAGES.decode(MESSAGES.encode(call)) == call


def test_refs_are_checked_by_type() -> None:
    check = MESSAGES.checker(ActorRef | None)
    assert check(None) and not check("actor://a/b#1")
