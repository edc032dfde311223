"""Fixtures of the environment tests: the local conda channel (tests/environments/condachannel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test conda channel (python, tinylib 1.0/2.0, tinyapp), built once per session."""
    pytest.importorskip("rattler")
    pytest.importorskip("conda_package_handling")
    from .condachannel import build_channel

    return build_channel(tmp_path_factory.mktemp("conda"))
