"""A named scenario: a function from parameters to a report, with its suite sizes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .common import Params, Progress

ScenarioFn = Callable[[Params, Progress], dict[str, Any]]
Verdict = Callable[[dict[str, Any]], list[str]]


def no_false_deaths(report: dict[str, Any]) -> list[str]:
    """The baseline verdict: nobody alive and reachable was declared DOWN, and the
    scenario's own invariant checks (``problems``) found nothing."""
    count = report.get("false_positives", 0)
    return ([f"{count} false positive(s)"] if count else []) + list(report.get("problems", []))


def require(*keys: str) -> Verdict:
    """No false deaths, and each of ``keys`` is truthy in the report."""

    def verdict(report: dict[str, Any]) -> list[str]:
        missing = [f"{key} is {report.get(key)!r}" for key in keys if not report.get(key)]
        return no_false_deaths(report) + missing

    return verdict


@attrs.frozen
class Scenario:
    name: str
    summary: str
    run: ScenarioFn
    small: int
    """Nodes in the quick suite (``make test``)."""
    large: tuple[int, ...]
    """Node counts in ``python -m sims suite --large`` (``make sim``)."""
    verdict: Verdict = no_false_deaths
    """What must hold in the report for the suite to pass."""
    large_formed: tuple[int, ...] = ()
    """Node counts the large suite also runs from a formed cluster (``--formed``)."""
