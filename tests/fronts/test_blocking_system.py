"""The blocking actor system: spawn, find, ask and tell from plain threads, the same typed
errors, an actor on another node asked, and an interrupted ask given up on the runtime
thread."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import trio

from swimactors import ActorFailed, AskTimeout, System, blocking
from swimactors.loop_thread import ThreadClosed
from swimactors.membership.types import format_address

from .test_aio_system import Gated, Tally, late_replies
from .timing import CONFIG

pytestmark = pytest.mark.network


def test_spawn_find_ask_tell_and_errors_from_threads() -> None:
    with blocking.open_system("solo") as system:
        assert system.name == "solo"
        ref = system.spawn(Tally, name="tally")
        assert system.find("tally") == ref
        assert system.find("nobody") is None
        ref.tell(5)
        assert ref.ask(0) == 5
        with ThreadPoolExecutor(8) as pool:
            totals = list(pool.map(lambda _: ref.ask(1), range(50)))
        assert sorted(totals) == list(range(6, 56))  # each ask ran once, in some order
        with pytest.raises(ActorFailed):
            ref.ask(-1)
        stuck = system.spawn(Tally, name="stuck")
        with pytest.raises(AskTimeout):
            stuck.ask("hang", timeout=0.2)
        idle = system.spawn(Tally, name="idle")
        system.stop(idle)
        assert system.find("idle") is None

        async def asks_on_its_own_thread(_: System) -> object:
            return ref.ask(1)

        with pytest.raises(RuntimeError, match="would hang"):
            system.run(asks_on_its_own_thread)
    with pytest.raises(ThreadClosed):
        ref.ask(1)


def test_an_actor_on_another_node_is_asked() -> None:
    with blocking.open_system("a", bind="127.0.0.1:0", config=CONFIG) as a:
        seed = a.run(gossip_address)
        with blocking.open_system("b", "127.0.0.1:0", [seed], config=CONFIG) as b:
            b.spawn(Tally, name="remote-tally", public=True)
            tally = a.wait_for("remote-tally", timeout=20)
            assert tally.node == "b"
            tally.tell(2)
            assert tally.ask(3) == 5
            assert a.ref(tally.ref) == tally


async def gossip_address(system: System) -> str:
    assert system.cluster is not None
    return format_address(system.cluster.node.address)


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt for the test, even where this process was started
    with it ignored (a background job of a shell without job control)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_an_interrupted_ask_is_given_up_on_the_runtime_thread() -> None:
    with blocking.open_system("solo") as system:
        gated = Gated()
        ref = system.spawn(gated, name="gated")
        main = threading.get_ident()

        def interrupt() -> None:
            if gated.started.wait(60):  # the ask is under way: interrupt the asker
                signal.pthread_kill(main, signal.SIGINT)

        threading.Thread(target=interrupt).start()
        try:
            with pytest.raises(KeyboardInterrupt):
                ref.ask("wait", timeout=90)  # bounded: a lost interrupt fails, not hangs
            system.run(lambda _: trio.sleep(0))  # after the give-up on the runtime thread
        finally:
            gated.gate.set()  # whatever happened, the actor's thread ends and the system stops
        assert ref.ask("after") == "after"  # handled once "wait" was answered
        assert system.run(late_replies) == 1  # nobody waited for that answer
        assert system.run(lambda _: trio.sleep(0)) is None
