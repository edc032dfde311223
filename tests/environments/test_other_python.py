"""Steps whose environment has another Python than the launching one (3.12 here, from 3.11):
headwater's compiled dependencies are installed into the environment (interpreter.py), for @pypi
and for a uv project, offline. Needs a Python 3.12 on this machine and blake3/zstandard wheels
for it in HEADWATER_TEST_WHEELS (default ~/.cache/headwater-tests/wheels); else skipped, and the
error path is tested instead."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flowrun import FLOWS, run_flow

OTHER = "3.12"
pytestmark = pytest.mark.skipif(sys.version_info[:2] == (3, 12), reason="the launching Python is 3.12 itself")


@pytest.fixture(scope="module")
def other_python() -> Path:
    """The directory of a Python 3.12 interpreter (put first on PATH, where uv finds it)."""
    import uv

    p = subprocess.run([uv.find_uv_bin(), "python", "find", OTHER, "--no-project"], capture_output=True, text=True)
    found = [p.stdout.strip()] if p.returncode == 0 and p.stdout.strip() else []
    found += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{OTHER}*/bin/python{OTHER}")))
    if not found:
        pytest.skip(f"no Python {OTHER} on this machine")
    return Path(found[0]).parent


def _wheels_for_other() -> list[Path]:
    where = Path(os.environ.get("HEADWATER_TEST_WHEELS", os.path.expanduser("~/.cache/headwater-tests/wheels")))
    tag = "cp" + OTHER.replace(".", "")
    wheels = [w for name in ("blake3", "zstandard") for w in where.glob(f"{name}-*-{tag}-*.whl")]
    return wheels if {w.name.split("-")[0] for w in wheels} == {"blake3", "zstandard"} else []


@pytest.fixture
def links_with_wheels(tmp_path: Path, find_links: Path) -> Path:
    wheels = _wheels_for_other()
    if not wheels:
        pytest.skip(f"no blake3/zstandard wheels for Python {OTHER} in HEADWATER_TEST_WHEELS (offline test)")
    links = tmp_path / "links"
    shutil.copytree(find_links, links)
    for wheel in wheels:
        shutil.copy(wheel, links)
    return links


def _env(offline_env: dict[str, str], other_python: Path, links: Path, tmp_path: Path) -> dict[str, str]:
    return {**offline_env, "HEADWATER_PYPI_FIND_LINKS": str(links), "HEADWATER_HOME": str(tmp_path / "home"),
            "PATH": os.pathsep.join([str(other_python), os.environ.get("PATH", "")])}


def test_a_pypi_step_on_another_python_runs(tmp_path: Path, offline_env: dict[str, str], other_python: Path,
                                            links_with_wheels: Path, use_root) -> None:
    env = {**_env(offline_env, other_python, links_with_wheels, tmp_path),
           "PYPI_PACKAGES": json.dumps({"tinylib": "1.*"}), "PYPI_PYTHON": OTHER}
    root = tmp_path / ".headwater"
    out = run_flow("pypi_request_flow.py", "--environment=pypi", "run", root=root, env=env)
    assert out.returncode == 0, out.output
    assert "the step ran" in out.output
    from headwater import Flow

    use_root(root)
    meta = json.loads(Flow("PypiRequestFlow").latest_run["start"].task.metadata_dict["environment"])
    assert meta["python_version"].startswith(OTHER + ".")
    assert {"blake3", "zstandard", "tinylib"} <= set(meta["packages"])


def test_a_uv_project_on_another_python_runs(tmp_path: Path, offline_env: dict[str, str], other_python: Path,
                                             links_with_wheels: Path, use_root) -> None:
    import uv

    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "otherpy"\nversion = "0.1.0"\nrequires-python = ">={OTHER}"\n'
        'dependencies = ["tinylib==2.*"]\n')
    (project / ".python-version").write_text(OTHER + "\n")
    shutil.copy(FLOWS / "uv_project_flow.py", project / "flow.py")
    env = _env(offline_env, other_python, links_with_wheels, tmp_path)
    subprocess.run([uv.find_uv_bin(), "lock", "--no-index", "--find-links", str(links_with_wheels), "--quiet"],
                   cwd=project, check=True, capture_output=True, text=True, env={**os.environ, "PATH": env["PATH"]})
    root = tmp_path / ".headwater"
    out = run_flow(project / "flow.py", "--environment=uv", "run", root=root, env=env, cwd=project)
    assert out.returncode == 0, out.output
    from headwater import Flow

    use_root(root)
    task = Flow("UvProjectFlow").latest_run["start"].task
    assert task["tinylib"].data == "2.0.0"
    assert json.loads(task.metadata_dict["environment"])["python_version"].startswith(OTHER + ".")


def test_another_python_without_headwaters_wheels_is_refused_before_running(
        tmp_path: Path, offline_env: dict[str, str], other_python: Path) -> None:
    env = {**_env(offline_env, other_python, Path(offline_env["HEADWATER_PYPI_FIND_LINKS"]), tmp_path),
           "PYPI_PACKAGES": json.dumps({"tinylib": "1.*"}), "PYPI_PYTHON": OTHER}
    out = run_flow("pypi_request_flow.py", "--environment=pypi", "run", root=tmp_path / ".headwater", env=env)
    assert out.returncode == 1, out.output
    assert "Package not found" in out.stderr and "'blake3'" in out.stderr, out.stderr
    assert "the step ran" not in out.output and "Traceback" not in out.stderr
