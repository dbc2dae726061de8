"""OTP-style supervision: restart/stop/escalate/resume, one-for-one and all-for-one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

import swimactors
from swimactors import Actor, ActorFailed, ActorRef, ActorStopped, Context, SystemFailed, message
from swimactors.actors import Strategy

Events = list[tuple[str, ...]]


@message
class Boom:
    pass


@message
class Bump:
    pass


@message
class State:
    pass


@message
class Kids:
    pass


class Worker(Actor):
    """Counts Bumps; raises on Boom; logs its lifecycle into a shared list."""

    def __init__(self, name: str, events: Events) -> None:
        self.name = name
        self.events = events
        self.count = 0

    async def on_start(self) -> None:
        self.events.append(("start", self.name))

    async def on_stop(self) -> None:
        self.events.append(("stop", self.name))

    async def on_restart(self, error: BaseException) -> None:
        self.events.append(("restart", self.name, type(error).__name__))

    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Boom():
                raise RuntimeError(f"{self.name} exploded")
            case Bump():
                self.count += 1
        return self.count


class Parent(Actor):
    """Spawns one child per (name, strategy) on start; answers Kids with their refs."""

    def __init__(
        self, events: Events, specs: list[tuple[str, Strategy]], own: str = "parent"
    ) -> None:
        self.events = events
        self.specs = specs
        self.own = own
        self.kids: dict[str, ActorRef] = {}

    async def on_start(self) -> None:
        self.events.append(("start", self.own))
        for name, strategy in self.specs:
            self.kids[name] = await self.context.spawn(
                _factory(name, self.events), name, supervision=strategy
            )

    async def on_stop(self) -> None:
        self.events.append(("stop", self.own))

    async def on_restart(self, error: BaseException) -> None:
        self.events.append(("restart", self.own, type(error).__name__))
        await self.on_start()

    async def receive(self, msg: Any, ctx: Context) -> Any:
        return dict(self.kids)


def _factory(name: str, events: Events) -> Callable[[], Worker]:
    return lambda: Worker(name, events)


async def test_restart_builds_a_fresh_instance_from_the_factory() -> None:
    events: Events = []
    async with swimactors.open_system() as system:
        ref = await system.spawn(_factory("w", events))
        await ref.tell(Bump())
        assert await ref.ask(Bump()) == 2
        with pytest.raises(ActorFailed):
            await ref.ask(Boom())
        assert await ref.ask(State()) == 0
    assert events == [
        ("start", "w"),
        ("stop", "w"),
        ("restart", "w", "RuntimeError"),
        ("stop", "w"),
    ]


async def test_restart_of_a_spawned_instance_keeps_that_instance() -> None:
    events: Events = []
    async with swimactors.open_system() as system:
        worker = Worker("w", events)
        ref = await system.spawn(worker)
        await ref.tell(Bump())
        with pytest.raises(ActorFailed):
            await ref.ask(Boom())
        assert await ref.ask(State()) == 1
    assert ("restart", "w", "RuntimeError") in events


async def test_resume_keeps_state_and_drops_only_the_failing_message() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(_factory("w", []), supervision=swimactors.resume())
        await ref.tell(Bump())
        await ref.tell(Boom())
        await ref.tell(Bump())
        assert await ref.ask(State()) == 2
        assert system.stats.failures == 1
        assert system.stats.restarts == 0


async def test_stop_strategy_stops_the_actor_with_the_error_as_reason() -> None:
    events: Events = []
    async with swimactors.open_system() as system:
        ref = await system.spawn(_factory("w", events), supervision=swimactors.stop())
        await ref.tell(Boom())
        await system.stop(ref)  # already stopping; returns once it has
        with pytest.raises(ActorStopped):
            await ref.ask(State())
        assert await system.find(ref.path) is None
    assert events == [("start", "w"), ("stop", "w")]


async def test_restarts_within_the_window_are_allowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(_factory("w", []), supervision=swimactors.restart(2, 10.0))
        for _ in range(5):  # one failure every 6 s: never more than 2 in 10 s
            with pytest.raises(ActorFailed):
                await ref.ask(Boom())
            await trio.sleep(6)
        assert await ref.ask(State()) == 0
        assert system.stats.restarts == 5


async def test_restart_intensity_exceeded_escalates_to_the_parent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: Events = []
    specs: list[tuple[str, Strategy]] = [
        ("a", swimactors.restart(2, 10.0)),
        ("b", swimactors.restart()),
    ]
    async with swimactors.open_system() as system:
        parent = await system.spawn(lambda: Parent(events, specs))
        kids = await parent.ask(Kids())
        for _ in range(3):
            with pytest.raises(ActorFailed):
                await kids["a"].ask(Boom())
            await trio.sleep(1)
        new_kids = await parent.ask(Kids())
        assert set(new_kids) == {"a", "b"}
        assert new_kids["a"] != kids["a"]  # the parent restarted and built new children
        with pytest.raises(ActorStopped):
            await kids["b"].ask(State())
        assert await new_kids["b"].ask(Bump()) == 1
    restart_at = events.index(("restart", "parent", "RuntimeError"))
    before = events[:restart_at]
    # the child that exceeded stopped, and both children stopped before the parent did
    assert before.index(("stop", "b")) < before.index(("stop", "parent"))
    assert before.count(("restart", "a", "RuntimeError")) == 2


async def test_root_escalation_stops_the_system_with_the_error_visible() -> None:
    events: Events = []
    reached_end = False
    with pytest.raises(SystemFailed, match="RuntimeError: w exploded") as info:
        async with swimactors.open_system() as system:
            ref = await system.spawn(_factory("w", events), supervision=swimactors.escalate())
            other = await system.spawn(_factory("x", events))
            await ref.tell(Boom())
            await trio.sleep_forever()  # cancelled when the failure reaches the top
            reached_end = True
    assert not reached_end
    assert isinstance(info.value.__cause__, RuntimeError)
    assert ("stop", "x") in events  # the rest of the system was stopped cleanly
    assert system.live_actors == 0
    assert other.path.startswith("$")


async def test_escalate_stops_the_child_and_restarts_the_parent() -> None:
    events: Events = []
    specs: list[tuple[str, Strategy]] = [("a", swimactors.escalate())]
    async with swimactors.open_system() as system:
        parent = await system.spawn(lambda: Parent(events, specs))
        kids = await parent.ask(Kids())
        await kids["a"].tell(Boom())
        while (await parent.ask(Kids()))["a"] == kids["a"]:
            await trio.sleep(0)
    assert events[:5] == [
        ("start", "parent"),
        ("start", "a"),
        ("stop", "a"),
        ("stop", "parent"),
        ("restart", "parent", "RuntimeError"),
    ]


async def test_all_for_one_restarts_the_siblings() -> None:
    events: Events = []
    all_for_one = swimactors.restart(scope="all_for_one")
    specs: list[tuple[str, Strategy]] = [(n, all_for_one) for n in ("a", "b", "c")]
    async with swimactors.open_system() as system:
        parent = await system.spawn(lambda: Parent(events, specs))
        kids = await parent.ask(Kids())
        for ref in kids.values():
            assert await ref.ask(Bump()) == 1
        with pytest.raises(ActorFailed):
            await kids["b"].ask(Boom())
        # b answers only after its restart, which first signalled its siblings
        for name in ("b", "a", "c"):
            assert await kids[name].ask(State()) == 0  # same refs, fresh state
    for name in ("a", "b", "c"):
        assert ("restart", name, "RuntimeError") in events
    assert ("restart", "parent", "RuntimeError") not in events


async def test_one_for_one_leaves_the_siblings_alone() -> None:
    events: Events = []
    specs: list[tuple[str, Strategy]] = [(n, swimactors.restart()) for n in ("a", "b")]
    async with swimactors.open_system() as system:
        parent = await system.spawn(lambda: Parent(events, specs))
        kids = await parent.ask(Kids())
        await kids["a"].tell(Bump())
        with pytest.raises(ActorFailed):
            await kids["b"].ask(Boom())
        assert await kids["a"].ask(State()) == 1


async def test_all_for_one_stop_stops_the_siblings() -> None:
    events: Events = []
    stop_all = swimactors.stop(scope="all_for_one")
    specs: list[tuple[str, Strategy]] = [(n, stop_all) for n in ("a", "b")]
    async with swimactors.open_system() as system:
        parent = await system.spawn(lambda: Parent(events, specs))
        kids = await parent.ask(Kids())
        with pytest.raises(ActorFailed):
            await kids["a"].ask(Boom())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ActorStopped):
            await kids["b"].ask(State())
        assert await parent.ask(Kids())  # the parent itself carries on
    assert ("stop", "b") in events
    assert not any(e[0] == "restart" for e in events)


class BadStart(Actor):
    async def on_start(self) -> None:
        raise OSError("no disk")

    async def receive(self, msg: Any, ctx: Context) -> Any:
        return "ok"


async def test_a_failing_on_start_is_supervised_and_escalates_when_it_keeps_failing() -> None:
    with pytest.raises(SystemFailed) as info:
        async with swimactors.open_system() as system:
            await system.spawn(BadStart, supervision=swimactors.restart(2, 60.0))
            await trio.sleep_forever()
    assert isinstance(info.value.__cause__, OSError)
    assert system.stats.restarts == 2


async def test_a_factory_that_fails_on_restart_escalates() -> None:
    built = 0

    def factory() -> Worker:
        nonlocal built
        built += 1
        if built > 1:
            raise LookupError("gone")
        return Worker("w", [])

    with pytest.raises(SystemFailed) as info:
        async with swimactors.open_system() as system:
            ref = await system.spawn(factory)
            await ref.tell(Boom())
            await trio.sleep_forever()
    assert isinstance(info.value.__cause__, LookupError)


def test_strategies_validate_their_arguments() -> None:
    with pytest.raises(ValueError):
        swimactors.restart(-1, 1.0)
    with pytest.raises(ValueError):
        swimactors.restart(1, -1.0)
    with pytest.raises(ValueError, match="scope"):
        swimactors.stop(scope="everyone")  # type: ignore[arg-type]


class Quitter(Actor):
    async def receive(self, msg: Any, ctx: Context) -> Any:
        ctx.stop()
        raise RuntimeError("quitting badly")


async def test_a_stop_requested_while_failing_still_happens_after_supervision() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(Quitter, name="q")
        with pytest.raises(ActorFailed):
            await ref.ask(Boom())
        await trio.testing.wait_all_tasks_blocked()
        assert await system.find("q") is None
        assert system.stats.restarts == 1  # the failure was supervised first


class BadStop(Actor):
    async def on_stop(self) -> None:
        raise ValueError("cannot clean up")

    async def receive(self, msg: Any, ctx: Context) -> Any:
        if isinstance(msg, Boom):
            raise RuntimeError("late failure")
        return None


async def test_a_failing_on_stop_is_logged_and_counted_but_the_actor_still_stops() -> None:
    async with swimactors.open_system() as system:
        ref = await system.spawn(BadStop())
        await system.stop(ref)
        assert system.stats.failures == 1
        assert system.live_actors == 0


class FailsOnShutdown(Actor):
    """Its on_stop asks a sibling that is being stopped too; the failure that follows
    during shutdown must stop it, not restart it."""

    def __init__(self, events: Events) -> None:
        self.events = events

    async def on_restart(self, error: BaseException) -> None:
        self.events.append(("restart", "x", type(error).__name__))

    async def receive(self, msg: Any, ctx: Context) -> Any:
        await trio.sleep(1)
        raise RuntimeError("failed while the system stops")


async def test_failures_during_shutdown_stop_instead_of_restarting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: Events = []
    async with swimactors.open_system() as system:
        ref = await system.spawn(lambda: FailsOnShutdown(events))
        await ref.tell(Boom())
        await trio.testing.wait_all_tasks_blocked()  # inside receive, sleeping
    assert events == []
    assert system.stats.failures == 1
    assert system.stats.restarts == 0


class SpawnsInStop(Actor):
    def __init__(self) -> None:
        self.error: Exception | None = None

    async def on_stop(self) -> None:
        try:
            await self.context.spawn(BadStop())
        except ActorStopped as exc:
            self.error = exc

    async def receive(self, msg: Any, ctx: Context) -> Any:
        return None


async def test_a_stopping_actor_cannot_spawn() -> None:
    actor = SpawnsInStop()
    async with swimactors.open_system() as system:
        ref = await system.spawn(actor)
        await system.stop(ref)
    assert actor.error is not None and "cannot spawn" in str(actor.error)
