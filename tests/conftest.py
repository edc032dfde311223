"""Shared fixtures for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowrun import USER


@pytest.fixture(params=["fork", "subprocess"])
def launcher(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def use_root(monkeypatch: pytest.MonkeyPatch):
    """Point the in-process client at a store root (and the default namespace at USER)."""

    def use(root: Path) -> None:
        monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(root))
        monkeypatch.setenv("HEADWATER_USER", USER)
        from headwater import default_namespace

        default_namespace()

    return use
