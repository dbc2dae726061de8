"""The guide's split-brain snippet runs as printed (with a port picked for the test)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

import swimactors
from swimactors import Actor, QuorumLost
from swimactors.quorum import static_quorum

GUIDE = Path(__file__).parents[2] / "docs" / "guide.md"


class Counter(Actor):
    def __init__(self) -> None:
        self.value = 0

    async def receive(self, msg: object, ctx: swimactors.Context) -> int:
        self.value += 1
        return self.value


def snippet(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    return next(block for block in blocks if containing in block)


@pytest.mark.network
async def test_the_split_brain_snippet_runs(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"Counter": Counter}
    exec(snippet("wait_serving"), namespace)
    with trio.fail_after(60):
        await namespace["main"]("127.0.0.1:0")  # type: ignore[operator]
    assert capsys.readouterr().out.strip() in ("ok", "pending")


@pytest.mark.network
async def test_wait_serving_says_why_it_gave_up() -> None:
    async with swimactors.open_system(
        "alone", bind="127.0.0.1:0", split_brain=static_quorum(3)
    ) as system:
        with pytest.raises(QuorumLost, match=r"did not serve within 0\.5 s"):
            await system.wait_serving(timeout=0.5)
    async with swimactors.open_system("plain", bind="127.0.0.1:0") as system:
        await system.wait_serving(timeout=0)  # no rule: serving at once
