"""A cluster member in its own OS process on the blocking front, for the fronts' tests.

``python -m tests.fronts.peer NAME SEED...`` prints ``MemberUp name`` for members it already
knows and ``address HOST:PORT`` once up, then one line per membership event (``Kind name``)
until killed or its stdin closes.
"""

from __future__ import annotations

import sys
import threading

from swimactors.membership import MemberEvent, Status, start_node
from swimactors.membership.types import format_address

from .timing import CONFIG


def main(name: str, seeds: list[str]) -> None:
    with start_node(name=name, bind="127.0.0.1:0", seeds=seeds, config=CONFIG) as node:
        events = node.events()
        for member in node.members():  # joined before the subscription: no event for these
            if member.name != name and member.status is Status.UP:
                print("MemberUp", member.name, flush=True)
        print("address", format_address(node.address), flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), events.close()), daemon=True).start()
        for event in events:
            if isinstance(event, MemberEvent):
                print(type(event).__name__, event.member.name, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
