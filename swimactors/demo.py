"""``make demo``: five agent processes on loopback show what SWIM does, step by step.

Each step is an async function of a :class:`Demo`; :data:`STEPS` is the script, so a
later layer (actors) adds its own steps without touching these.  Every agent process is
killed and reaped when the demo ends, however it ends.
"""

from __future__ import annotations

import functools
import re
import signal
import sys
import textwrap
from collections.abc import Awaitable, Callable

import trio

from .actors.actor import Actor
from .actors.context import Context
from .actors.errors import ActorError
from .agent.cluster import AgentProcess, LocalCluster, open_local_cluster, wait_until
from .agent.commands import format_members
from .cli import config_from
from .cluster.system import System, open_system
from .membership.config import Config
from .membership.types import format_address

__all__ = ["STEPS", "Demo", "main"]

NAMES = ("a", "b", "c", "d", "e")
VICTIM = "c"
LEAVER = "d"
HOLDER = "e"
"""Holds the named actor ``counter`` in the actors part, and is killed there."""
APP = "swimactors.demo:setup_actors"
OVERRIDES = {"probe_interval": 0.5, "probe_timeout": 0.25, "push_pull_interval": 5.0}
_EVENT = re.compile(r"\[(\S+)\] (UP|SUSPECT|ALIVE|DOWN|LEFT|UPDATED|CONFLICT)\s+(\S+)")


class Demo:
    """What the steps share: the cluster, the config, and when each agent saw what."""

    def __init__(self, cluster: LocalCluster, config: Config) -> None:
        self.cluster = cluster
        self.config = config
        self.started = trio.current_time()
        self.echo = False
        self.seen: dict[tuple[str, str, str], float] = {}
        """(observer, EVENT, member) -> first time the observer printed it."""

    def on_line(self, agent: AgentProcess, line: str) -> None:
        if match := _EVENT.search(line):
            self.seen.setdefault(
                (match.group(1), match.group(2), match.group(3)), trio.current_time()
            )
        if self.echo:
            print(f"      | {line}", flush=True)

    def say(self, text: str) -> None:
        print(textwrap.fill(text, 92, initial_indent="  ", subsequent_indent="  "), flush=True)

    def heading(self, title: str) -> None:
        elapsed = trio.current_time() - self.started
        print(f"\n== {title} ".ljust(78, "=") + f" t={elapsed:5.1f}s", flush=True)

    def agents(self, *, but: str | None = None) -> list[AgentProcess]:
        running = [a for a in self.cluster.agents.values() if a.running and a.name != but]
        return sorted(running, key=lambda a: a.name)

    async def all_see(self, member: str, status: str, *, but: str | None = None) -> bool:
        for agent in self.agents(but=but):
            statuses = await agent.statuses()
            if statuses is None or statuses.get(member) != status:
                return False
        return True

    async def table(self, agent: AgentProcess) -> None:
        print(textwrap.indent(format_members(await agent.members()), "    "), flush=True)


async def start_cluster(demo: Demo) -> None:
    """Step 1: start five agents, each joining through the first."""
    demo.heading("1. Five agents join one cluster")
    demo.say(
        "Each agent is its own process with one UDP socket (probes and gossip) and a TCP "
        "listener on the same port (full-state sync). Agent a starts alone; the others are "
        "told only a's address and learn everyone else from a's member list (push/pull), "
        "then from gossip piggybacked on every probe. Every "
        f"{demo.config.push_pull_interval:g} s each agent also swaps its whole member list "
        "with a random peer, which mends anything gossip missed."
    )
    first = await demo.cluster.start(NAMES[0], app=APP)
    async with trio.open_nursery() as nursery:
        for name in NAMES[1:]:
            start = functools.partial(demo.cluster.start, name, join=[first.gossip], app=APP)
            nursery.start_soon(start)
    took = await wait_until(lambda: _all_up(demo, len(NAMES)), timeout=30)
    if took is None:
        raise RuntimeError("the cluster did not converge within 30 s")
    demo.say(f"All five agents list all five members as up {took:.2f} s after the last started:")
    await demo.table(first)


async def _all_up(demo: Demo, count: int) -> bool:
    for agent in demo.agents():
        statuses = await agent.statuses()
        if statuses is None or list(statuses.values()).count("up") != count:
            return False
    return True


async def crash_and_detect(demo: Demo) -> None:
    """Step 2: SIGKILL one agent and time its SUSPECT and DOWN everywhere."""
    config, n = demo.config, len(NAMES)
    low, high = config.suspicion_timeouts(n)
    bound = high + 3 * config.probe_interval + 1.0
    demo.heading(f"2. Agent {VICTIM} crashes (SIGKILL)")
    demo.say(
        f"Every {config.probe_interval:g} s each agent pings one member in turn and expects an "
        f"ack within {config.probe_timeout:g} s; if none comes it asks {config.indirect_checks} "
        "other member(s) to ping for it, so one lossy link cannot condemn a healthy node. "
        "Still nothing: the member becomes SUSPECT and the suspicion is gossiped. The "
        "suspect may refute it (it is alive and bumps its incarnation); if not, after the "
        f"suspicion timeout it is declared DOWN. The timeout starts at {high:g} s and shrinks "
        f"to {low:g} s as other members independently confirm the suspicion (Lifeguard). "
        f"Bound for everyone to see DOWN: {high:g} + 3 x {config.probe_interval:g} + 1 = "
        f"{bound:g} s. Agents' own lines follow:"
    )
    demo.echo = True
    killed_at = trio.current_time()
    demo.cluster.kill(VICTIM)
    took = await wait_until(lambda: demo.all_see(VICTIM, "down"), timeout=bound + 10)
    await trio.sleep(0.2)
    demo.echo = False
    print(f"\n    {'agent':<6} {'saw SUSPECT':>12} {'saw DOWN':>10}   (seconds after the kill)")
    for agent in demo.agents():
        suspect = demo.seen.get((agent.name, "SUSPECT", VICTIM))
        down = demo.seen.get((agent.name, "DOWN", VICTIM))
        print(f"    {agent.name:<6} {_since(suspect, killed_at):>12} {_since(down, killed_at):>10}")
    if took is None:
        raise RuntimeError(f"not every survivor marked {VICTIM} down within {bound + 10:g} s")
    verdict = "within" if took <= bound else "OVER"
    demo.say(
        f"Every survivor's /v1/members shows {VICTIM} down {took:.2f} s after the kill, "
        f"{verdict} the {bound:g} s bound."
    )


def _since(moment: float | None, start: float) -> str:
    return "-" if moment is None else f"{moment - start:.2f}"


async def restart_and_rejoin(demo: Demo) -> None:
    """Step 3: restart the killed agent on its port; it is UP again everywhere."""
    demo.heading(f"3. Agent {VICTIM} restarts on the same port")
    old = demo.cluster.agents[VICTIM]
    before = {m["name"]: m for m in await demo.agents()[0].members()}[VICTIM]["incarnation"]
    demo.say(
        "A restarted process starts from a higher incarnation (its start time), so its "
        "'alive' news overrides the old 'down' verdict everywhere."
    )
    seed = demo.cluster.agents[NAMES[0]].gossip
    await demo.cluster.start(VICTIM, join=[seed], port=old.gossip[1], app=APP)
    took = await wait_until(lambda: demo.all_see(VICTIM, "up"), timeout=30)
    after = {m["name"]: m for m in await demo.agents()[0].members()}[VICTIM]["incarnation"]
    state = "everyone sees it up" if took is not None else "NOT everyone sees it up"
    demo.say(f"{state} after {took or 30:.2f} s; incarnation {before} -> {after}.")


async def graceful_leave(demo: Demo) -> None:
    """Step 4: SIGTERM one agent; the others see it LEFT at once."""
    demo.heading(f"4. Agent {LEAVER} leaves gracefully (SIGTERM)")
    demo.say(
        "A leaving agent gossips 'left' before it exits, so nobody has to wait for probes to "
        "fail: compare with the crash above."
    )
    demo.echo = True
    stopped_at = trio.current_time()
    await demo.cluster.stop(LEAVER, signal.SIGTERM)
    took = await wait_until(lambda: demo.all_see(LEAVER, "left", but=LEAVER), timeout=15)
    demo.echo = False
    if took is None:
        raise RuntimeError(f"not every agent saw {LEAVER} leave within 15 s")
    elapsed = trio.current_time() - stopped_at
    demo.say(f"Every remaining agent shows {LEAVER} left, {elapsed:.2f} s after the signal.")
    await demo.table(demo.agents()[0])


async def stop_all(demo: Demo) -> None:
    """Step 6: stop every agent still running."""
    demo.heading("6. Stopping every agent")
    for agent in demo.agents():
        await demo.cluster.stop(agent.name, signal.SIGTERM)
    demo.say("All agent processes exited and were reaped.")


# -- the actors part: every agent runs ``--app swimactors.demo:setup_actors`` ---------------


class Counter(Actor):
    """The named actor ``counter`` (on agent HOLDER)."""

    def __init__(self) -> None:
        self.value = 0

    def receive(self, msg: object, ctx: Context) -> int:
        self.value += 1
        return self.value


class Caller(Actor):
    """Once told ``"go"``, asks ``counter`` every 0.4 s and prints what came back (a
    failure once, not again for every call that fails the same way)."""

    def __init__(self) -> None:
        self.last_failure = ""

    async def receive(self, msg: object, ctx: Context) -> None:
        if msg == "go":
            ctx.schedule_every(0.4, "tick")
        elif msg == "tick":
            counter = await ctx.system.find("counter")
            if counter is None:
                self.report(ctx, "nobody holds 'counter' any more", failure=True)
                return
            try:
                value = await counter.ask("next", timeout=2.0)
                self.report(ctx, f"counter on {counter.node} answered {value}", failure=False)
            except ActorError as exc:
                self.report(ctx, f"{type(exc).__name__}: {exc}", failure=True)

    def report(self, ctx: Context, text: str, *, failure: bool) -> None:
        if failure and text == self.last_failure:
            return
        self.last_failure = text if failure else ""
        print(f"[{ctx.self_ref.node}] CALL     {text}", flush=True)


async def setup_actors(system: System) -> None:
    """The demo's ``--app``: a caller on every agent, the counter on HOLDER."""
    await system.spawn(Caller, name=f"caller-{system.name}", public=True)
    if system.name == HOLDER:
        await system.spawn(Counter, name="counter", public=True)


async def actors_across_nodes(demo: Demo) -> None:
    """Step 5: call a named actor from every agent, then kill its holder."""
    demo.heading(f"5. Actors: 'counter' on agent {HOLDER}, called from every other agent")
    demo.say(
        "Every agent runs a full actor system (`swimactors agent --app ...`). Agent "
        f"{HOLDER} spawned an actor under the cluster-wide name 'counter'; the name spread "
        "through the registry on the gossip. Each other agent's caller finds it by name "
        "and asks it over the actor transport (one TCP connection per pair of agents). "
        f"Then {HOLDER} is killed: asks in flight fail at once with NodeDown when its "
        "connections drop, and once membership declares it DOWN its name disappears. "
        "This script joins too, as the member 'demo', to start the callers and watch the "
        "registry; it leaves when the step ends, as a client: the agents forget it soon."
    )
    seed = demo.cluster.agents[NAMES[0]].gossip
    async with open_system(
        "demo", bind="127.0.0.1:0", seeds=[format_address(seed)], config=demo.config, client=True
    ) as system:
        callers = [await system.wait_for(f"caller-{a.name}", 20) for a in demo.agents(but=HOLDER)]
        await system.wait_for("counter", 20)
        demo.echo = True
        for caller in callers:
            await caller.tell("go")
        await trio.sleep(1.5)
        print(f"      -- SIGKILL {HOLDER}", flush=True)
        demo.cluster.kill(HOLDER)
        took = await wait_until(lambda: _name_gone(system), timeout=30)
        await trio.sleep(0.5)
        demo.echo = False
    if took is None:
        raise RuntimeError("'counter' was still registered 30 s after its node was killed")
    demo.say(f"'counter' was gone from the registry {took:.2f} s after the kill.")


async def _name_gone(system: System) -> bool:
    return not system.has_actor("counter")


Step = Callable[[Demo], Awaitable[None]]
STEPS: list[Step] = [
    start_cluster,
    crash_and_detect,
    restart_and_rejoin,
    graceful_leave,
    actors_across_nodes,
    stop_all,
]


async def run(steps: list[Step] = STEPS) -> None:
    """Run the demo's ``steps`` against five agent processes, stopping them all at the end."""
    config = config_from("local", [(k, str(v)) for k, v in OVERRIDES.items()])
    print("swimactors demo: SWIM membership with five agent processes on 127.0.0.1")
    settings = ", ".join(f"{k}={v:g} s" for k, v in OVERRIDES.items())
    print(f"(profile local with {settings}; `make demo` reruns it)")
    demo: Demo | None = None

    def on_line(agent: AgentProcess, line: str) -> None:
        if demo is not None:
            demo.on_line(agent, line)

    async with open_local_cluster(profile="local", overrides=OVERRIDES, on_line=on_line) as cluster:
        demo = Demo(cluster, config)
        with trio.fail_after(90):
            for step in steps:
                await step(demo)
    print(f"\ndone in {trio.current_time() - demo.started:.1f} s.")


def main() -> int:
    """``make demo``: run the demo; exit status 130 when interrupted."""
    try:
        trio.run(run)
    except KeyboardInterrupt:
        print("\ninterrupted; every agent was stopped.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
