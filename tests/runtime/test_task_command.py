"""The orchestrator's task command: a whole flow driven only by ``init`` and ``step``
subprocesses (Metaflow's arguments), in the order an orchestrator would run them, on the S3
datastore (a real moto server); the client sees what a local ``run`` produces. Also a failing
attempt, a retry, and ``headwater.runtime.bootstrap`` from a stored code package."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowrun import FLOWS, USER
from headwater.flow.graph import FANOUT, NodeKind
from headwater import plan

FLOW = FLOWS / "orchestrated_flow.py"
SRC = Path(__file__).resolve().parents[2] / "src"


def _env(root: str, s3_env: dict[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({"HEADWATER_DATASTORE_ROOT": root, "HEADWATER_USER": USER, "HEADWATER_HOME": str(home),
                "PYTHONUNBUFFERED": "1", **s3_env})
    return env


def _graph(flow: Path, name: str):
    spec = importlib.util.spec_from_file_location(flow.stem, flow)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)._graph


class Orchestrator:
    """Runs each task as its own ``python flow.py step`` process once its inputs are done,
    computing task ids and input paths with ``headwater.plan`` and reading ``--output-dir``."""

    def __init__(self, root: str, env: dict[str, str], work: Path, run_id: str, flow: Path = FLOW,
                 name: str = "OrchestratedFlow"):
        self.root, self.env, self.work, self.run_id, self.flow = root, env, work, run_id, flow
        self.graph = _graph(flow, name)
        self.commands: list[list[str]] = []
        self.splits: dict[tuple[str, str], int] = {}  # (foreach step, task id) -> num_splits

    def call(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(self.flow), "--datastore=s3", "--datastore-root", self.root, *args]
        self.commands.append(cmd)
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=cwd or self.work, timeout=120)

    def step(self, step: str, task_id: str, inputs: list[str], split_index: int | None = None,
             retry_count: int = 0) -> dict[str, str]:
        out = self.work / f"out-{self.run_id}-{step}-{task_id}-{retry_count}"
        args = ["step", step, "--run-id", self.run_id, "--task-id", task_id,
                "--input-paths", plan.format_input_paths(inputs), "--retry-count", str(retry_count),
                "--max-user-code-retries", "1", "--output-dir", str(out)]
        if split_index is not None:
            args += ["--split-index", str(split_index)]
        p = self.call(*args)
        if p.returncode != 0:
            assert retry_count == 0, p.stdout + p.stderr
            return self.step(step, task_id, inputs, split_index, retry_count + 1)
        return {f.name: f.read_text() for f in out.iterdir()}

    def run(self, *params: str) -> None:
        init = self.call("init", "--run-id", self.run_id, *params)
        assert init.returncode == 0, init.stdout + init.stderr
        self._walk(self.graph.start, plan.FIRST_TASK_ID, [f"{self.run_id}/_parameters/0"], None, {})

    def _walk(self, step: str, task_id: str, inputs: list[str], split_index: int | None,
              arrived: dict[tuple[str, str], dict[str, str]]) -> None:
        outputs = self.step(step, task_id, inputs, split_index)
        assert outputs["task_id"] == task_id
        node = self.graph[step]
        me = f"{self.run_id}/{step}/{task_id}"
        if node.kind is NodeKind.END:
            return
        if node.kind is NodeKind.FOREACH:
            n = int(outputs["num_splits"])
            assert json.loads(outputs["splits.json"]) == plan.split_indexes(n)
            self.splits[(step, task_id)] = n
            for i in plan.split_indexes(n):
                self._walk(node.out_funcs[0], plan.child_task_id(task_id, i), [me], i, arrived)
            return
        if node.kind is NodeKind.SWITCH:
            target = outputs["next_step"]
            self._walk(target, plan.next_task_id(step, task_id, target), [me], None, arrived)
            return
        for target in node.out_funcs:
            tnode = self.graph[target]
            if tnode.kind is not NodeKind.JOIN:
                self._walk(target, plan.next_task_id(step, task_id, target), [me], None, arrived)
                continue
            split = tnode.split_parents[-1]
            if self.graph[split].kind in FANOUT:
                split_task, _, index = task_id.rpartition("-")
                waiting = arrived.setdefault((target, split_task), {})
                waiting[index] = me
                n = self.splits[(split, split_task)]
                if len(waiting) == n:
                    join_inputs = plan.foreach_join_inputs(self.run_id, step, split_task, n)
                    assert sorted(join_inputs) == sorted(waiting.values())
                    self._walk(target, plan.join_task_id(split_task), join_inputs, None, arrived)
            else:
                waiting = arrived.setdefault((target, task_id), {})
                waiting[step] = task_id
                if all(s in waiting for s in tnode.in_funcs):
                    join_inputs = plan.branch_join_inputs(self.run_id, [(s, waiting[s]) for s in tnode.in_funcs])
                    self._walk(target, task_id, join_inputs, None, arrived)


@pytest.fixture(scope="module")
def s3_root(s3_server, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str], Path]:
    work = tmp_path_factory.mktemp("orchestrated")
    root = f"s3://{s3_server.new_bucket()}/prod"
    return root, _env(root, s3_server.env(), work / "home"), work


@pytest.fixture(scope="module")
def runs(s3_root) -> dict[str, str]:
    root, env, work = s3_root
    local = subprocess.run([sys.executable, str(FLOW), "run", "--mode", "high", "--run-id-file", "local.id"],
                           capture_output=True, text=True, env=env, cwd=work, timeout=180)
    assert local.returncode == 0, local.stdout + local.stderr
    orch = Orchestrator(root, env, work, "argo-orchestrated-1")
    orch.run("--scale", "10")
    return {"local": (work / "local.id").read_text(), "orchestrated": orch.run_id}


@pytest.fixture
def client(s3_root, monkeypatch: pytest.MonkeyPatch):
    root, env, _ = s3_root
    for k in [k for k in os.environ if k.startswith("HEADWATER_")]:
        monkeypatch.delenv(k)
    for k, v in env.items():
        if k.startswith("HEADWATER_") or k.startswith("AWS_"):
            monkeypatch.setenv(k, v)
    import headwater

    headwater.namespace(None)
    return headwater


def _artifacts(run) -> dict[tuple[str, int], dict]:
    out = {}
    for step in run:
        for i, task in enumerate(sorted(step, key=lambda t: t.index if t.index is not None else 0)):
            out[(step.id, i)] = {a.id: a.data for a in task if a.id not in ("name",)}
    return out


def test_an_orchestrated_run_has_the_artifacts_of_a_local_run(runs, client):
    flow = client.Flow("OrchestratedFlow")
    local, orch = flow[runs["local"]], flow[runs["orchestrated"]]
    assert orch.successful and orch.finished and orch.data.result == "high 44"
    assert orch.status == "successful"
    assert _artifacts(orch) == _artifacts(local)
    assert sorted(t.id for t in orch["body"]) == ["1-0", "1-1", "1-2"]
    assert [t.id for t in orch["gather"]] == ["1"]


def test_a_committed_attempt_is_not_run_again(s3_root, runs):
    root, env, work = s3_root
    orch = Orchestrator(root, env, work, runs["orchestrated"])
    out = work / "again"
    p = orch.call("step", "fan", "--run-id", orch.run_id, "--task-id", "1", "--input-paths",
                  f"{orch.run_id}/join/1", "--output-dir", str(out))
    assert p.returncode == 0, p.stderr
    assert f"OrchestratedFlow/{orch.run_id}/fan/1 attempt 0 is already committed (ok)" in p.stderr
    assert (out / "num_splits").read_text() == "3"
    p = orch.call("step", "body", "--run-id", orch.run_id, "--task-id", "1-1", "--input-paths",
                  f"{orch.run_id}/fan/1", "--split-index", "1")
    assert p.returncode == 1 and "already committed (failed)" in p.stderr


def test_a_task_log_reaches_the_store(runs, client):
    task = client.Task(f"OrchestratedFlow/{runs['orchestrated']}/a/1")
    assert "branch a got scale 10" in task.stdout


def test_a_nested_foreach_runs_as_locally(s3_root, client):
    root, env, work = s3_root
    flow = FLOWS / "nested_foreach_flow.py"
    local = subprocess.run([sys.executable, str(flow), "run", "--run-id-file", "nested.id"],
                           capture_output=True, text=True, env=env, cwd=work, timeout=180)
    assert local.returncode == 0, local.stdout + local.stderr
    orch = Orchestrator(root, env, work, "argo-nested-1", flow, "NestedForeachFlow")
    orch.run()
    runs = client.Flow("NestedForeachFlow")
    local_run, orch_run = runs[(work / "nested.id").read_text()], runs[orch.run_id]
    assert orch_run.successful
    assert orch_run.data.stacks == local_run.data.stacks
    assert sorted(t.id for t in orch_run["inner_body"]) == ["1-0-0", "1-0-1", "1-1-0", "1-1-1", "1-2-0", "1-2-1"]
    assert sorted(t.id for t in orch_run["inner_join"]) == ["1-0", "1-1", "1-2"]


def test_a_failed_attempt_is_recorded_and_the_retry_succeeds(runs, client):
    body = client.Task(f"OrchestratedFlow/{runs['orchestrated']}/body/1-1")
    assert body.current_attempt == 1 and body.successful and body.data.seen_retry == 1
    first = client.Task(f"OrchestratedFlow/{runs['orchestrated']}/body/1-1", attempt=0)
    assert not first.successful
    assert "item 2 fails on its first attempt" in str(first.exception)


def test_a_failing_step_exits_non_zero(s3_root, runs):
    root, env, work = s3_root
    orch = Orchestrator(root, env, work, runs["orchestrated"])
    p = orch.call("step", "body", "--run-id", orch.run_id, "--task-id", "1-9", "--input-paths",
                  f"{orch.run_id}/fan/1", "--split-index", "1", "--retry-count", "0")
    assert p.returncode == 1
    assert "Step failure: Step body (task-id 1-9) failed." in p.stderr


def test_init_twice_is_safe_and_keeps_the_first_parameters(s3_root, runs, client):
    root, env, work = s3_root
    orch = Orchestrator(root, env, work, runs["orchestrated"])
    again = orch.call("init", "--run-id", orch.run_id, "--scale", "99")
    assert again.returncode == 0, again.stderr
    assert client.Run(f"OrchestratedFlow/{orch.run_id}").data.scale == 10


def test_bad_arguments_are_named(s3_root, runs):
    root, env, work = s3_root
    orch = Orchestrator(root, env, work, runs["orchestrated"])
    p = orch.call("step", "body", "--run-id", orch.run_id, "--task-id", "1-7", "--input-paths",
                  f"{orch.run_id}/fan/1", "--split-index", "7")
    assert p.returncode == 2
    assert "--split-index 7 is outside the foreach of step 'fan', which has 3 splits" in p.stderr
    p = orch.call("step", "end", "--run-id", orch.run_id, "--task-id", "1", "--input-paths",
                  f"{orch.run_id}/high/404")
    assert p.returncode == 2 and "has no successful attempt" in p.stderr


def test_init_takes_only_the_parameters_task_id(s3_root):
    root, env, work = s3_root
    p = Orchestrator(root, env, work, "argo-params-id").call("init", "--run-id", "argo-params-id", "--task-id", "7")
    assert p.returncode == 2
    assert "the parameters task of a run has the id '0'" in p.stderr


@pytest.mark.parametrize("value, expected", [
    ("r/a/1", [("r", "a", "1")]),
    ("r/a/1,r/b/1", [("r", "a", "1"), ("r", "b", "1")]),
    ("r/body/1-:0,1,2", [("r", "body", "1-0"), ("r", "body", "1-1"), ("r", "body", "1-2")]),
])
def test_input_paths_are_read_in_metaflow_forms(value, expected):
    assert plan.parse_input_paths(value) == expected


def test_compressed_input_paths_are_read():
    import base64
    import zlib

    text = "r/body/1-:" + ",".join(str(i) for i in range(300))
    value = "!" + base64.b64encode(zlib.compress(zlib.compress(text.encode()))).decode()
    assert plan.parse_input_paths(value)[299] == ("r", "body", "1-299")


def test_a_malformed_pathspec_is_named():
    with pytest.raises(ValueError, match="'r/a' is not a RUN/STEP/TASK pathspec"):
        plan.parse_input_paths("r/a")


def test_task_ids_follow_the_position():
    assert plan.child_task_id(plan.FIRST_TASK_ID, 2) == "1-2"
    assert plan.join_task_id("1-2") == "1-2"
    assert plan.next_task_id("a", "1-2", "b") == "1-2"
    assert plan.next_task_id("loop", "1", "loop") == "1_1"
    assert plan.next_task_id("loop", "1_1", "loop") == "1_2"
    assert plan.foreach_join_inputs("r", "body", "1", 2) == ["r/body/1-0", "r/body/1-1"]
    assert plan.branch_join_inputs("r", [("a", "1"), ("b", "1")]) == ["r/a/1", "r/b/1"]
    assert plan.format_input_paths(["r/a/1", "r/b/1"]) == "r/a/1,r/b/1"


def test_bootstrap_runs_a_task_from_the_stored_code_package(s3_root, runs, tmp_path, client):
    """A container's command: fetch the run's code package, then run the flow's CLI from it,
    in an empty working directory without the flow file."""
    root, env, work = s3_root
    from headwater.package.stored import run_package_fields
    from headwater.store import Datastore

    info = run_package_fields(Datastore(root).content, str(FLOW), None)["code_package"]
    empty = tmp_path / "container"
    empty.mkdir()
    run_id = runs["orchestrated"]
    cmd = [sys.executable, "-m", "headwater.runtime.bootstrap", "--datastore-root", root,
           "--package-key", info["key"], "--flow-file", info["script"], "--",
           "--datastore=s3", "--datastore-root", root, "step", "end", "--run-id", run_id, "--task-id", "boot",
           "--input-paths", f"{run_id}/high/1"]
    boot_env = {**env, "PYTHONPATH": str(SRC), "HEADWATER_CODE_CACHE": str(tmp_path / "cache")}
    p = subprocess.run(cmd, capture_output=True, text=True, env=boot_env, cwd=empty, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert list(empty.iterdir()) == []
    assert client.Task(f"OrchestratedFlow/{run_id}/end/boot").data.result == "high 44"
