"""The live dashboard in a real headless browser (Debian's chromium and chromedriver,
driven by selenium): it renders the members and updates when one is killed.  Screenshots
go to ``$SWIMACTORS_ARTIFACTS`` (default: the test's temporary directory)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import trio

import swimactors
from swimactors.agent.cluster import open_local_cluster, wait_until
from swimactors.agent.control import AgentControl
from swimactors.agent.dashboard import snapshot
from swimactors.agent.handlers import EventHandlers
from swimactors.agent.http import http_get
from swimactors.membership.types import format_address
from tests.network.fast import CONFIG, OVERRIDES

pytestmark = pytest.mark.network
DOWN_BOUND = CONFIG.suspicion_timeouts(3)[1] + 3 * CONFIG.probe_interval + 5.0
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def test_stream_sends_snapshots_as_server_sent_events() -> None:
    with trio.fail_after(30):
        async with open_local_cluster(overrides=OVERRIDES) as cluster:
            a = await cluster.start("a")
            status, page = await http_get(a.http, "/ui")
            assert status == 200 and b"EventSource" in page
            stream = await trio.open_tcp_stream(*a.http)
            await stream.send_all(b"GET /v1/stream HTTP/1.1\r\nHost: a\r\n\r\n")
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
            a = await cluster.start("a")
            await cluster.start("b", join=[a.gossip])
            await cluster.start("c", join=[a.gossip])
            browser = await trio.to_thread.run_sync(_browser)
            try:
                url = f"http://{format_address(a.http)}/ui"
                await trio.to_thread.run_sync(browser.get, url)

                def statuses() -> dict[str, str]:  # read in one go: the rows are redrawn
                    rows = browser.execute_script(
                        "return Array.from(document.querySelectorAll('#members tbody tr'))"
                        ".map(r => [r.cells[0].innerText, r.cells[1].innerText]);"
                    )
                    return {name: status for name, status in rows}

                async def shows(expected: dict[str, str]) -> bool:
                    return await trio.to_thread.run_sync(statuses) == expected

                up = {"a": "up", "b": "up", "c": "up"}
                assert await wait_until(lambda: shows(up), 20, interval=0.2) is not None
                before = await trio.to_thread.run_sync(browser.get_screenshot_as_png)
                (artifacts / "dashboard-before.png").write_bytes(before)
                cluster.kill("c")
                assert (
                    await wait_until(lambda: shows({**up, "c": "down"}), DOWN_BOUND, interval=0.2)
                    is not None
                ), await trio.to_thread.run_sync(statuses)
                after = await trio.to_thread.run_sync(browser.get_screenshot_as_png)
                (artifacts / "dashboard-after.png").write_bytes(after)
                timeline = await trio.to_thread.run_sync(
                    lambda: browser.find_element("id", "timeline").text
                )
                assert "member-failed" in timeline
            finally:
                await trio.to_thread.run_sync(browser.quit)
    for shot in (before, after):
        assert shot.startswith(b"\x89PNG") and len(shot) > 10_000
    assert before != after  # the page changed on screen, not only in the DOM


async def test_snapshot_lists_groups_apart_from_names() -> None:
    async with swimactors.open_system("g", bind="127.0.0.1:0", config=CONFIG) as system:
        control = AgentControl(system, EventHandlers((), "g"))
        worker = await system.spawn(Idle, name="worker", public=True)
        await system.join_group("workers", worker)
        with trio.fail_after(10):
            while not system.group_members("workers"):
                await trio.sleep(0.01)
        view = snapshot(control)
    assert view["groups"] == [{"name": "workers", "members": ["g"]}]
    assert view["actors"] == [{"name": "worker", "node": "g"}]


class Idle(swimactors.Actor):
    async def receive(self, msg: object, ctx: swimactors.Context) -> None:
        pass
