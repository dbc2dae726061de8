"""docs/configuration.md names every configuration field with the code's default, and every
constant it cites has the value it states: a field added or a default changed without the
docs fails here."""

from __future__ import annotations

import argparse
import ast
import enum
import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import swimactors
from swimactors import membership, wire
from swimactors.agent.runner import AgentOptions
from swimactors.cluster.system import Environment, System
from swimactors.membership.transport import TransportLimits
from swimactors.security import Keyring, TlsConfig

ROOT = Path(__file__).parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def sections() -> dict[str, list[str]]:
    """Each heading of docs/configuration.md with the lines under it (to the next heading)."""
    found: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in CONFIGURATION.read_text().splitlines():
        if line.startswith("#"):
            lines = found.setdefault(line.lstrip("#").strip(), [])
        else:
            lines.append(line)
    return found


def section(heading: str) -> list[str]:
    matches = [lines for title, lines in sections().items() if heading in title]
    assert len(matches) == 1, f"one heading naming {heading!r} in docs/configuration.md"
    return matches[0]


def rows(heading: str) -> Iterator[list[str]]:
    """The cells of each table row under ``heading`` (the separator row left out)."""
    for line in section(heading):
        if line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line):
            yield [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def row(heading: str, name: str) -> list[str]:
    """The row whose first cell names ``name`` in backticks."""
    for cells in rows(heading):
        names = re.findall(r"`([a-z_]+)`", cells[0])
        if name in names:
            if len(names) > 1:  # `a` / `b` | 1 / 2: this name's share of each cell
                at = names.index(name)
                shares = [cell.split(" / ") for cell in cells[1:]]
                return [cells[0], *(s[at] if len(s) == len(names) else "" for s in shares)]
            return cells
    raise AssertionError(f"docs/configuration.md, {heading}: no row for `{name}`")


_UNITS = {"KiB": 1024, "MiB": 1024 * 1024}


def value(cell: str) -> Any:
    """The value a cell starts with: a literal, a number (``1,024``, ``4 MiB``), or its
    text up to a comment."""
    text = cell.replace("`", "").strip()
    if match := re.match(r"(None|True|False)\b", text):
        return {"None": None, "True": True, "False": False}[match[1]]
    if text.startswith("frozenset()"):
        return frozenset()
    if text.startswith("()"):
        return ()
    if text.startswith("{}"):
        return {}
    if match := re.match(r'(b?)"([^"]*)"', text):
        return match[2].encode() if match[1] else match[2]
    if match := re.match(r"(\d[\d,]*(?:\.\d+)?)(?:\s*(KiB|MiB))?", text):
        number = match[1].replace(",", "")
        scale = _UNITS.get(match[2] or "", 1)
        return float(number) * scale if "." in number else int(number) * scale
    return re.split(r" \(|: |; ", text)[0]


def same(documented: Any, default: Any) -> bool:
    if inspect.isbuiltin(default) or inspect.isfunction(default):  # clock=time.time
        return bool(documented == f"{default.__module__}.{default.__qualname__}")
    if isinstance(default, bool) or isinstance(documented, bool):
        return documented is default
    return bool(documented == default)


def check(heading: str, name: str, default: Any, column: int = 1, text: bool = False) -> None:
    cells = row(heading, name)
    shown = cells[column].replace("`", "") if text else value(cells[column])
    assert shown.startswith(default) if text else same(shown, default), (
        f"docs/configuration.md, {heading}: `{name}` is {cells[column]!r}, the code says "
        f"{default!r}"
    )


def test_membership_config_every_field_and_preset() -> None:
    presets = [membership.Config.lan(), membership.Config.wan(), membership.Config.local()]
    for field in attrs.fields(membership.Config):
        for column, preset in enumerate(presets, start=1):
            check("`swimactors.membership.Config`", field.name, getattr(preset, field.name), column)
    for column, preset in enumerate(presets, start=1):
        check("`swimactors.membership.Config`", "nack_timeout", preset.nack_timeout, column)


def attrs_defaults(cls: type) -> dict[str, Any]:
    """Each init field of an attrs class and its default (``inspect.Parameter.empty`` if
    required)."""
    defaults: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if not field.init:
            continue
        if field.default is attrs.NOTHING:
            defaults[field.name] = inspect.Parameter.empty
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            defaults[field.name] = field.default.factory()
        else:
            defaults[field.name] = field.default
    return defaults


def parameter_defaults(function: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    parameters = inspect.signature(function).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.name not in skip and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def class_defaults(cls: type) -> dict[str, Any]:
    return {name: v for name, v in vars(cls).items() if not name.startswith("_")}


REQUIRED = "(required)"

SETTINGS: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    # (heading, {name: code default}, {name: what the docs show for a computed default})
    (
        "`swimactors.membership.open_node(",
        parameter_defaults(membership.open_node),
        {
            "config": "Config.lan()",
            "leave_timeout": "None",
            "incarnation": "None",
            "clock": "time.time",
        },
    ),
    (
        "`swimactors.open_system",
        parameter_defaults(swimactors.open_system),
        {
            "config": "Config.lan()",
            "actor_bind": "bind host, any free port",
            "actor_advertise": "that port on the member's address",
            "transport": "TransportConfig()",
            "supervision": "restart()",
        },
    ),
    ("`swimactors.Environment`", attrs_defaults(Environment), {"actor_network": "TCP"}),
    ("`swimactors.TransportConfig`", attrs_defaults(swimactors.TransportConfig), {}),
    (
        "`swimactors.SplitBrainConfig`",
        attrs_defaults(swimactors.SplitBrainConfig),
        {"stable_after": "7 + 3 * log2(n / 5) s"},
    ),
    (
        "Grains",
        parameter_defaults(System.register_grain, ("self", "kind", "factory")),
        {
            "placement": "Placement.RENDEZVOUS",
            "store": "MemoryGrainStore()",
        },
    ),
    ("`TransportLimits`", class_defaults(TransportLimits), {}),
    ("`swimactors.wire.Limits`", attrs_defaults(wire.Limits), {}),
    (
        "The agent",
        attrs_defaults(AgentOptions),
        {"config": "Config.lan()", "transport": "TransportConfig()"},
    ),
]


@pytest.mark.parametrize(("heading", "defaults", "shown"), SETTINGS, ids=[s[0] for s in SETTINGS])
def test_every_field_is_listed_with_its_default(
    heading: str, defaults: dict[str, Any], shown: dict[str, str]
) -> None:
    assert defaults, heading
    for name, default in defaults.items():
        if name in shown:
            check(heading, name, shown[name], text=True)
        elif default is inspect.Parameter.empty:
            check(heading, name, REQUIRED, text=True)
        else:
            check(heading, name, default)


@pytest.mark.parametrize(
    ("cls", "text"),
    [
        (Keyring, 'Keyring(primary, others=(), *, plaintext="refuse", max_age=60.0)'),
        (TlsConfig, "TlsConfig(cert=PATH, key=PATH, ca=PATH)"),
        (swimactors.Mailbox, 'Mailbox(size, overflow="backpressure", priority=None)'),
        (swimactors.restart, 'restart(max_restarts=3, within=5.0, *, scope="one_for_one")'),
    ],
)
def test_signatures_shown_as_in_the_code(cls: Callable[..., Any], text: str) -> None:
    assert text in CONFIGURATION.read_text()
    shown = ast.parse(f"def f{text.split('(', 1)[1].join('()')[:-1]}: ...").body[0]
    assert isinstance(shown, ast.FunctionDef)
    arguments = [*shown.args.args, *shown.args.kwonlyargs]
    defaults = [*shown.args.defaults, *shown.args.kw_defaults]
    defaults = [None] * (len(arguments) - len(defaults)) + defaults
    parameters = inspect.signature(cls).parameters
    assert [a.arg for a in arguments] == list(parameters), cls
    for argument, default in zip(arguments, defaults, strict=True):
        code = parameters[argument.arg].default
        if default is None or isinstance(default, ast.Name):  # required: cert=PATH
            assert code is inspect.Parameter.empty, (cls, argument.arg)
        else:
            assert ast.literal_eval(default) == code, (cls, argument.arg)


CONSTANT_HOMES = [
    "swimactors.wire",
    "swimactors.actors.protocol",
    "swimactors.actors.ref",
    "swimactors.actors.runtime",
    "swimactors.actors.secure",
    "swimactors.actors.transport",
    "swimactors.membership.core",
    "swimactors.membership.messages",
    "swimactors.membership.events",
    "swimactors.membership.threaded",
    "swimactors.membership.lean",
    "swimactors.membership.blocking",
    "swimactors.membership.mirror",
    "swimactors.aio",
    "swimactors.blocking",
    "swimactors.quorum.tracker",
    "swimactors.security.keyring",
    "swimactors.security.packets",
    "swimactors.security.records",
    "swimactors.security.handshake",
    "swimactors.cluster.ddata",
    "swimactors.cluster.grains",
    "swimactors.cluster.grain_store",
    "swimactors.cluster.grain_leases",
    "swimactors.ddata.base",
    "swimactors.agent.http",
    "swimactors.agent.dashboard",
    "swimactors.agent.events",
    "swimactors.agent.handlers",
    "swimactors.agent.control",
    "swimactors.agent.discovery",
]


ENUMS = [swimactors.Consistency, swimactors.placement.Placement]


def constant(dotted: str) -> Any:
    """``NAME`` or ``module.NAME`` (a tail of a module in :data:`CONSTANT_HOMES`), or a
    member of one of :data:`ENUMS`."""
    where, _, name = dotted.rpartition(".")
    homes = [m for m in CONSTANT_HOMES if not where or m.endswith("." + where)]
    spaces = [vars(importlib.import_module(m)) for m in homes]
    if not where:
        spaces += [e.__members__ for e in ENUMS]
    found = [space[name] for space in spaces if name in space]
    assert found, f"docs/configuration.md cites `{dotted}`, which is in none of {homes}"
    if all(isinstance(f, enum.Enum) for f in found):  # LOCAL: a consistency or a placement
        return found[0]
    assert all(f == found[0] for f in found), f"`{dotted}` differs between modules"
    return found[0]


def numbers(line: str) -> list[float]:
    """Every number a line states: ``1,024``, ``4 MiB``, ``2**40``, ``0.005``."""
    line = line.replace("..", " .. ")
    powers = re.findall(r"\b(\d+)\*\*(\d+)(?:-(\d+))?", line)
    found = [float(a) ** float(b) - float(c or 0) for a, b, c in powers]
    for number, unit in re.findall(r"(?<![\w.*])(\d[\d,]*(?:\.\d+)?)(?:\s*(KiB|MiB))?", line):
        found.append(float(number.replace(",", "")) * _UNITS.get(unit, 1))
    return found


CITED = re.compile(r"`((?:[a-z_]+\.)*[A-Z][A-Z0-9_]+)`")


def paragraphs() -> Iterator[str]:
    """Each table row, and each paragraph or list item joined into one line."""
    lines: list[str] = []
    for line in [*CONFIGURATION.read_text().splitlines(), ""]:
        if line.startswith(("|", "#", "- ")) or not line.strip():
            if lines:
                yield " ".join(lines)
            lines = [] if line.startswith("|") or not line.strip() else [line]
            if line.startswith("|"):
                yield line
        else:
            lines.append(line)


def test_every_cited_constant_has_the_stated_value() -> None:
    cited = 0
    for line in paragraphs():
        for dotted in CITED.findall(line):
            if dotted.startswith("SWIMACTORS_"):  # an environment variable
                continue
            cited += 1
            actual = constant(dotted)
            if isinstance(actual, str):
                assert actual in line, f"`{dotted}` is {actual!r}: {line}"
            elif isinstance(actual, int | float | tuple):
                for part in actual if isinstance(actual, tuple) else (actual,):
                    assert part in numbers(line), f"`{dotted}` is {actual}: {line}"
    assert cited > 20


ARCHITECTURE = Path(__file__).parents[1] / "docs" / "architecture.md"


def test_architecture_names_every_module() -> None:
    """docs/architecture.md's layout says what each module is for, so none may be missing."""
    text = ARCHITECTURE.read_text()
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    package = Path(swimactors.__file__).parent
    for path in sorted(package.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        name = path.stem
        where = layout if path.parent == package else text
        assert re.search(rf"\b{re.escape(name)}\b", where), f"docs/architecture.md: {path}"
    for sub in sorted(p for p in package.iterdir() if (p / "__init__.py").exists()):
        assert f"{sub.name}/" in layout, f"docs/architecture.md's layout: {sub.name}/"


def test_per_call_defaults_as_in_the_signatures() -> None:
    """The pools/routers/proxies table and the streams table state the calls' defaults."""
    calls = {
        "spawn_pool(": System.spawn_pool,
        "spawn_group_router(": System.spawn_group_router,
        "proxy(": System.proxy,
    }
    checked = 0
    call: Callable[..., Any] | None = None
    for cells in rows("Pools, group routers, proxies"):
        call = next((f for text, f in calls.items() if cells[0].startswith(f"`{text}")), call)
        parameter = re.fullmatch(r"`(\w+)`", cells[1])
        if call is None or parameter is None:
            continue
        default = inspect.signature(call).parameters[parameter[1]].default
        assert same(value(cells[2]), default), (call, parameter[1], cells[2])
        checked += 1
    for cells in rows("Streams"):
        if stream := re.fullmatch(r"`ref\.stream\(msg, (\w+)=\)`", cells[0]):
            default = inspect.signature(swimactors.ActorRef.stream).parameters[stream[1]].default
            assert same(value(cells[1]), default), (stream[1], cells[1])
            checked += 1
    assert checked == 7


def test_every_module_public_class_and_function_has_a_docstring() -> None:
    """Each module, and each public class and function at its top level, says what it is."""
    package = Path(swimactors.__file__).parent
    missing = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        if ast.get_docstring(tree) is None:
            missing.append(str(path))
        for node in tree.body:
            kinds = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            if not isinstance(node, kinds) or node.name.startswith("_"):
                continue
            overload = any(
                isinstance(d, ast.Name) and d.id == "overload" for d in node.decorator_list
            )
            if not overload and ast.get_docstring(node) is None:
                missing.append(f"{path}:{node.lineno} {node.name}")
    assert missing == []


def test_every_command_line_option_is_documented() -> None:
    """Each ``swimactors`` subcommand's options appear in the docs, the agent's in the guide."""
    from swimactors import cli

    docs = "\n".join(p.read_text() for p in DOCS)
    guide = (ROOT / "docs" / "guide.md").read_text()
    commands = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in commands.choices.items():
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    where = guide if name == "agent" else docs
                    pattern = re.escape(option) + r"(?![\w-])"
                    assert re.search(pattern, where), f"swimactors {name} {option}"


def test_the_readme_lists_every_page() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"`docs/{page.name}`" in readme, page.name
