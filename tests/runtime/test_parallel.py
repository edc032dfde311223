"""@parallel and self.next(num_parallel=N): gangs run for real through the CLI, checked through the client."""

from __future__ import annotations

import pytest
from flowrun import FLOWS, run_flow

from headwater import FlowSpec, parallel, step
from headwater.exceptions import LintErrors
from headwater.flow.graph import NodeKind, build_graph


def _run(use_root, r):
    from headwater import Flow

    use_root(r.root)
    return Flow("ParallelFlow").latest_run


def test_gang_runs_together_and_is_joined(tmp_path, launcher, use_root):
    r = run_flow("parallel_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher)
    assert r.returncode == 0, r.output
    run = _run(use_root, r)
    train = run["train"]
    assert sorted(t.id for t in train) == ["2", "2_node_1", "2_node_2"]
    assert train.control_task.id == "2"
    assert [t.id for t in train.control_tasks()] == ["2"]
    assert run["join"].control_task is None
    for t in train:
        node = t.data.info["node_index"]
        assert t.data.info == {"main_ip": "127.0.0.1", "num_nodes": 3, "node_index": node, "control_task_id": "2"}
        assert t.data.is_parallel is True
        assert t.data.my_input == node == t.index
        assert t.metadata_dict["parallel-world-size"] == "3"
        assert ("internal_task_type" in t.metadata_dict) == (t.id == "2")
    join = run["join"].task.data
    assert join.values == [100, 101, 102]
    assert join.inputs_seen == [0, 1, 2]
    assert len(join.pids) == 3  # one process per node
    end = run["end"].task.data
    assert end.end_is_parallel is False and end.end_parallel == ("127.0.0.1", 1, 0, None)
    assert "Starts a @parallel gang of 3 tasks." in r.stdout


def test_gang_larger_than_max_workers_runs_alone(tmp_path, use_root):
    r = run_flow("parallel_flow.py", "run", "--max-workers", "2", "--nodes", "4", root=tmp_path / ".headwater")
    assert r.returncode == 0, r.output
    assert _run(use_root, r)["join"].task.data.values == [100, 101, 102, 103]


def test_failing_node_kills_its_gang_and_fails_the_step(tmp_path, launcher, use_root):
    r = run_flow("parallel_flow.py", "run", "--fail_node", "1", root=tmp_path / ".headwater", launcher=launcher,
                 timeout=50)  # the other nodes sleep 60 s unless they are killed
    assert r.returncode == 1
    assert "node 1 fails" in r.stderr
    run = _run(use_root, r)
    assert not run.successful
    tasks = {t.id: t for t in run["train"]}
    assert "node 1 fails" in str(tasks["2_node_1"].exception)
    for tid in ("2", "2_node_2"):
        assert not tasks[tid].successful
        assert "task 2_node_1 of its @parallel gang failed" in str(tasks[tid].exception)
    assert "join" not in [s.id for s in run]


def test_retry_runs_the_whole_gang_again(tmp_path, use_root):
    r = run_flow("parallel_flow.py", "--with", "retry:times=1,minutes_between_retries=0", "run",
                 "--fail_node", "2", "--fail_attempts", "1", root=tmp_path / ".headwater", timeout=50)
    assert r.returncode == 0, r.output
    assert "retrying the whole @parallel gang (attempt 2 of 2)" in r.stdout
    run = _run(use_root, r)
    assert {t.id: t.current_attempt for t in run["train"]} == {"2": 1, "2_node_1": 1, "2_node_2": 1}
    assert run["join"].task.data.values == [100, 101, 102]


def test_bad_num_parallel_value_is_reported(tmp_path):
    r = run_flow("parallel_flow.py", "run", "--nodes", "0", root=tmp_path / ".headwater")
    assert r.returncode == 1
    assert "num_parallel=0 must be a positive integer" in r.stderr


def test_lint_reports_parallel_mistakes_with_lines(tmp_path):
    r = run_flow("bad_parallel_flow.py", "check", root=tmp_path / ".headwater")
    assert r.returncode != 0
    src = (FLOWS / "bad_parallel_flow.py").read_text().splitlines()
    line = {text: src.index(text) + 1 for text in (
        "        self.next(self.plain, num_parallel=2)", "        self.next(self.gang)", "        self.next(self.after)")}
    out = r.stderr
    assert f"bad_parallel_flow.py:{line['        self.next(self.plain, num_parallel=2)']}" in out
    assert "step 'plain' has no @parallel decorator" in out
    assert f"bad_parallel_flow.py:{line['        self.next(self.gang)']}" in out
    assert "step 'plain' reaches it without num_parallel=" in out
    assert f"bad_parallel_flow.py:{line['        self.next(self.after)']}" in out
    assert "@parallel step 'gang' must be followed by a join step" in out


def test_graph_reads_num_parallel():
    class Literal(FlowSpec):
        @step
        def start(self):
            self.next(self.train, num_parallel=4)

        @parallel
        @step
        def train(self):
            self.next(self.join)

        @step
        def join(self, inputs):
            self.next(self.end)

        @step
        def end(self):
            pass

    graph = build_graph(Literal)
    start = graph["start"]
    assert start.kind is NodeKind.PARALLEL and start.type == "foreach" and start.num_parallel == 4
    assert graph.to_info()["steps"]["start"]["type"] == "split-parallel"
    assert graph["train"].is_inside_foreach and graph["start"].matching_join == "join"
    assert graph.lint() == []


@pytest.mark.parametrize("call, match", [
    ("self.next(self.train, num_parallel=0)", r"num_parallel=0 must be a positive integer"),
    ("self.next(self.train, num_parallel=2, foreach='x')", r"cannot be combined with foreach= or condition="),
    ("self.next(self.train, self.end, num_parallel=2)", r"goes to exactly one @parallel step"),
])
def test_invalid_num_parallel_calls(tmp_path, call, match):
    import importlib.util

    path = tmp_path / "bad_call_flow.py"
    path.write_text(
        "from headwater import FlowSpec, parallel, step\n"
        "class BadCall(FlowSpec):\n"
        "    @step\n    def start(self):\n"
        f"        {call}\n"
        "    @parallel\n    @step\n    def train(self):\n        self.next(self.join)\n"
        "    @step\n    def join(self, inputs):\n        self.next(self.end)\n"
        "    @step\n    def end(self):\n        pass\n"
    )
    spec = importlib.util.spec_from_file_location("bad_call_flow", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(LintErrors, match=match):
        build_graph(module.BadCall).validate()


def test_gang_that_can_never_fit_the_machine_fails_before_it_starts(tmp_path):
    import json

    r = run_flow("parallel_flow.py", "--with", "resources:cpu=2", "run", root=tmp_path / ".headwater",
                 env={"HEADWATER_MACHINE": json.dumps({"cpus": 5, "gpus": 0})})
    assert r.returncode == 1
    assert "The @parallel step 'train' starts 3 tasks together, each with @resources(cpu=2, gpu=0)" in r.stderr
    assert "/train/2] Task is starting" not in r.stdout


def test_gang_that_fits_the_machine_runs(tmp_path, use_root):
    import json

    r = run_flow("parallel_flow.py", "--with", "resources:cpu=2", "run", root=tmp_path / ".headwater",
                 env={"HEADWATER_MACHINE": json.dumps({"cpus": 6, "gpus": 0})})
    assert r.returncode == 0, r.output
    assert _run(use_root, r)["join"].task.data.values == [100, 101, 102]
