"""@message: frozen attrs classes on the wire, strict at decoration time."""

from __future__ import annotations

import contextlib
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import swimactors
from swimactors import Actor, ActorRef, Context, Terminated, message, wire
from swimactors.actors import MESSAGES


@message
class Plain:
    n: int = 1


@message("test.Chat")
class Chat:
    room: str
    text: str
    to: list[int]
    meta: dict[str, float]
    reply_to: str | None = None
    blob: bytes = b""
    flags: tuple[bool, ...] = ()
    extra: Any = None


@message
class Carry:
    target: ActorRef
    others: list[ActorRef]


def test_message_is_a_frozen_attrs_class_usable_with_match() -> None:
    msg = Plain(3)
    assert attrs.has(type(msg))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        msg.n = 4  # type: ignore[misc]
    match msg:
        case Plain(n):
            assert n == 3
        case _:
            pytest.fail("no match")


def test_tags_default_to_module_and_class_and_can_be_chosen() -> None:
    assert MESSAGES.tag_of(Plain) == f"{__name__}.Plain"
    assert MESSAGES.tag_of(Chat) == "test.Chat"
    assert MESSAGES.tag_of(Terminated) == "swimactors.Terminated"


class Opaque:
    """Not an attrs class: no wire codec."""


def test_unencodable_field_is_a_type_error_at_decoration() -> None:
    with pytest.raises(TypeError, match="cannot be a message"):

        @message("test.Bad")
        class Bad:
            thing: Opaque

    assert "test.Bad" not in MESSAGES


def test_unresolvable_annotation_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot resolve"):

        @message("test.Forward")
        class Forward:
            later: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821


def test_a_tag_naming_another_class_is_refused() -> None:
    with pytest.raises(ValueError, match="already names"):

        @message("test.Chat")
        class Impostor:
            x: int = 0


def test_message_decorator_rejects_non_class_arguments() -> None:
    with pytest.raises(TypeError):
        message(42)  # type: ignore[call-overload]


plain_data = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)

chats = st.builds(
    Chat,
    room=st.text(max_size=20),
    text=st.text(max_size=50),
    to=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5),
    meta=st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False, allow_infinity=False)),
    reply_to=st.none() | st.text(max_size=10),
    blob=st.binary(max_size=30),
    flags=st.lists(st.booleans(), max_size=4).map(tuple),
    extra=plain_data,
)


@given(chats)
def test_messages_round_trip_through_cbor(msg: Chat) -> None:
    assert MESSAGES.decode(MESSAGES.encode(msg)) == msg


@given(st.binary(max_size=64))
def test_decoding_garbage_raises_wire_error_only(data: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        MESSAGES.decode(data)


class Echo(Actor):
    async def receive(self, msg: Any, ctx: Context) -> Any:
        return msg


async def test_refs_inside_messages_round_trip_and_stay_live() -> None:
    async with swimactors.open_system(name="n1") as system:
        a = await system.spawn(Echo(), name="a")
        b = await system.spawn(Echo())
        decoded = MESSAGES.decode(MESSAGES.encode(Carry(a, [b, a])))
        assert decoded == Carry(a, [b, a])
        assert decoded.target is a  # bound to the live actor, not a copy
        assert await decoded.others[0].ask(Plain(7)) == Plain(7)
        await system.stop(b)
        gone = MESSAGES.decode(MESSAGES.encode(Carry(b, [])))
        with pytest.raises(swimactors.ActorStopped):
            await gone.target.ask(Plain())
        before = system.dead_letters.count
        await gone.target.tell(Plain())
        assert system.dead_letters.count == before + 1


async def test_terminated_carries_a_ref_on_the_wire() -> None:
    async with swimactors.open_system() as system:
        a = await system.spawn(Echo(), name="a")
        notice = Terminated(a, "ValueError: boom")
        assert MESSAGES.decode(MESSAGES.encode(notice)) == notice


def test_refs_cannot_be_decoded_outside_a_system() -> None:
    data = wire.dumps([MESSAGES.tag_of(Carry), ["n", "a", 1], []])
    with pytest.raises(wire.WireError, match="inside a running system"):
        MESSAGES.decode(data)


@pytest.mark.parametrize("bad", [["n", "a"], ["n", 1, 1], [1, "a", 1], ["n", "a", "1"], "x"])
async def test_malformed_refs_are_wire_errors(bad: Any) -> None:
    async with swimactors.open_system():
        with pytest.raises(wire.WireError):
            MESSAGES.decode(wire.dumps([MESSAGES.tag_of(Carry), bad, []]))
