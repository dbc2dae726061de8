"""starved: starved members (``World.starve``; ``--starvation cpu``: inputs queue for a
slow CPU that stalls 0.5-2.5 s at random; ``late-reader``: every packet read 0.5-2.5 s
late while timers fire on time, kinship's and the Lifeguard paper's slow node) and, 60 s
in, a healthy member crashes (``--crashes 0``: none).  The crash must reach every node as
DOWN in about the time it takes without starved members, and no healthy member may be
declared DOWN; without a crash, the figure is how many members are falsely declared
DOWN (Lifeguard's claim), counted as kinship does: once per (member, incarnation)."""

from __future__ import annotations

import functools
from typing import Any

from swimactors.membership.types import MemberDown, MemberEvent
from swimactors.sim import Starvation

from ..common import Params, Progress, Run, crash_fields
from ..scenario import Scenario, require

CRASH_AFTER_S = 60.0
MODELS = {"cpu": Starvation, "late-reader": Starvation.late_reader}


def run(params: Params, progress: Progress) -> dict[str, Any]:
    sim = Run(params, progress, loss=0.01)
    sim.start_cluster()
    world = sim.world
    names = list(world.nodes)
    starved = names[1 : 1 + (1 if params.starved is None else params.starved)]
    for name in starved:
        world.starve(name, MODELS[params.starvation]())
    crash_at = world.now + CRASH_AFTER_S
    sim.planned = crash_at + (params.duration or 60.0)
    victims = names[len(names) - params.crashes :] if params.crashes else []
    down: dict[str, float] = {}
    starved_deaths: list[tuple[float, str, str]] = []
    false_deaths: set[tuple[str, int]] = set()
    """(member, incarnation) declared DOWN by anyone while it ran: kinship's false death."""

    def observe(observer: str, event: MemberEvent) -> None:
        subject = event.member.name
        if not isinstance(event, MemberDown):
            return
        if subject in victims and world.now >= crash_at:
            down.setdefault(observer, world.now - crash_at)
            return
        false_deaths.add((subject, event.member.incarnation))
        if subject in starved and observer not in starved:
            starved_deaths.append((world.now, observer, subject))

    world.on_event(observe)
    for name in victims:
        world.at(crash_at, functools.partial(world.crash, name))
    sim.advance(sim.planned)
    healthy = [n for n in names if n not in starved and n not in victims]
    healthy_all_down = (
        max(down[n] for n in healthy) if victims and all(n in down for n in healthy) else None
    )
    fields = crash_fields(sim) if victims else {}
    return sim.report(
        starved=starved,
        starvation=params.starvation,
        crashed=victims,
        healthy_all_down_s=healthy_all_down,
        starved_false_deaths=len(starved_deaths),
        false_deaths_of_starved=sum(1 for name, _ in false_deaths if name in starved),
        false_deaths_of_healthy=sum(1 for name, _ in false_deaths if name not in starved),
        backlog_drops=world.dropped["backlog_full"],
        **fields,
    )


SCENARIO = Scenario(
    "starved",
    "starved members, a crash elsewhere: detected in time, no healthy member declared DOWN",
    run,
    20,
    (50, 100),
    require("all_down_s"),
)
