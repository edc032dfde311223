"""Fixtures of the environment tests: offline package sources the tests build themselves
(wheels for uv, a conda channel for rattler: tests/environments/condachannel.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytest.importorskip("uv", reason="environment tests need uv (pip install 'headwater[envs]')")

from tinywheels import write_wheel  # noqa: E402


@pytest.fixture(scope="session")
def find_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of wheels: tinylib 1.0.0 and 2.0.0, and needsold 1.0 (which needs tinylib<2)."""
    links = tmp_path_factory.mktemp("links")
    write_wheel(links, "tinylib", "1.0.0")
    write_wheel(links, "tinylib", "2.0.0")
    write_wheel(links, "needsold", "1.0", requires=("tinylib<2",))
    return links


@pytest.fixture(scope="session")
def envs_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HEADWATER_HOME of the session: built environments are shared by the tests, as by runs."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def offline_env(find_links: Path, envs_home: Path) -> dict[str, str]:
    """The environment variables of an offline run: no index, only ``find_links``."""
    return {"HEADWATER_HOME": str(envs_home), "HEADWATER_PYPI_NO_INDEX": "1",
            "HEADWATER_PYPI_FIND_LINKS": str(find_links), "UV_HTTP_RETRIES": "0"}


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test conda channel (python, tinylib 1.0/2.0, tinyapp), built once per session."""
    pytest.importorskip("rattler")
    pytest.importorskip("conda_package_handling")
    from .condachannel import build_channel

    return build_channel(tmp_path_factory.mktemp("conda"))
