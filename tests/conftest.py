"""Shared fixtures for the whole suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flowrun import USER
from s3server import S3Server, start_s3_server


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


EXAMPLE_PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "plugin"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin package (examples/plugin), installed with pip into a directory of its own."""
    work = tmp_path_factory.mktemp("plugin")
    src = work / "src"
    shutil.copytree(EXAMPLE_PLUGIN, src)
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], check=True, capture_output=True, text=True)
    return site


@pytest.fixture(scope="session")
def s3_server():
    """One real S3 API server (moto) on 127.0.0.1 for the whole session."""
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server's endpoint and credentials in this test's environment (for in-process code
    and the processes it starts)."""
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    return s3_server


@pytest.fixture
def s3_bucket(s3_env: S3Server) -> str:
    """A fresh, empty bucket on the session's S3 server (its env set for the test)."""
    return s3_env.new_bucket()
