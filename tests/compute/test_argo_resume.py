"""`argo-workflows resume`: a failed Argo run resumed by the Workflow that `resume --only-json`
prints, run through the test interpreter (tests/argo_interpreter.py) against the session's S3
server. Tasks upstream of the failure are clones (no new execution), the failed task and
everything after it run again, and the client sees what a local `resume` gives; a failure inside a
nested foreach after a switch resumes the same way, the resumed run taking its origin's branch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from argo_harness import argo_env, by_step, compile_and_store, pod_interpreter
from argo_interpreter import NodePhase
from flowrun import USER, run_flow
from s3server import S3Server

FLOW = "argo_resume_flow.py"
CLS = "ArgoResumeFlow"
#: Every task of the flow run with size=4 (compiled task ids).
ALL_TASKS = {("start", "1"), ("a", "1"), ("b", "1"), ("join_ab", "1"), ("fan", "1"), ("work", "1-0"), ("work", "1-1"),
             ("work", "1-2"), ("work", "1-3"), ("join_work", "1"), ("end", "1")}


def _effects(path: Path) -> list[str]:
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def _resume_json(root: str, run_id: str, s3_env: S3Server, tmp_path: Path, flow: str = FLOW) -> dict:
    r = run_flow(flow, "--datastore-root", root, "argo-workflows", "resume", run_id, "--only-json",
                 root=tmp_path / ".unused", env=argo_env(s3_env, tmp_path))
    assert r.returncode == 0, r.output
    return json.loads(r.stdout)


def _open_argo_root(root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import headwater

    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", root)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "reader-home"))
    monkeypatch.setenv("HEADWATER_USER", USER)
    headwater.default_namespace()
    return headwater


def test_failed_run_resumes_cloning_what_succeeded(s3_bucket: str, s3_env: S3Server, tmp_path: Path, use_root,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = f"s3://{s3_bucket}/argo"
    wt = compile_and_store(FLOW, root, s3_env, tmp_path)
    side, marker = tmp_path / "side.txt", tmp_path / "fail.marker"
    marker.touch()
    interp = pod_interpreter(s3_env, tmp_path, HW_SIDE_EFFECTS=str(side), HW_FAIL_MARKER=str(marker))
    first = interp.run(wt, {"size": "4"}, name="wf1")
    assert first.phase is NodePhase.FAILED
    failed = [n for n, node in first.nodes.items() if node.phase is NodePhase.FAILED and not node.children]
    assert failed == ["wf1.work(1:1).work"]
    assert sorted(_effects(side)) == sorted(["start", "a", "b", "join_ab", "fan", "work 0", "work 1", "work 2", "work 3"])

    marker.unlink()  # the cause is fixed
    workflow = _resume_json(root, "argo-wf1", s3_env, tmp_path)
    from headwater.compute.argo.submit import workflow_from_template

    # The builder's output, which tests/compute/test_argo_compile.py validates against the strict schema.
    assert workflow == workflow_from_template(wt["metadata"]["name"], "default", {"origin-run-id": "argo-wf1"})
    assert workflow["spec"] == {"workflowTemplateRef": {"name": wt["metadata"]["name"]},
                                "arguments": {"parameters": [{"name": "origin-run-id", "value": "argo-wf1"}]}}
    second = interp.run(workflow, name="wf2", workflow_templates=[wt])
    assert second.phase is NodePhase.SUCCEEDED, second.phases()
    # Only the failed task and what follows it executed; every task upstream of it is a clone.
    assert _effects(side) == ["work 1", "join_work", "end"]

    # A local run that fails the same way and a local `resume` of it: the client must see the same.
    env = {"HW_FAIL_MARKER": str(marker), "HW_SIDE_EFFECTS": str(tmp_path / "local-side.txt")}
    marker.touch()
    local_root = tmp_path / ".headwater"
    assert run_flow(FLOW, "run", "--size", "4", root=local_root, env=env).returncode == 1
    marker.unlink()
    resumed = run_flow(FLOW, "resume", "--run-id-file", str(tmp_path / "local.id"), root=local_root, env=env)
    assert resumed.returncode == 0, resumed.output
    use_root(local_root)
    import headwater

    want = by_step(headwater.Run(f"{CLS}/{(tmp_path / 'local.id').read_text()}"))

    hw = _open_argo_root(root, tmp_path, monkeypatch)
    run, origin = hw.Run(f"{CLS}/argo-wf2"), hw.Run(f"{CLS}/argo-wf1")
    assert run.successful and not origin.successful
    assert run.origin_pathspec == f"{CLS}/argo-wf1"
    assert by_step(run) == want
    assert run["start"].task.data.size == 4  # the origin's parameters, as a local resume takes them
    executed = {("work", "1-1"), ("join_work", "1"), ("end", "1")}
    for step in run:
        for task in step:
            key = (step.id, task.id)
            assert task.metadata_dict["origin-run-id"] == "argo-wf1"
            if key in executed:
                assert task.origin_pathspec is None, key
            else:
                assert task.origin_pathspec == f"{CLS}/argo-wf1/{step.id}/{task.id}", key
                assert task.metadata_dict["origin-task-id"] == task.id
    assert {(s.id, t.id) for s in run for t in s} == ALL_TASKS
    # Clones reference the origin's artifacts: no data was copied.
    assert run["join_ab"].task["offset"].sha == origin["join_ab"].task["offset"].sha
    assert run["join_work"].task.data.origin_seen  # an executed task of a resumed run sees its origin


def test_resuming_a_successful_run_clones_every_task(s3_bucket: str, s3_env: S3Server, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = f"s3://{s3_bucket}/argo-ok"
    wt = compile_and_store(FLOW, root, s3_env, tmp_path)
    side = tmp_path / "side.txt"
    interp = pod_interpreter(s3_env, tmp_path, HW_SIDE_EFFECTS=str(side))
    assert interp.run(wt, {"size": "4"}, name="ok1").phase is NodePhase.SUCCEEDED
    _effects(side)
    workflow = _resume_json(root, "argo-ok1", s3_env, tmp_path)
    assert interp.run(workflow, name="ok2", workflow_templates=[wt]).phase is NodePhase.SUCCEEDED
    assert _effects(side) == []  # nothing executed

    hw = _open_argo_root(root, tmp_path, monkeypatch)
    run, origin = hw.Run(f"{CLS}/argo-ok2"), hw.Run(f"{CLS}/argo-ok1")
    assert run.successful  # the cloned end step ended the run
    assert {(s.id, t.id): t.origin_pathspec for s in run for t in s} == {
        (s, t): f"{CLS}/argo-ok1/{s}/{t}" for s, t in ALL_TASKS}
    assert by_step(run) == by_step(origin)


def test_resume_of_a_run_that_does_not_exist_names_it(s3_bucket: str, s3_env: S3Server, tmp_path: Path) -> None:
    root = f"s3://{s3_bucket}/argo"
    wt = compile_and_store(FLOW, root, s3_env, tmp_path)
    # Submitted past the CLI's check (kubectl, the Argo UI): the run's init task names the bad origin.
    run = pod_interpreter(s3_env, tmp_path).run(wt, {"origin-run-id": "argo-nope"}, name="bad")
    assert run.phase is NodePhase.FAILED and run.ran == ["bad.init-params"]
    assert f"Flow {CLS} has no run 'argo-nope' to resume" in run.node("bad.init-params").stderr
    r = run_flow(FLOW, "--datastore-root", f"s3://{s3_bucket}/argo", "argo-workflows", "resume", "argo-nope",
                 "--only-json", root=tmp_path / ".unused", env=argo_env(s3_env, tmp_path))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"Flow {CLS} has no run 'argo-nope' to resume" in r.stderr
    assert "RUN_ID" in r.stderr  # the hint names what to change
    assert r.stdout == ""


SWITCH_FLOW = "argo_resume_switch_flow.py"
SWITCH_CLS = "ArgoResumeSwitchFlow"


def test_a_failure_in_a_nested_foreach_after_a_switch_is_resumed(s3_bucket: str, s3_env: S3Server, tmp_path: Path,
                                                                 use_root, monkeypatch: pytest.MonkeyPatch) -> None:
    root = f"s3://{s3_bucket}/argo-switch"
    wt = compile_and_store(SWITCH_FLOW, root, s3_env, tmp_path)
    side, marker = tmp_path / "side.txt", tmp_path / "fail.marker"
    marker.touch()
    interp = pod_interpreter(s3_env, tmp_path, HW_SIDE_EFFECTS=str(side), HW_FAIL_MARKER=str(marker))
    first = interp.run(wt, {}, name="sw1")
    assert first.phase is NodePhase.FAILED
    failed = [n for n, node in first.nodes.items() if node.phase is NodePhase.FAILED and not node.children]
    assert len(failed) == 1 and failed[0].endswith(".inner-body"), failed
    ran_first = _effects(side)
    assert "deep" in ran_first and "shallow" not in ran_first and "inner_body 1y" in ran_first

    marker.unlink()  # the cause is fixed; a re-executed switch would now take the other branch
    workflow = _resume_json(root, "argo-sw1", s3_env, tmp_path, SWITCH_FLOW)
    resumer = pod_interpreter(s3_env, tmp_path, HW_SIDE_EFFECTS=str(side), HW_FAIL_MARKER=str(marker),
                              HW_ROUTE="shallow")
    second = resumer.run(workflow, name="sw2", workflow_templates=[wt])
    assert second.phase is NodePhase.SUCCEEDED, second.phases()
    # Only the failed task and what follows it executed; the switch and its branch are clones.
    assert _effects(side) == ["inner_body 1y", "inner_join 1", "outer_join", "end"]

    # The same failure and resume run locally: the client must see the same artifacts.
    env = {"HW_FAIL_MARKER": str(marker), "HW_SIDE_EFFECTS": str(tmp_path / "local-side.txt")}
    marker.touch()
    local_root = tmp_path / ".headwater"
    assert run_flow(SWITCH_FLOW, "run", root=local_root, env=env).returncode == 1
    marker.unlink()
    resumed = run_flow(SWITCH_FLOW, "resume", "--run-id-file", str(tmp_path / "local.id"), root=local_root,
                       env={**env, "HW_ROUTE": "shallow"})
    assert resumed.returncode == 0, resumed.output
    use_root(local_root)
    import headwater

    want = by_step(headwater.Run(f"{SWITCH_CLS}/{(tmp_path / 'local.id').read_text()}"))

    hw = _open_argo_root(root, tmp_path, monkeypatch)
    run = hw.Run(f"{SWITCH_CLS}/argo-sw2")
    assert run.successful and run.origin_pathspec == f"{SWITCH_CLS}/argo-sw1"
    assert by_step(run) == want
    assert run.data.summary == "deep: 0X,0Y,1X,1Y"
    steps = {s.id for s in run}
    assert "deep" in steps and "shallow" not in steps  # the same branch as the origin
    executed = {(s.id, t.id) for s in run for t in s if t.origin_pathspec is None}
    assert {s for s, _ in executed} == {"inner_body", "inner_join", "outer_join", "end"}
    assert len(executed) == 4
    (failed_again,) = [t for t in run["inner_body"] if t.origin_pathspec is None]
    assert failed_again.data.pair == "1Y"
