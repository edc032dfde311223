"""Fixtures for the card tests: headless Chromium, installed from Debian when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)


def _find() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env, timeout=1200)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless-capable Chromium; installs Debian's ``chromium`` if it is missing."""
    path = _find()
    if path:
        return path
    if shutil.which("apt-get") is None:
        pytest.skip("Chromium is not installed and there is no apt-get to install it with.")
    r = _apt("install", "-y", "--no-install-recommends", "chromium")
    if r.returncode != 0:  # the package lists may be missing or stale
        _apt("update")
        r = _apt("install", "-y", "--no-install-recommends", "chromium")
    path = _find()
    if r.returncode != 0 or path is None:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        pytest.skip(f"Chromium could not be installed with apt-get ({' / '.join(tail)}).")
    return path


class Browser:
    """Runs headless Chromium on local files: screenshots and the DOM after scripts ran."""

    def __init__(self, exe: str, profile: Path) -> None:
        self.exe = exe
        self.profile = profile

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.exe, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", *args],
                              capture_output=True, text=True, timeout=120)

    def screenshot(self, page: Path, png: Path, size: str = "1200,1600") -> Path:
        r = self._run(f"--screenshot={png}", f"--window-size={size}", "--virtual-time-budget=5000",
                      page.resolve().as_uri())
        assert png.is_file(), r.stderr
        return png

    def dom(self, page: Path) -> str:
        r = self._run("--dump-dom", "--virtual-time-budget=5000", page.resolve().as_uri())
        assert r.returncode == 0 and "<html" in r.stdout, r.stderr
        return r.stdout


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Browser:
    return Browser(chromium, tmp_path / "chromium-profile")


@pytest.fixture(scope="session")
def vega_builds():
    """The Vega builds cards inline; fetched from npm at build time (`make card-assets`)."""
    from importlib import resources

    if not (resources.files("headwater.cards") / "assets" / "vega.min.js").is_file():
        pytest.skip("The Vega builds were not fetched from npm (is the npm registry reachable?): "
                    "run `make card-assets`.")
