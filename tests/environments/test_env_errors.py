"""Environment mistakes are clear errors before any step runs (real flows through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowrun import run_flow


def _fails_before_running(out, *expected: str) -> None:
    assert out.returncode == 1, out.output
    for text in expected:
        assert text in out.stderr, out.stderr
    assert "the step ran" not in out.output
    assert "Task is starting" not in out.output
    assert "Traceback" not in out.stderr


def _request(tmp_path: Path, env: dict[str, str], *, packages: dict[str, str], python: str | None = None):
    extra = {"PYPI_PACKAGES": json.dumps(packages), **({"PYPI_PYTHON": python} if python else {})}
    return run_flow("pypi_request_flow.py", "--environment=pypi", "run", root=tmp_path / ".headwater",
                    env={**env, **extra})


def test_a_package_that_does_not_exist(tmp_path: Path, offline_env: dict[str, str]) -> None:
    out = _request(tmp_path, offline_env, packages={"nosuchlib": "1.0"})
    _fails_before_running(out, "Package not found", "The environment of step 'start': Package 'nosuchlib' was not found",
                          f"find-links {offline_env['HEADWATER_PYPI_FIND_LINKS']}")


def test_a_version_that_does_not_exist(tmp_path: Path, offline_env: dict[str, str]) -> None:
    out = _request(tmp_path, offline_env, packages={"tinylib": "9.9"})
    _fails_before_running(out, "Package not found", "No version of package 'tinylib' matches tinylib==9.9")
    assert "Conflicting requirements" not in out.stderr


def test_versions_that_cannot_be_installed_together(tmp_path: Path, offline_env: dict[str, str]) -> None:
    out = _request(tmp_path, offline_env, packages={"needsold": "1.0", "tinylib": ">=2"})
    _fails_before_running(out, "Conflicting requirements", "needsold", "tinylib<2", "tinylib>=2")


def test_a_python_that_is_not_available(tmp_path: Path, offline_env: dict[str, str]) -> None:
    out = _request(tmp_path, offline_env, packages={"tinylib": "1.*"}, python="3.99")
    _fails_before_running(out, "Python version not available", "No interpreter found for Python 3.99")


def test_an_index_that_cannot_be_reached(tmp_path: Path, offline_env: dict[str, str], closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/simple"
    env = {**offline_env, "HEADWATER_PYPI_NO_INDEX": "", "HEADWATER_PYPI_FIND_LINKS": "",
           "HEADWATER_PYPI_INDEX_URL": url}
    out = _request(tmp_path, env, packages={"tinylib": "1.*"})
    _fails_before_running(out, "Package index unreachable", f"{url}/tinylib/", f"tried: {url}")


def test_pypi_and_conda_on_one_step(tmp_path: Path, offline_env: dict[str, str]) -> None:
    out = run_flow("env_conflict_flow.py", "--environment=pypi", "run", root=tmp_path / ".headwater",
                   env=offline_env)
    _fails_before_running(out, "Conflicting environment decorators",
                          "Step 'start' asks for PyPI packages (tinylib) and conda packages (tinylib)")


@pytest.mark.parametrize("environment", [[], ["--environment=uv"]])
def test_pypi_needs_the_pypi_or_conda_environment(tmp_path: Path, offline_env: dict[str, str],
                                                  environment: list[str]) -> None:
    out = run_flow("pypi_flow.py", *environment, "run", root=tmp_path / ".headwater", env=offline_env)
    _fails_before_running(out, "Incompatible environment",
                          "@pypi on step 'start' requires --environment=pypi or --environment=conda")
