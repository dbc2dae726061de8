"""Fixtures of the fronts' tests."""

from __future__ import annotations

import pytest

from swimactors.membership.lean import DRIVER_VARIABLE


@pytest.fixture(params=["lean", "trio"])
def membership_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once per membership-thread driver (peer processes inherit it)."""
    driver: str = request.param
    monkeypatch.setenv(DRIVER_VARIABLE, driver)
    return driver
