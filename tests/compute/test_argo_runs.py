"""Compiled Argo workflows run for real: `argo-workflows create --only-json` output, its code
package stored in the S3 datastore, executed by the test interpreter (tests/argo_interpreter.py,
Argo's documented semantics for the subset headwater emits) with each container command run as a
local process against the session's S3 server; the client then reads the same artifacts a
local `run` gives (helpers in tests/argo_harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from argo_harness import by_step, compile_and_store, pod_interpreter
from argo_interpreter import NodePhase
from flowrun import USER, run_flow
from s3server import S3Server


@pytest.mark.parametrize("flow, cls, check", [
    ("branch_flow.py", "BranchFlow", None),
    ("nested_foreach_flow.py", "NestedForeachFlow", None),
    ("switch_in_branch_flow.py", "SwitchInBranchFlow", None),
])
def test_compiled_workflow_runs_to_the_same_results_as_a_local_run(
        flow: str, cls: str, check, s3_bucket: str, s3_env: S3Server, tmp_path: Path, use_root, monkeypatch) -> None:
    root = f"s3://{s3_bucket}/argo"
    wt = compile_and_store(flow, root, s3_env, tmp_path)
    run = pod_interpreter(s3_env, tmp_path).run(wt, name="wf1")
    assert run.phase is NodePhase.SUCCEEDED, [(n, v.phase) for n, v in run.nodes.items()]

    local = run_flow(flow, "run", "--run-id-file", str(tmp_path / "local.id"), root=tmp_path / ".headwater")
    assert local.returncode == 0, local.output
    import headwater

    use_root(tmp_path / ".headwater")
    expected = headwater.Run(f"{cls}/{(tmp_path / 'local.id').read_text()}")
    want = by_step(expected)
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", root)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "reader-home"))
    headwater.default_namespace()
    got_run = headwater.Run(f"{cls}/argo-wf1")
    assert got_run.successful
    assert by_step(got_run) == want



def test_an_include_file_default_is_uploaded_at_deploy_time(s3_bucket: str, s3_env: S3Server, tmp_path: Path,
                                                            use_root, monkeypatch) -> None:
    """The default names a file on the deploying machine; the pods read the copy `create` stored."""
    root = f"s3://{s3_bucket}/argo"
    wt = compile_and_store("argo_include_flow.py", root, s3_env, tmp_path)
    (notes,) = [p["value"] for p in wt["spec"]["arguments"]["parameters"] if p["name"] == "notes"]
    assert notes.startswith(f"{root}/includefiles/") and notes.endswith("/argo_include_notes.txt")
    run = pod_interpreter(s3_env, tmp_path).run(wt, name="wf1")
    assert run.phase is NodePhase.SUCCEEDED, run.phases()
    import headwater

    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", root)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "reader-home"))
    monkeypatch.setenv("HEADWATER_USER", USER)
    headwater.default_namespace()
    got = headwater.Run("ArgoIncludeFlow/argo-wf1")
    assert got.data.lines == ["first line", "second line"]
    assert got.data.notes == "first line\nsecond line\n"


def test_environment_steps_build_their_environment_in_the_pod(s3_bucket: str, s3_env: S3Server, tmp_path: Path,
                                                              monkeypatch) -> None:
    """PypiFlow deployed with --environment=pypi: `create` resolves the two environments and stores
    their locks; each step's template builds its lock in the pod (``--environment-lock``) with the
    package sources of the deploying machine (in the template's env: the pods have none), so each
    step sees its own tinylib and end sees neither."""
    pytest.importorskip("uv", reason="environment steps need uv (pip install 'headwater[envs]')")
    import json
    import sys

    from argo_harness import argo_env
    from headwater.compute.argo.naming import step_template
    from tinywheels import write_wheel

    links = tmp_path / "links"
    write_wheel(links, "tinylib", "1.0.0")
    write_wheel(links, "tinylib", "2.0.0")
    sources = {"HEADWATER_PYPI_NO_INDEX": "1", "HEADWATER_PYPI_FIND_LINKS": str(links)}
    root = f"s3://{s3_bucket}/argo-envs"
    r = run_flow("pypi_flow.py", "--environment=pypi", "--datastore-root", root, "argo-workflows", "create",
                 "--only-json", root=tmp_path / ".unused",
                 env={**argo_env(s3_env, tmp_path), **sources, "UV_HTTP_RETRIES": "0"})
    assert r.returncode == 0, r.output
    wt = json.loads(r.stdout)
    for t in wt["spec"]["templates"]:
        if "container" in t and t["container"]["command"][0] == "python":
            t["container"]["command"][0] = sys.executable
    templates = {t["name"]: t for t in wt["spec"]["templates"]}
    for step in ("start", "two"):
        container = templates[step_template(step)]["container"]
        assert "--environment-lock" in container["args"]
        assert {e["name"]: e["value"] for e in container["env"]}.items() >= sources.items()
    assert "--environment-lock" not in templates[step_template("end")]["container"]["args"]
    run = pod_interpreter(s3_env, tmp_path, UV_HTTP_RETRIES="0").run(wt, name="wf1")
    assert run.phase is NodePhase.SUCCEEDED, run.phases()
    import headwater

    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", root)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "reader-home"))
    monkeypatch.setenv("HEADWATER_USER", USER)
    headwater.default_namespace()
    got = headwater.Run("PypiFlow/argo-wf1")
    assert got.successful
    assert [got[s].task["tinylib"].data for s in ("start", "two", "end")] == ["1.0.0", "2.0.0", None]
    assert json.loads(got["two"].task.metadata_dict["environment"])["packages"] == {"tinylib": "2.0.0"}
    assert "environment" not in got["end"].task.metadata_dict
