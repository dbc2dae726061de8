"""The public surface: every exported name imports, each has one public home, and the
sans-IO layers load without trio (after trio's ``test_exports.py``)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from collections import defaultdict

import pytest

PUBLIC = [
    "swimactors",
    "swimactors.actors",
    "swimactors.aio",
    "swimactors.blocking",
    "swimactors.ddata",
    "swimactors.membership",
    "swimactors.quorum",
    "swimactors.registry",
    "swimactors.security",
    "swimactors.sim",
    "swimactors.wire",
]
"""The namespaces users import from; everything else is internal."""


@pytest.mark.parametrize("name", PUBLIC)
def test_every_exported_name_imports(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert sorted(set(exported)) == sorted(exported), "a name is listed twice in __all__"
    for attribute in exported:
        assert getattr(module, attribute) is not None, f"{name}.{attribute}"
        assert attribute in dir(module)
        assert not attribute.startswith("_") or attribute == "__version__"


def test_each_class_and_function_has_one_public_home() -> None:
    homes: defaultdict[int, list[str]] = defaultdict(list)
    for name in PUBLIC:
        module = importlib.import_module(name)
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if inspect.isclass(value) or inspect.isfunction(value):
                homes[id(value)].append(f"{name}.{attribute}")
    twice = sorted(places for places in homes.values() if len(places) > 1)
    assert twice == []


def test_every_error_derives_from_the_root() -> None:
    import swimactors

    for name in PUBLIC:
        module = importlib.import_module(name)
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if inspect.isclass(value) and issubclass(value, Exception):
                assert issubclass(value, swimactors.SwimactorsError), f"{name}.{attribute}"


@pytest.mark.parametrize(
    "name",
    [
        "swimactors",
        "swimactors.ddata",
        "swimactors.membership",
        "swimactors.registry",
        "swimactors.quorum",
        "swimactors.security",
        "swimactors.wire",
        "swimactors.actors.protocol",
    ],
)
def test_sans_io_layers_import_without_trio(name: str) -> None:
    code = f"import sys, {name}; assert 'trio' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_trio_driver_loads_when_first_used() -> None:
    code = (
        "import sys, swimactors.membership as m; assert 'trio' not in sys.modules; "
        "m.open_node; assert 'trio' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
