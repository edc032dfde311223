"""Issue 8, fault 5: a run killed after its run record but before its parameters
record cannot be resumed; a bare ``resume`` passes over it (saying so) and an
explicit ``--origin-run-id`` to it is a clear error, not a traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from flowrun import USER, run_flow
from headwater.meta import open_index
from headwater.runtime.run import system_tags
from headwater.store import Datastore


def _killed_before_parameters(root: Path, flow: str) -> str:
    """Leave what a run process killed right after writing its run record leaves:
    the run record and its index row, no parameters record, no end record."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ds = Datastore(root)
    run_id = str(int(time.time() * 1e6))
    rec = {"version": 1, "flow": flow, "run_id": run_id, "user": USER, "tags": [],
           "system_tags": system_tags(f"user:{USER}"), "created_at": time.time(), "start_step": "start",
           "end_step": "end", "parameters": [], "origin_run_id": None, "pid": int(dead.stdout),
           "host": __import__("socket").gethostname(), "script": "resume_flow.py"}
    ds.records.write_run(rec)
    with open_index(ds.root, records=ds.records) as index:
        index.add_run(rec)
    return run_id


def _env(tmp_path: Path, fail: bool) -> dict[str, str]:
    env = {"HW_SIDE_EFFECTS": str(tmp_path / "side.txt")}
    if fail:
        (tmp_path / "fail.marker").touch()
        env["HW_FAIL_MARKER"] = str(tmp_path / "fail.marker")
    return env


def test_bare_resume_skips_a_run_killed_before_its_parameters(tmp_path, use_root) -> None:
    from headwater import Flow

    root = tmp_path / ".headwater"
    r1 = run_flow("resume_flow.py", "run", root=root, env=_env(tmp_path, fail=True))
    assert r1.returncode == 1, r1.output
    killed = _killed_before_parameters(root, "ResumeFlow")
    (tmp_path / "fail.marker").unlink()
    r2 = run_flow("resume_flow.py", "resume", root=root, env=_env(tmp_path, fail=False))
    assert r2.returncode == 0, r2.output
    assert "Traceback" not in r2.output
    assert f"Skipping run {killed} as the resume origin: it was stopped before it recorded its parameters" \
        in r2.output
    use_root(root)
    new, dead, origin = list(Flow("ResumeFlow"))[:3]
    assert dead.id == killed
    assert new.successful and new.origin_pathspec == origin.pathspec


def test_bare_resume_with_only_unresumable_runs(tmp_path) -> None:
    root = tmp_path / ".headwater"
    root.mkdir()
    killed = _killed_before_parameters(root, "ResumeFlow")
    r = run_flow("resume_flow.py", "resume", root=root, env=_env(tmp_path, fail=False))
    assert r.returncode == 2 and "Traceback" not in r.output, r.output
    assert f"Skipping run {killed}" in r.output
    assert "There is no earlier run of ResumeFlow that can be resumed." in r.output


def test_explicit_origin_killed_before_its_parameters(tmp_path) -> None:
    root = tmp_path / ".headwater"
    root.mkdir()
    killed = _killed_before_parameters(root, "ResumeFlow")
    r = run_flow("resume_flow.py", "resume", "--origin-run-id", killed, root=root, env=_env(tmp_path, fail=False))
    assert r.returncode == 1 and "Traceback" not in r.output, r.output
    assert f"Run ResumeFlow/{killed} cannot be resumed: it was stopped before it recorded its parameters" \
        in r.output
    assert "Resume another run with --origin-run-id" in r.output
