"""The counter example across OS processes: three agents with a split-brain rule hold the
counter as a singleton; SIGKILL its node and it is re-created on a survivor with the
count it had; the example's own client prints the count, or one line on failure."""

from __future__ import annotations

import sys

import trio

import swimactors
from examples.counter import Counter
from swimactors import SplitBrainConfig
from swimactors.agent.cluster import open_local_cluster
from swimactors.membership.types import format_address
from swimactors.quorum import keep_majority

from .cluster_helpers import FAST, PROBES
from .test_agents_app import OVERRIDES

APP = "examples.counter:setup"
SPLIT_BRAIN = ["--split-brain", "keep-majority", "--stable-after", "5"]


async def test_the_counter_fails_over_with_its_count_when_its_node_is_killed() -> None:
    with trio.fail_after(120):
        async with open_local_cluster(profile="local", overrides=OVERRIDES | PROBES) as cluster:
            a = await cluster.start("a", app=APP, extra_args=SPLIT_BRAIN)
            b = await cluster.start("b", join=[a.gossip], app=APP, extra_args=SPLIT_BRAIN)
            await cluster.start("c", join=[a.gossip], app=APP, extra_args=SPLIT_BRAIN)
            async with swimactors.open_system(
                "client",
                bind="127.0.0.1:0",
                seeds=[format_address(a.gossip)],
                config=FAST.replace(**PROBES),
                split_brain=SplitBrainConfig(strategy=keep_majority(), stable_after=5.0),
            ) as client:
                await client.wait_serving(timeout=20)
                ref = await client.wait_for("counter", timeout=20)
                assert ref.node == "a"
                counter = client.proxy(ref, Counter)
                assert await counter.increment(5) == 5
                assert await counter.increment(2) == 7
                cluster.kill("a")
                start = trio.current_time()
                while (moved := await client.find("counter")) is None or moved.node == "a":
                    await trio.sleep(0.1)
                failover = trio.current_time() - start
                counter = client.proxy(moved, Counter)
                assert await counter.get() == 7  # acknowledged increments survived
                assert await counter.increment(1) == 8
                print(f"\ncounter re-created on {moved.node} {failover:.1f} s after the kill")
            seed = format_address(b.gossip)
            code, out, err = await _client(["--join", seed, "get"])
            assert (code, out.strip()) == (0, "8"), err
    code, out, err = await _client(["--join", "127.0.0.1:1", "get"])
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("counter: ") and "Traceback" not in err


async def _client(args: list[str]) -> tuple[int, str, str]:
    """Run the example's own client: (exit status, stdout, stderr)."""
    command = [sys.executable, "-m", "examples.counter", *args]
    with trio.fail_after(60):
        done = await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()
