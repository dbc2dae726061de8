"""The python examples in README.md and docs/*.md: each compiles, imports only names that
exist, and runs as printed (loopback ports picked for the test, endless loops bounded, the
names an excerpt assumes given), so an example cannot rot unnoticed."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import importlib.util
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

import swimactors
from swimactors import Actor, blocking, message
from swimactors.agent.http import http_get

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks() -> list[tuple[str, str]]:
    """``(where, source)`` of every python block, ``where`` as ``docs/guide.md:314``."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"```python\n(.*?)```", text, re.S):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", match[1]))
    return found


def block(page: str, containing: str) -> str:
    """The one python block of ``page`` that contains ``containing``."""
    matches = [src for where, src in blocks() if where.startswith(page + ":") and containing in src]
    assert len(matches) == 1, f"one block of {page} contains {containing!r}"
    return matches[0]


RUN = {
    "README.md": ["swimactors.open_system(", "membership.open_node("],
    "docs/actors.md": [
        "open_system() as system",
        "system.events()",
        "as_actor",
        "join_group",
        "class Ticker",
        "class Search",
        "swimactors.by_error(",
        "class Lookup",
        "class Session",
    ],
    "docs/configuration.md": ["Config.lan().replace"],
    "docs/ddata.md": ["DataStore(", "system.data.update"],
    "docs/grains.md": ["class Account"],
    "docs/guide.md": [
        "membership_router",
        "from swimactors.membership import Config, MemberDown, encode_meta, open_node",
        "start_node(",
        "blocking.open_system(",
        "aio.open_node(",
        "aio.open_system(",
        "config=Config.lan()\n) as system",
        "wait_serving",  # tests/operate/test_guide_snippets.py
    ],
    "docs/registry.md": ["RegistryDelegate("],
    "docs/security.md": ["generate_key()", "TlsConfig(cert="],
    "docs/simulation.md": ["World(seed=7", "open_sim_node(", "deterministic_scheduling(seed)"],
}
"""Each page's examples, by a line each contains; each is run by a test below."""


def test_every_example_is_run_here() -> None:
    for where, src in blocks():
        page = where.partition(":")[0]
        assert any(marker in src for marker in RUN.get(page, [])), f"{where} is run nowhere"
    for page, markers in RUN.items():
        for marker in markers:
            block(page, marker)


def imported(tree: ast.AST) -> list[tuple[str, str | None]]:
    """``(module, name)`` of each import (``name`` None for ``import module``)."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
    return found


@pytest.mark.parametrize(("where", "src"), blocks(), ids=[where for where, _ in blocks()])
def test_every_example_compiles_and_its_imports_exist(where: str, src: str) -> None:
    tree = compile(src, where, "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    for module, name in imported(tree):
        loaded = importlib.import_module(module)
        if name is not None and not hasattr(loaded, name):
            importlib.import_module(f"{module}.{name}")  # a submodule
        if name is not None and module == "swimactors" and not _is_module(f"swimactors.{name}"):
            assert name in swimactors.__all__, f"{where}: swimactors.{name} is not public"


def _is_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


_EXAMPLES = itertools.count()


def run_on(src: str, ns: dict[str, Any]) -> Any:
    """Execute ``src`` in ``ns``: a coroutine to await when it has a top-level await.
    Each example is a module of its own, so its messages get wire tags of their own."""
    ns.setdefault("__name__", f"example{next(_EXAMPLES)}")
    code = compile(src, "<example>", "exec", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    return eval(code, ns)


async def run(src: str, ns: dict[str, Any]) -> dict[str, Any]:
    pending = run_on(src, ns)
    if pending is not None:
        await pending
    return ns


def split(src: str) -> tuple[str, str]:
    """The example's imports and definitions, and the statements that use them."""
    tree = ast.parse(src.replace("await ", "AWAIT__ * "))  # parse top-level awaits
    kinds = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    first_use = next((n.lineno for n in tree.body if not isinstance(n, kinds)), None)
    if first_use is None:
        return src, ""
    lines = src.splitlines(keepends=True)
    return "".join(lines[: first_use - 1]), "".join(lines[first_use - 1 :])


LOOPBACK = re.compile(r'"(?:127\.0\.0\.1|10\.0\.0\.1):\d+"')


def on_loopback(src: str, seeds: str = "") -> str:
    """Bind to a free loopback port; join ``seeds`` instead of the example's."""
    src = re.sub(r"seeds=\[[^\]]*\]", f"seeds=[{seeds!r}]" if seeds else "seeds=[]", src)
    return LOOPBACK.sub('"127.0.0.1:0"', src)


def patient(src: str) -> str:
    """The example's timeouts raised to 60 s: a loaded test machine is slower than theirs."""
    return re.sub(r"timeout=\d+(?:\.\d+)?", "timeout=60", src)


# -- names the excerpts assume --------------------------------------------------------


@message
class Increment:
    n: int = 1


@message
class Add:
    n: int


@message
class Get: ...


class Counter(Actor):
    def __init__(self) -> None:
        self.value = 0

    async def receive(self, msg: Any, ctx: swimactors.Context) -> int | None:
        match msg:
            case Increment(n=n) | Add(n=n):
                self.value += n
                return self.value
            case Get():
                return self.value
        return None


ASSUMED = {"Counter": Counter, "Increment": Increment, "Add": Add, "Get": Get}


class Printed:
    """An example's ``print``: keeps the lines, ``done`` once ``lines`` have come."""

    def __init__(self, lines: int) -> None:
        self.expected = lines
        self.lines: list[str] = []
        self.done = trio.Event()

    def __call__(self, *args: object) -> None:
        self.lines.append(" ".join(map(str, args)))
        if len(self.lines) >= self.expected:
            self.done.set()


# -- README.md ------------------------------------------------------------------------


@pytest.mark.network
async def test_readme_actors_across_nodes() -> None:
    src = on_loopback(block("README.md", "swimactors.open_system(")).replace("trio.run(main)", "")
    ns = await run(src, {})
    with trio.fail_after(30):
        await ns["main"]()


@pytest.mark.network
async def test_readme_membership_alone() -> None:
    src = on_loopback(block("README.md", "membership.open_node("))
    printed = Printed(lines=1)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, src, {"print": printed})
            await printed.done.wait()  # then it waits for events for ever
            nursery.cancel_scope.cancel()
    assert printed.lines[0].startswith("a ('127.0.0.1', ")


# -- docs/actors.md -------------------------------------------------------------------


async def test_actors_quick_start() -> None:
    with trio.fail_after(30):
        await run(block("docs/actors.md", "open_system() as system"), {})


async def test_actors_events_end_when_the_system_closes() -> None:
    src = block("docs/actors.md", "system.events()")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, swimactors.open_system() as system:
            nursery.start_soon(run, src, {"system": system, "swimactors": swimactors})
            await trio.sleep(0)


async def test_actors_as_actor_and_proxy() -> None:
    with trio.fail_after(30):
        async with swimactors.open_system() as system:
            ns = await run(
                block("docs/actors.md", "as_actor"), {"system": system, "swimactors": swimactors}
            )
            assert await ns["counter"].get() == 5


async def test_actors_groups_and_topics() -> None:
    @message
    class News:
        n: int

    src = block("docs/actors.md", "join_group")
    with trio.fail_after(30):
        async with swimactors.open_system() as system:
            ref = await system.spawn(Counter)
            await run(src, {"system": system, "ref": ref, "News": News})


async def test_actors_stream_into_an_actor() -> None:
    done = trio.Event()

    async def prices() -> Any:
        try:
            yield 1
        finally:
            done.set()

    ns = await run(block("docs/actors.md", "class Ticker"), dict(Actor=Actor, prices=prices))
    ns["StreamFinished"] = swimactors.StreamFinished
    with trio.fail_after(30):
        async with swimactors.open_system() as system:
            await system.spawn(ns["Ticker"])
            await done.wait()


async def test_actors_pipe_to() -> None:
    @message
    class Find:
        key: str

    class Lookup(Actor):
        """The docs' receive, with the rows and an ask to read them added."""

        def __init__(self) -> None:
            self.rows: list[str] = []

        async def receive(self, msg: Any, ctx: swimactors.Context) -> Any:
            if msg == "rows":
                return self.rows
            return await documented(self, msg, ctx)

    async def fetch_row(key: str) -> str:
        await trio.lowlevel.checkpoint()
        if key == "missing":
            raise KeyError(key)
        return f"row {key}"

    ns = await run(
        block("docs/actors.md", "class Lookup"),
        {"Actor": Actor, "Find": Find, "PipeFailed": swimactors.PipeFailed, "fetch_row": fetch_row},
    )
    documented = ns["Lookup"].receive
    with trio.fail_after(30):
        async with swimactors.open_system() as system:
            ref = await system.spawn(Lookup, supervision=swimactors.stop())
            await ref.tell(Find("a"))
            await trio.testing.wait_all_tasks_blocked()
            assert await ref.ask("rows") == ["row a"]
            await ref.tell(Find("missing"))
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(swimactors.ActorStopped):
                await ref.ask("rows")  # the KeyError was raised in receive: stopped


async def test_actors_receive_timeout(autojump_clock: trio.testing.MockClock) -> None:
    ns = await run(
        block("docs/actors.md", "class Session"),
        {"Actor": Actor, "ReceiveTimeout": swimactors.ReceiveTimeout},
    )
    async with swimactors.open_system() as system:
        start = trio.current_time()
        await system.spawn(ns["Session"], name="session")
        await trio.sleep_until(start + 299.0)
        assert await system.find("session") is not None
        await trio.sleep_until(start + 301.0)
        assert await system.find("session") is None


async def test_actors_streamed_reply() -> None:
    @message
    class Query:
        text: str

    class Searching(Actor):
        async def results(self, text: str) -> Any:
            for n in range(3):
                yield f"{text} {n}"

    define, use = split(block("docs/actors.md", "class Search"))
    ns = await run(define, {"Actor": Searching, "Query": Query})
    with trio.fail_after(30):
        async with swimactors.open_system() as system:
            ns["ref"] = await system.spawn(ns["Search"])
            await run(use.replace("    ...", "    hits.append(hit)"), ns | {"hits": (hits := [])})
    assert hits == ["cats 0", "cats 1", "cats 2"]


async def test_actors_supervision_by_error() -> None:
    class Fetcher(Actor):
        """Counts its messages; a bad one raises ValueError, an unreachable one OSError."""

        def __init__(self) -> None:
            self.seen = 0

        async def receive(self, msg: Any, ctx: swimactors.Context) -> Any:
            self.seen += 1
            if msg == "bad":
                raise ValueError(msg)
            if msg == "down":
                raise ConnectionError(msg)
            return self.seen

    with trio.fail_after(30):
        async with swimactors.open_system() as system:
            ns = await run(
                block("docs/actors.md", "swimactors.by_error("),
                {
                    "swimactors": swimactors,
                    "system": system,
                    "Fetcher": Fetcher,
                },
            )
            fetcher = ns["fetcher"]
            assert await fetcher.ask("ok") == 1
            with pytest.raises(swimactors.ActorFailed):
                await fetcher.ask("bad")
            assert await fetcher.ask("ok") == 3  # resumed: the same instance
            with pytest.raises(swimactors.ActorFailed):
                await fetcher.ask("down")
            assert await fetcher.ask("ok") == 1  # restarted: a fresh one
    assert system.stats.restarts == 1


# -- docs/configuration.md, docs/security.md ------------------------------------------


async def test_configuration_and_security_keys() -> None:
    ns = await run(block("docs/configuration.md", "Config.lan().replace"), {})
    assert ns["config"].probe_interval == 0.5
    ns = await run(block("docs/security.md", "generate_key()"), {})
    assert ns["config"].keyring is not None


@pytest.mark.network
async def test_security_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    issued = ca.issue_cert("a", "127.0.0.1")
    issued.private_key_pem.write_to_path(tmp_path / "a.key")
    issued.cert_chain_pems[0].write_to_path(tmp_path / "a.crt")
    monkeypatch.chdir(tmp_path)
    src = on_loopback(block("docs/security.md", "TlsConfig(cert="))
    key = swimactors.security.generate_key()
    with trio.fail_after(30):
        await run(src, {"swimactors": swimactors, "key": key})


# -- docs/ddata.md, docs/grains.md, docs/registry.md ----------------------------------


async def test_ddata_store() -> None:
    from swimactors.ddata import DataStore, GCounter

    ns = {"DataStore": DataStore, "GCounter": GCounter, "incarnation": 1}
    ns["peer"] = DataStore("b", 2)
    ns["time"] = __import__("time")
    await run(block("docs/ddata.md", "DataStore("), ns)
    assert ns["peer"].value("hits") == 5


@pytest.mark.network
async def test_ddata_in_a_system() -> None:
    with trio.fail_after(30):
        async with swimactors.open_system("a", bind="127.0.0.1:0") as system:
            ref = await system.spawn(Counter)
            ns = await run(
                block("docs/ddata.md", "system.data.update"), {"system": system, "ref": ref}
            )
    assert ns["value"] == {"apples": 3}


@pytest.mark.network
async def test_grains() -> None:
    with trio.fail_after(30):
        async with swimactors.open_system("a", bind="127.0.0.1:0") as system:
            await run(block("docs/grains.md", "class Account"), {"system": system})


async def test_registry_on_a_core() -> None:
    ns = await run(block("docs/registry.md", "RegistryDelegate("), {"start_incarnation": 1})
    assert ns["names"].registry.lookup("counter") is None


# -- docs/guide.md --------------------------------------------------------------------


@pytest.mark.network
async def test_guide_adding_routes() -> None:
    src = block("docs/guide.md", "membership_router").replace("8946", "0").replace("[...]", "[]")
    src = src.replace("await nursery.start(", "address = await nursery.start(")
    with trio.fail_after(30):
        async with (
            swimactors.membership.open_node(name="a", bind="127.0.0.1:0") as node,
            trio.open_nursery() as nursery,
        ):
            ns = await run(src, {"node": node, "nursery": nursery})
            status, body = await http_get(ns["address"], "/v1/actors")
            nursery.cancel_scope.cancel()
    assert (status, body.strip()) == (200, b"[]")


@pytest.mark.network
async def test_guide_open_node() -> None:
    src = on_loopback(block("docs/guide.md", "encode_meta, open_node")).replace(
        "trio.run(main)", ""
    )
    printed = Printed(lines=2)
    ns = await run(src, {"print": printed})
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ns["main"])
            await printed.done.wait()  # then it waits for events for ever
            nursery.cancel_scope.cancel()
    assert printed.lines[1] == "a Status.UP"


@pytest.mark.network
def test_guide_start_node(capsys: pytest.CaptureFixture[str]) -> None:
    src = on_loopback(block("docs/guide.md", "start_node(")).replace("timeout=30", "timeout=0.2")
    assert run_on(src, {}) is None  # no top-level await: blocking code
    assert "['a']" in capsys.readouterr().out


def blocking_peer(test: Callable[[str], None]) -> None:
    """Run ``test(address)`` beside a system holding a public ``counter`` at ``address``."""

    async def address(system: swimactors.System) -> str:
        assert system.cluster is not None
        host, port = system.cluster.node.address
        return f"{host}:{port}"

    with blocking.open_system("peer", bind="127.0.0.1:0") as peer:
        peer.spawn(Counter, name="counter", public=True)
        test(peer.run(address))


@pytest.mark.network
def test_guide_blocking_system() -> None:
    def test(address: str) -> None:
        src = patient(on_loopback(block("docs/guide.md", "blocking.open_system("), seeds=address))
        ns = dict(ASSUMED)
        assert run_on(src, ns) is None
        assert ns["total"] == 5

    blocking_peer(test)


@pytest.mark.network
def test_guide_asyncio_node() -> None:
    src = on_loopback(block("docs/guide.md", "aio.open_node(")).replace("asyncio.run(main())", "")
    lines: list[str] = []
    ns: dict[str, Any] = {"print": lambda *args: lines.append(" ".join(map(str, args)))}
    assert run_on(src, ns) is None

    async def until_printed() -> None:
        task = asyncio.create_task(ns["main"]())
        async with asyncio.timeout(30):
            while not lines and not task.done():
                await asyncio.sleep(0.01)
        task.cancel()  # it waits for events for ever
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(until_printed())
    assert lines[0].endswith("['a']")


@pytest.mark.network
def test_guide_asyncio_system() -> None:
    def test(address: str) -> None:
        src = patient(on_loopback(block("docs/guide.md", "aio.open_system("), seeds=address))
        ns = dict(ASSUMED)
        asyncio.run(asyncio.wait_for(run_on(src, ns), 120))
        assert ns["total"] == 5

    blocking_peer(test)


@pytest.mark.network
async def test_guide_cluster_actors() -> None:
    src = patient(on_loopback(block("docs/guide.md", "config=Config.lan()\n) as system")))
    with trio.fail_after(120):
        ns = await run(src, dict(ASSUMED))
    assert ns["total"] == 5


# -- docs/simulation.md ---------------------------------------------------------------


def test_simulation_world(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_on(block("docs/simulation.md", "World(seed=7"), {}) is None
    assert "'node': 'n7'" in capsys.readouterr().out


def test_simulation_trio_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_on(block("docs/simulation.md", "open_sim_node("), {}) is None
    assert "status=<Status.DOWN: 'down'>" in capsys.readouterr().out


def test_simulation_deterministic_scheduling() -> None:
    from swimactors.sim.trio_engine import SimNet, deterministic_scheduling

    async def app(net: SimNet) -> None:
        await trio.sleep(1)

    ns = {"deterministic_scheduling": deterministic_scheduling, "trio": trio, "app": app}
    ns |= {"net": SimNet(seed=1), "seed": 1}
    assert (
        run_on(
            "import trio.testing\n" + block("docs/simulation.md", "deterministic_scheduling(seed)"),
            ns,
        )
        is None
    )
