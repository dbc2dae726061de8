"""The live dashboard in a real headless browser (Debian's chromium and chromedriver,
driven by selenium): it renders the members and updates when one is killed.  Screenshots
go to ``$SWIMACTORS_ARTIFACTS`` (default: the test's temporary directory)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

import swimactors
from swimactors.agent.cluster import LocalCluster, open_local_cluster, wait_until
from swimactors.agent.control import AgentControl
from swimactors.agent.dashboard import snapshot
from swimactors.agent.handlers import EventHandlers
from swimactors.agent.http import http_get
from swimactors.membership.types import format_address
from tests.cluster.cluster_helpers import until
from tests.network.fast import CONFIG, OVERRIDES
from tests.operate.dashboard_app import Visits

pytestmark = pytest.mark.network
DOWN_BOUND = CONFIG.suspicion_timeouts(3)[1] + 3 * CONFIG.probe_interval + 5.0
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
APP = "tests.operate.dashboard_app:setup"
"""Each agent hosts the grain kind "visits" (one activation each) and joins "workers"."""


async def test_stream_sends_snapshots_as_server_sent_events() -> None:
    with trio.fail_after(30):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a")
            status, page = await http_get(a.http, "/ui")
            assert status == 200 and b"EventSource" in page
            stream = await trio.open_tcp_stream(*a.http)
            await stream.send_all(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while data.count(b"event: snapshot") < 2:  # the first at once, then per second
                data += await stream.receive_some(65536)
            await stream.aclose()
            head, _, body = data.partition(b"\r\n\r\n")
            assert b"text/event-stream" in head and b"chunked" in head.lower()
            line = next(x for x in body.split(b"\n") if x.startswith(b"data: "))
            snapshot = json.loads(line.removeprefix(b"data: "))
            assert [m["name"] for m in snapshot["members"]] == ["a"]
            assert snapshot["quorum"] == "off"


def _browser():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1100,800")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.mark.skipif(
    CHROMEDRIVER is None or CHROMIUM is None,
    reason="needs Debian's chromium and chromium-driver (make test installs them with apt-get)",
)
async def test_dashboard_in_a_headless_browser(tmp_path: Path) -> None:
    pytest.importorskip("selenium", reason="selenium is in the test extra")
    artifacts = Path(os.environ.get("SWIMACTORS_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    with trio.fail_after(90):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a", app=APP)
            await cluster.start("b", join=[a.gossip], app=APP)
            await cluster.start("c", join=[a.gossip], app=APP)
            seeds = [format_address(a.gossip)]
            browser = await trio.to_thread.run_sync(_browser)
            try:
                await trio.to_thread.run_sync(browser.get, f"http://{format_address(a.http)}/ui")
                async with swimactors.open_system(  # asks grains, so they activate
                    "asker", bind="127.0.0.1:0", seeds=seeds, config=CONFIG, client=True
                ) as asker:
                    await _activate_pages(asker)
                    before, after = await _watch(browser, cluster, artifacts)
            finally:
                await trio.to_thread.run_sync(browser.quit)
    for shot in (before, after):
        assert shot.startswith(b"\x89PNG") and len(shot) > 10_000
    assert before != after  # the page changed on screen, not only in the DOM


PAGES = ["page-1", "page-2", "page-3"]


async def _activate_pages(asker: swimactors.System) -> None:
    """Activate one grain per page once every agent hosts the kind (placement spreads them)."""
    await until(lambda: len(asker.grains.hosts("visits")) == 3, 20)
    for page in PAGES:
        assert await asker.grain("visits", page).ask("hit", timeout=10) == 1


async def _watch(browser: Any, cluster: LocalCluster, artifacts: Path) -> tuple[bytes, bytes]:
    """The page shows the members up, the grains and the group; then c down once killed.
    Returns the screenshots before and after."""

    def read(table: str) -> list[list[str]]:  # read in one go: the rows are redrawn
        rows: list[list[str]] = browser.execute_script(
            f"return Array.from(document.querySelectorAll('#{table} tbody tr'))"
            ".filter(r => r.offsetParent !== null)"  # shown: its section is not hidden
            ".map(r => Array.from(r.cells).map(c => c.innerText));"
        )
        return rows

    def statuses() -> dict[str, str]:
        return {row[0]: row[1] for row in read("members")}

    async def shows(expected: dict[str, str]) -> bool:
        return await trio.to_thread.run_sync(statuses) == expected

    def grains_and_groups() -> tuple[list[tuple[str, str]], list[list[str]]]:
        grains = sorted((kind, identity) for kind, identity, node in read("grains") if node)
        return grains, read("groups")

    async def shows_grains_and_groups() -> bool:
        grains, groups = await trio.to_thread.run_sync(grains_and_groups)
        return grains == [("visits", page) for page in PAGES] and groups == [["workers", "a, b, c"]]

    up = {"a": "up", "b": "up", "c": "up", "asker": "up"}
    assert await wait_until(lambda: shows(up), 20, interval=0.2) is not None
    shown = await wait_until(shows_grains_and_groups, 20, interval=0.2)
    assert shown is not None, await trio.to_thread.run_sync(grains_and_groups)
    before: bytes = await trio.to_thread.run_sync(browser.get_screenshot_as_png)
    (artifacts / "dashboard-before.png").write_bytes(before)
    cluster.kill("c")
    down = {**up, "c": "down"}
    assert await wait_until(lambda: shows(down), DOWN_BOUND, interval=0.2) is not None, (
        await trio.to_thread.run_sync(statuses)
    )

    async def group_without_c() -> bool:
        return await trio.to_thread.run_sync(read, "groups") == [["workers", "a, b"]]

    assert await wait_until(group_without_c, 10, interval=0.2) is not None  # pruned live
    after: bytes = await trio.to_thread.run_sync(browser.get_screenshot_as_png)
    (artifacts / "dashboard-after.png").write_bytes(after)
    timeline = await trio.to_thread.run_sync(lambda: browser.find_element("id", "timeline").text)
    assert "member-failed" in timeline
    return before, after


async def test_snapshot_lists_groups_and_grains_apart_from_names() -> None:
    async with swimactors.open_system("g", bind="127.0.0.1:0", config=CONFIG) as system:
        control = AgentControl(system, EventHandlers((), "g"))
        worker = await system.spawn(Idle, name="worker", public=True)
        await system.join_group("workers", worker)
        system.register_grain("visits", Visits)
        assert await system.grain("visits", "home").ask("hit") == 1
        with trio.fail_after(10):
            while not (system.group_members("workers") and snapshot(control)["grains"]):
                await trio.sleep(0.01)
        view = snapshot(control)
    assert view["groups"] == [{"name": "workers", "members": ["g"]}]
    assert view["grains"] == [{"kind": "visits", "identity": "home", "node": "g"}]
    assert view["grain_hosts"] == [{"kind": "visits", "nodes": ["g"]}]
    assert view["actors"] == [{"name": "worker", "node": "g"}]


class Idle(swimactors.Actor):
    async def receive(self, msg: object, ctx: swimactors.Context) -> None:
        pass
