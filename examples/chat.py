"""A chat room that survives its node: the distributed chat of "actors over TCP".

One room actor (the name ``"room"``) keeps the sessions that joined and broadcasts every
line to all of them, wherever they run: a session's ref travels inside ``Join`` and comes
back as a working remote ref.  The room watches each session (a session's node crashing
tells the room, which tells the others); each session watches the room.  With a
split-brain rule the room is a cluster singleton: kill its node and every session is told
(``Terminated``), a surviving node starts the room again, and the sessions join the new
room by themselves.

Run it on a laptop (each line in its own terminal)::

    swimactors agent --name a --bind 127.0.0.1:7001 --profile local --split-brain keep-majority \\
        --app examples.chat:setup
    swimactors agent --name b --bind 127.0.0.1:7002 --profile local --split-brain keep-majority \\
        --join 127.0.0.1:7001 --app examples.chat:setup
    (and c, like b, on 127.0.0.1:7003)
    python -m examples.chat --join 127.0.0.1:7002 --user alice     # type lines; Ctrl-D quits
    python -m examples.chat --join 127.0.0.1:7003 --user bob

Then ``kill -9`` the agent holding the room (the first one): both users see the room
lost and, a few seconds later, rejoined on another node.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import trio

import swimactors
from swimactors import Actor, ActorRef, Context, Terminated, message
from swimactors.membership import Config
from swimactors.quorum import keep_majority

from .client import run_client

REJOIN_EVERY = 0.25
"""Seconds between a session's attempts to find the room again."""
KEEP_LINES = 1000
"""Lines a session remembers (answered to ``"lines"``)."""


@message("examples.chat.Join")
class Join:
    user: str
    session: ActorRef


@message("examples.chat.Say")
class Say:
    user: str
    text: str


@message("examples.chat.Line")
class Line:
    """What a session shows: ``user`` said ``text`` (user "*" is the room itself)."""

    user: str
    text: str


@message("examples.chat.InRoom")
class InRoom:
    """A session's answer to ``"room"``: the room it is in (None: none right now) and who
    was there when it joined."""

    room: ActorRef | None
    present: list[str]


class Room(Actor):
    def __init__(self) -> None:
        self.sessions: dict[ActorRef, str] = {}

    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Join(user=user, session=session):
                self.sessions[session] = user
                ctx.watch(session)
                await self.broadcast(Line("*", f"{user} joined"))
                return sorted(self.sessions.values())
            case Say(user=user, text=text):
                await self.broadcast(Line(user, text))
            case Terminated(ref=session, reason=reason):
                gone = self.sessions.pop(session, None)
                if gone is not None:
                    why = "left" if reason is None else f"was lost ({reason})"
                    await self.broadcast(Line("*", f"{gone} {why}"))
        return None

    async def broadcast(self, line: Line) -> None:
        for session in list(self.sessions):
            await session.tell(line)


class Session(Actor):
    """One user's end: joins the room, shows its lines, forwards what the user says, and
    joins the room again (wherever it is started next) when it is lost."""

    def __init__(self, user: str, show: Callable[[Line], None]) -> None:
        self.user = user
        self.show = show
        self.room: ActorRef | None = None
        self.present: list[str] = []
        self.lost: set[ActorRef] = set()
        self.lines: list[str] = []

    async def on_start(self) -> None:
        await self.join(self.context)

    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Line():
                self.note(msg)
            case Say() if self.room is not None:
                await self.room.tell(msg)
            case Say():
                self.note(Line("*", "not in a room right now; try again in a moment"))
            case Terminated(ref=room, reason=reason) if room == self.room:
                self.room = None
                self.lost.add(room)
                self.note(Line("*", f"the room was lost ({reason}); rejoining"))
                ctx.schedule_once(REJOIN_EVERY, "join")
            case "join":
                await self.join(ctx)
            case "room":
                return InRoom(self.room, self.present)
            case "lines":
                return self.lines
            case ["sleep", seconds]:  # lets a test hold an ask in flight
                await trio.sleep(seconds)
        return None

    def note(self, line: Line) -> None:
        """Remember (the last KEEP_LINES) and show a line."""
        self.lines = [*self.lines[-KEEP_LINES + 1 :], f"{line.user}: {line.text}"]
        self.show(line)

    async def join(self, ctx: Context) -> None:
        """Join the room if it is up (and not one already lost), else try again soon."""
        try:
            room = await ctx.system.find("room")
            if room is None or room in self.lost:
                raise LookupError("no room yet")
            ctx.watch(room)
            self.present = await room.ask(Join(self.user, ctx.self_ref))
            self.room = room
        except (swimactors.SwimactorsError, LookupError):  # not yet; a settling cluster
            ctx.schedule_once(REJOIN_EVERY, "join")


async def join(
    system: swimactors.System, user: str, show: Callable[[Line], None]
) -> tuple[ActorRef, ActorRef, list[str]]:
    """Start a session for ``user`` and wait until it is in the room: (room, session,
    users present when it joined)."""
    session = await system.spawn(Session(user, show))
    with trio.fail_after(10):
        while (state := await session.ask("room")).room is None:
            await trio.sleep(REJOIN_EVERY)
    return state.room, session, state.present


def printer(user: str) -> Callable[[Line], None]:
    return lambda line: print(f"[{user}] <{line.user}> {line.text}", flush=True)


def bot(user: str) -> Session:
    """A session that lives on an agent (``spawn_on(node, "chat.bot", [user])``)."""
    return Session(user, printer(user))


async def setup(system: swimactors.System) -> None:
    """Let this node start the room (and bots); start the room unless a node holds it (a
    singleton with a split-brain rule, else a plain public actor that does not fail over)."""
    system.register_spawnable("chat.room", Room)
    system.register_spawnable("chat.bot", bot)
    try:
        await system.wait_for("room", timeout=2.0)
    except TimeoutError:
        if system.split_brain is None:
            await system.spawn(Room, name="room", public=True)
        else:
            await system.spawn("chat.room", name="room", singleton=True)


async def main(seed: str, user: str) -> None:
    async with swimactors.open_system(  # one member per user, not one per run
        f"chat-{user}",
        bind="127.0.0.1:0",
        seeds=[seed],
        config=Config.local(),
        split_brain=keep_majority(),  # the agents' rule: a member must agree with them
        client=True,  # peers forget this member soon after it quits
    ) as system:
        await system.wait_serving(timeout=10.0)
        _, session, present = await join(
            system, user, lambda line: print(f"<{line.user}> {line.text}", flush=True)
        )
        print(f"in the room: {', '.join(present)}", flush=True)
        stdin = trio.wrap_file(sys.stdin)
        async for text in stdin:
            await session.tell(Say(user, text.rstrip("\n")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--join", required=True, help="host:port of any agent")
    parser.add_argument("--user", required=True)
    args = parser.parse_args()
    sys.exit(run_client("chat", main, args.join, args.user))
