"""OTP's rest-for-one scope and a directive chosen by the error's type (GoAkt's
error-to-directive mapping, Akka's decider)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import swimactors
from swimactors import Actor, ActorFailed, ActorRef, ActorStopped, Context, message
from swimactors.actors import Directive, Strategy

ERRORS: dict[str, type[Exception]] = {
    "value": ValueError,
    "key": KeyError,
    "os": OSError,
    "runtime": RuntimeError,
}


@message
class Fail:
    kind: str


@message
class Bump:
    pass


@message
class Kids:
    pass


class Counter(Actor):
    """Counts Bumps (answering the count); raises the error a Fail names."""

    def __init__(self) -> None:
        self.count = 0

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if isinstance(msg, Fail):
            raise ERRORS[msg.kind](msg.kind)
        if isinstance(msg, Bump):
            self.count += 1
        return self.count


class Parent(Actor):
    """Spawns children a, b, c, d in that order, each under ``strategy``."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.kids: dict[str, ActorRef] = {}

    async def on_start(self) -> None:
        for name in "abcd":
            self.kids[name] = await self.context.spawn(Counter, name, supervision=self.strategy)

    async def receive(self, msg: Any, ctx: Context) -> Any:
        return dict(self.kids)


async def counts(kids: dict[str, ActorRef]) -> dict[str, int | str]:
    """Each child's count after one more Bump, or "stopped"."""
    found: dict[str, int | str] = {}
    for name, ref in kids.items():
        try:
            found[name] = await ref.ask(Bump()) - 1
        except ActorStopped:
            found[name] = "stopped"
    return found


async def family(system: swimactors.System, strategy: Strategy) -> dict[str, ActorRef]:
    parent = await system.spawn(lambda: Parent(strategy))
    kids: dict[str, ActorRef] = await parent.ask(Kids())
    for ref in kids.values():
        await ref.ask(Bump())
    return kids


async def test_rest_for_one_restarts_the_failing_child_and_those_spawned_after_it() -> None:
    async with swimactors.open_system() as system:
        kids = await family(system, swimactors.restart(scope="rest_for_one"))
        with pytest.raises(ActorFailed):
            await kids["b"].ask(Fail("runtime"))
        await trio.testing.wait_all_tasks_blocked()
        assert await counts(kids) == {"a": 1, "b": 0, "c": 0, "d": 0}
        with pytest.raises(ActorFailed):
            await kids["d"].ask(Fail("runtime"))  # the last one: no sibling after it
        await trio.testing.wait_all_tasks_blocked()
        assert await counts(kids) == {"a": 2, "b": 1, "c": 1, "d": 0}


async def test_rest_for_one_stop_stops_the_later_siblings_only() -> None:
    async with swimactors.open_system() as system:
        kids = await family(system, swimactors.stop(scope="rest_for_one"))
        with pytest.raises(ActorFailed):
            await kids["c"].ask(Fail("runtime"))
        await trio.testing.wait_all_tasks_blocked()
        assert await counts(kids) == {"a": 1, "b": 1, "c": "stopped", "d": "stopped"}


async def test_by_error_picks_the_directive_by_the_errors_type() -> None:
    strategy = swimactors.by_error(
        {ValueError: swimactors.resume(), LookupError: swimactors.restart()},
        otherwise=swimactors.stop(),
    )
    async with swimactors.open_system() as system:
        kids = await family(system, strategy)
        for name, kind in (("a", "value"), ("b", "key"), ("c", "os")):
            with pytest.raises(ActorFailed):
                await kids[name].ask(Fail(kind))
        await trio.testing.wait_all_tasks_blocked()
        # resumed keeps its state; KeyError is a LookupError: restarted; OSError: stopped
        assert await counts(kids) == {"a": 1, "b": 0, "c": "stopped", "d": 1}
    assert system.stats.restarts == 1


async def test_by_error_tries_its_cases_in_order_and_defaults_to_restart() -> None:
    strategy = swimactors.by_error({KeyError: swimactors.resume(), LookupError: swimactors.stop()})
    async with swimactors.open_system() as system:
        kids = await family(system, strategy)
        for name, kind in (("a", "key"), ("b", "runtime")):
            with pytest.raises(ActorFailed):
                await kids[name].ask(Fail(kind))
        await trio.testing.wait_all_tasks_blocked()
        assert await counts(kids) == {"a": 1, "b": 0, "c": 1, "d": 1}


async def test_each_restart_directive_of_by_error_counts_its_own_window() -> None:
    strategy = swimactors.by_error(
        {ValueError: swimactors.restart(1, 60.0)}, otherwise=swimactors.restart(5, 60.0)
    )
    with pytest.raises(swimactors.SystemFailed) as info:
        async with swimactors.open_system() as system:
            ref = await system.spawn(Counter, supervision=strategy)
            for kind in ("runtime", "value", "runtime", "value"):
                with pytest.raises(ActorFailed):
                    await ref.ask(Fail(kind))
                await trio.testing.wait_all_tasks_blocked()
            await trio.sleep_forever()
    # three restarts (two under the default's budget, one under ValueError's), then
    # the second ValueError exceeds its own budget of one and escalates
    assert system.stats.restarts == 3
    assert isinstance(info.value.__cause__, ValueError)


def test_by_error_and_spawn_refuse_what_is_not_a_strategy() -> None:
    with pytest.raises(TypeError, match="exception classes"):
        swimactors.by_error({"ValueError": swimactors.stop()})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="restart/stop/escalate/resume"):
        swimactors.by_error({ValueError: "stop"})  # type: ignore[dict-item]
    nested = swimactors.by_error({ValueError: swimactors.stop()})
    with pytest.raises(TypeError, match="restart/stop/escalate/resume"):
        swimactors.by_error({KeyError: nested})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="scope"):
        swimactors.restart(scope="everyone")  # type: ignore[arg-type]


async def test_spawn_refuses_a_supervision_that_is_not_a_strategy() -> None:
    async with swimactors.open_system() as system:
        with pytest.raises(TypeError, match="supervision must be"):
            await system.spawn(Counter, supervision="restart")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="supervision must be"):
        async with swimactors.open_system(supervision="stop"):  # type: ignore[arg-type]
            pass


FAMILY: list[type[Exception]] = [Exception, LookupError, KeyError, IndexError, ValueError, OSError]
DIRECTIVES = [swimactors.resume(), swimactors.stop(), swimactors.escalate(), swimactors.restart()]


@given(
    cases=st.lists(st.tuples(st.sampled_from(FAMILY), st.sampled_from(DIRECTIVES)), max_size=6),
    error=st.sampled_from(FAMILY),
)
def test_by_error_is_the_first_matching_case_like_except_clauses(
    cases: list[tuple[type[Exception], Directive]], error: type[Exception]
) -> None:
    mapping = dict(cases)
    strategy = swimactors.by_error(mapping, otherwise=swimactors.escalate())
    matching = [directive for kind, directive in mapping.items() if kind in error.__mro__]
    expected = matching[0] if matching else swimactors.escalate()
    assert strategy.directive_for(error("x")) == expected
