"""Compiled Argo workflows run for real: `argo-workflows create --only-json` output, its code
package stored in the S3 datastore, executed by the test interpreter (tests/argo_interpreter.py,
Argo's documented semantics for the subset headwater emits) with each container command run as a
local process against the session's S3 server; the client then reads the same artifacts a
local `run` gives. The container's `python` is this interpreter (the image would have its own)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from argo_interpreter import Interpreter, NodePhase
from flowrun import USER, run_flow
from s3server import S3Server

OUT_DIR = "/tmp/hw-out"  # where compiled split steps write their outputs (--output-dir)


def _compile_and_store(flow: str, root: str, server: S3Server, tmp_path: Path) -> dict:
    env = {**server.env(), "HEADWATER_HOME": str(tmp_path / "home")}
    r = run_flow(flow, "--datastore-root", root, "argo-workflows", "create", "--only-json",
                 root=tmp_path / ".unused", env=env)
    assert r.returncode == 0, r.output
    wt = json.loads(r.stdout)
    from headwater.store import Datastore

    assert Datastore(root).content.has(_package_key(wt))  # `create` stored the code package
    for t in wt["spec"]["templates"]:
        if "container" in t and t["container"]["command"][0] == "python":
            t["container"]["command"][0] = sys.executable
    return wt


def _package_key(wt: dict) -> str:
    for t in wt["spec"]["templates"]:
        args = t.get("container", {}).get("args", [])
        if "--package-key" in args:
            return args[args.index("--package-key") + 1]
    raise AssertionError("no --package-key in the compiled template")


@pytest.mark.parametrize("flow, cls, check", [
    ("branch_flow.py", "BranchFlow", None),
    ("nested_foreach_flow.py", "NestedForeachFlow", None),
    ("switch_in_branch_flow.py", "SwitchInBranchFlow", None),
])
def test_compiled_workflow_runs_to_the_same_results_as_a_local_run(
        flow: str, cls: str, check, s3_bucket: str, s3_env: S3Server, tmp_path: Path, use_root, monkeypatch) -> None:
    root = f"s3://{s3_bucket}/argo"
    wt = _compile_and_store(flow, root, s3_env, tmp_path)
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    base.update({**s3_env.env(), "HEADWATER_USER": USER, "HEADWATER_HOME": str(tmp_path / "pod-home")})
    (tmp_path / "pods").mkdir()
    run = Interpreter(base_env=base, work_dir=tmp_path / "pods", path_prefix=OUT_DIR,
                      cwd=tmp_path).run(wt, name="wf1")
    assert run.phase is NodePhase.SUCCEEDED, [(n, v.phase) for n, v in run.nodes.items()]

    local = run_flow(flow, "run", "--run-id-file", str(tmp_path / "local.id"), root=tmp_path / ".headwater")
    assert local.returncode == 0, local.output
    import headwater

    use_root(tmp_path / ".headwater")
    expected = headwater.Run(f"{cls}/{(tmp_path / 'local.id').read_text()}")
    want = _by_step(expected)
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", root)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "reader-home"))
    headwater.default_namespace()
    got_run = headwater.Run(f"{cls}/argo-wf1")
    assert got_run.successful
    assert _by_step(got_run) == want


def _by_step(run) -> dict:
    """Every artifact value of every task, by (step, artifact): task ids differ between a local
    run and an orchestrated one, the values must not."""
    out: dict = {}
    for step in run:
        for task in step:
            for k, v in _data(task).items():
                out.setdefault((step.id, k), []).append(v)
    return {k: sorted(v) for k, v in out.items()}


def _data(task) -> dict:
    return {a.id: repr(a.data) for a in task if a.id != "name"}
