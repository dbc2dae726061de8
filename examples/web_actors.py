"""The actors behind the web example (``examples/web.py``): what each agent runs with
``--app examples.web_actors:setup``: the shared counter (the key-value store needs
nothing: it is the distributed data)."""

from __future__ import annotations

import swimactors

from . import counter, kv


async def setup(system: swimactors.System) -> None:
    await counter.setup(system)
    await kv.setup(system)
