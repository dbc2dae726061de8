"""``--app package.module:setup``: find the user's ``async def setup(system)`` by name.

This is how the agent runs an application, as uvicorn and celery do: the named callable is
imported (never received from the network) and awaited with the running system.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import SwimactorsError

if TYPE_CHECKING:
    from ..cluster.system import System

__all__ = ["AppError", "Setup", "load_app"]

Setup = Callable[["System"], Awaitable[Any]]


class AppError(SwimactorsError, ValueError):
    """An ``--app`` spec that does not name an importable ``async def setup(system)``."""


def load_app(spec: str) -> Setup:
    """Import ``package.module:function`` and check it is an async function."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppError(f"--app expects package.module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppError(f"cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise AppError(f"{module_name!r} has no attribute {attribute!r}")
    if not inspect.iscoroutinefunction(target):
        raise AppError(f"{spec} must be an async function taking the system")
    setup: Setup = target
    return setup
