"""Issue 8, fault 9: values nested past Python's recursion limit (a JSON parameter
60,000 deep, an artifact 100,000 deep) give a clear error naming the parameter or
artifact, never a RecursionError traceback."""

from __future__ import annotations

import os

from flowrun import run_flow

DEEP_JSON = "[" * 60_000 + "]" * 60_000


def test_deep_json_parameter_on_the_command_line(tmp_path) -> None:
    r = run_flow("params_flow.py", "run", "--config", DEEP_JSON, root=tmp_path / ".headwater")
    assert r.returncode == 2, r.output[-2000:]
    assert "RecursionError" not in r.output and "Traceback" not in r.output
    assert "Invalid value for '--config': the JSON value is nested too deeply to load" in r.output
    assert not (tmp_path / ".headwater" / "runs").exists()


def test_deep_json_parameter_from_the_environment(tmp_path) -> None:
    r = run_flow("params_flow.py", "run", root=tmp_path / ".headwater", env={"HEADWATER_RUN_CONFIG": DEEP_JSON})
    assert r.returncode == 2, r.output[-2000:]
    assert "Traceback" not in r.output and "'--config': the JSON value is nested too deeply" in r.output


def test_parameter_that_loads_but_cannot_be_stored(tmp_path) -> None:
    # json.loads takes 900 levels, pickle (a few frames deeper already) does not: no run is left behind.
    root = tmp_path / ".headwater"
    r = run_flow("params_flow.py", "run", "--config", "[" * 900 + "]" * 900, root=root)
    assert r.returncode == 2, r.output[-2000:]
    assert "Traceback" not in r.output
    assert "The value of parameter 'config' of ParamsFlow cannot be stored: it is nested too deeply" in r.output
    assert not (root / "runs" / "ParamsFlow").exists() or not os.listdir(root / "runs" / "ParamsFlow")


def test_deep_artifact_names_the_artifact(tmp_path, use_root) -> None:
    from headwater import Flow

    root = tmp_path / ".headwater"
    r = run_flow("deep_flow.py", "run", root=root)
    assert r.returncode == 1, r.output[-3000:]
    assert "RecursionError" not in r.output and "Traceback" not in r.output
    assert "Step 'start' set artifact 'deep' to a list, which cannot be pickled (it is nested too deeply" \
        in r.output
    use_root(root)
    task = Flow("DeepFlow").latest_run["start"].task
    assert not task.successful and task.exception.type == "headwater.exceptions.ArtifactError"
    assert task["shallow"].data == "kept"  # what could be stored still is
