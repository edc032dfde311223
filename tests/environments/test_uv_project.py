"""--environment=uv: every step runs in the flow directory's uv project, built from its uv.lock."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from flowrun import FLOWS, run_flow

PYPROJECT = """\
[project]
name = "uvflowproject"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["tinylib==2.*"]
"""


def _project(tmp_path: Path, find_links: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT)
    shutil.copy(FLOWS / "uv_project_flow.py", project / "flow.py")
    import uv

    subprocess.run([uv.find_uv_bin(), "lock", "--no-index", "--find-links", str(find_links), "--quiet"],
                   cwd=project, check=True, capture_output=True, text=True)
    return project


def test_every_step_runs_in_the_uv_project(tmp_path: Path, find_links: Path, offline_env: dict[str, str],
                                           use_root) -> None:
    project = _project(tmp_path, find_links)
    root = tmp_path / ".headwater"
    out = run_flow(project / "flow.py", "--environment=uv", "run", root=root, env=offline_env, cwd=project)
    assert out.returncode == 0, out.output
    from headwater import Flow

    use_root(root)
    run = Flow("UvProjectFlow").latest_run
    for name in ("start", "end"):
        task = run[name].task
        assert task["tinylib"].data == "2.0.0"
        assert json.loads(task.metadata_dict["environment"])["kind"] == "uv"


def test_a_project_without_uv_lock_is_an_error(tmp_path: Path, offline_env: dict[str, str]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(FLOWS / "uv_project_flow.py", project / "flow.py")
    out = run_flow(project / "flow.py", "--environment=uv", "run", root=tmp_path / ".headwater", env=offline_env,
                   cwd=project)
    assert out.returncode == 1, out.output
    assert "has no uv.lock" in out.stderr and "Run `uv lock`" in out.stderr
    assert "Task is starting" not in out.output
