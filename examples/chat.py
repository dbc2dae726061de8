"""A chat room: one room actor, sessions on any node, survivors told when a node dies.

The room (the name ``"room"``) keeps the sessions that joined and broadcasts every line
to all of them, wherever they run: a session ref travels inside the ``Join`` message and
comes back as a working remote ref.  The room watches each session, so when a session's
node crashes the room hears ``Terminated`` (on the node's DOWN) and tells the others.

Run it on a laptop::

    swimactors agent --name a --bind 127.0.0.1:7001 --profile local --app examples.chat:setup
    python -m examples.chat --join 127.0.0.1:7001 --user alice     # type lines; Ctrl-D quits
    python -m examples.chat --join 127.0.0.1:7001 --user bob
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
    """One user's end: shows every line the room sends."""

    def __init__(self, show: Callable[[Line], None]) -> None:
        self.show = show

    def receive(self, msg: Any, ctx: Context) -> None:
        if isinstance(msg, Line):
            self.show(msg)


class Bot(Actor):
    """A session that lives on an agent (started with ``spawn_on``): joins, prints lines."""

    def __init__(self, user: str) -> None:
        self.user = user

    async def on_start(self) -> None:
        room = await self.context.system.wait_for("room", timeout=10.0)
        await room.tell(Join(self.user, self.context.self_ref))

    async def receive(self, msg: Any, ctx: Context) -> Any:
        match msg:
            case Line(user=user, text=text):
                print(f"[{self.user}] <{user}> {text}", flush=True)
            case ["sleep", seconds]:
                await trio.sleep(seconds)
        return None


async def setup(system: swimactors.System) -> None:
    """Hold the room unless a node that started earlier already does; allow bots here."""
    system.register_spawnable("chat.bot", Bot)
    try:
        await system.wait_for("room", timeout=2.0)
    except TimeoutError:
        await system.spawn(Room, name="room", public=True)


async def join(
    system: swimactors.System, user: str, show: Callable[[Line], None]
) -> tuple[ActorRef, ActorRef, list[str]]:
    """Start a session for ``user`` and join the room: (room, session, users present)."""
    room = await system.wait_for("room", timeout=10.0)
    session = await system.spawn(Session(show))
    present = await room.ask(Join(user, session))
    return room, session, present


async def main(seed: str, user: str) -> None:
    async with swimactors.open_system(  # one member per user, not one per run
        f"chat-{user}", bind="127.0.0.1:0", seeds=[seed], config=Config.local()
    ) as system:
        room, _, present = await join(
            system, user, lambda line: print(f"<{line.user}> {line.text}", flush=True)
        )
        print(f"in the room: {', '.join(present)}", flush=True)
        stdin = trio.wrap_file(sys.stdin)
        async for text in stdin:
            await room.tell(Say(user, text.rstrip("\n")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--join", required=True, help="host:port of any agent")
    parser.add_argument("--user", required=True)
    args = parser.parse_args()
    trio.run(main, args.join, args.user)
