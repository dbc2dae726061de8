"""A typed grain annotates its ``ctx`` with the public ``GrainContext``: mypy --strict
accepts what ``receive`` may use and refuses the activation's internals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import swimactors
from swimactors import ActorRef, Grain, GrainContext, message

ROOT = Path(__file__).parents[2]

TYPED_GRAIN = """
from typing import Any

from swimactors import ActorRef, Grain, GrainContext, System


class Account(Grain):
    async def receive(self, msg: Any, ctx: GrainContext) -> Any:
        me: ActorRef = ctx.self_ref
        system: System = ctx.system
        sender: ActorRef | None = ctx.sender
        identity: str = ctx.identity
        if msg == "stop":
            ctx.deactivate()
        return (identity, me, system.name, sender)
"""


def mypy_strict(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on ``source`` as a module of its own (run from the project, so the
    cache ``make lint`` left is reused)."""
    module = tmp_path / "typed_grain.py"
    module.write_text(source)
    command = [sys.executable, "-m", "mypy", "--strict", str(module)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_grain_annotating_its_ctx_passes_mypy_strict(tmp_path: Path) -> None:
    result = mypy_strict(tmp_path, TYPED_GRAIN)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_activation_s_internals_are_not_part_of_it(tmp_path: Path) -> None:
    source = TYPED_GRAIN + "\n\ndef peek(ctx: GrainContext) -> object:\n    return ctx.queue\n"
    result = mypy_strict(tmp_path, source)
    assert result.returncode == 1
    assert '"GrainContext" has no attribute "queue"' in result.stdout


@message
class Who:
    pass


class Typed(Grain):
    async def receive(self, msg: Any, ctx: GrainContext) -> Any:
        return [ctx.identity, ctx.self_ref.path, ctx.system.name, ctx.sender]


async def test_the_context_a_grain_gets_is_what_the_protocol_says() -> None:
    async with swimactors.open_system(name="a") as system:
        system.register_grain("typed", Typed)
        grain: ActorRef = system.grain("typed", "bob")
        identity, path, node, sender = await grain.ask(Who(), timeout=5)
        assert (identity, path, node, sender) == ("bob", "$grain/typed/bob", "a", None)
