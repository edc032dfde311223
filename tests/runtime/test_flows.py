"""Flows run for real through the CLI (under both launchers), checked through the client."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowrun import USER, run_flow

LAUNCHERS = ["fork", "subprocess"]


def _run_once(tmp_path_factory, name: str, flow: str, launcher: str, *args: str, **kw):
    root = tmp_path_factory.mktemp(f"{name}-{launcher}") / ".headwater"
    r = run_flow(flow, *args, root=root, launcher=launcher, **kw)
    return r


@pytest.fixture(scope="module", params=LAUNCHERS)
def linear(request, tmp_path_factory):
    return _run_once(tmp_path_factory, "linear", "linear_flow.py", request.param, "run", "--tag", "t1")


@pytest.fixture(scope="module", params=LAUNCHERS)
def branch(request, tmp_path_factory):
    return _run_once(tmp_path_factory, "branch", "branch_flow.py", request.param, "run")


@pytest.fixture(scope="module", params=LAUNCHERS)
def foreach(request, tmp_path_factory):
    return _run_once(tmp_path_factory, "foreach", "foreach_flow.py", request.param, "run")


@pytest.fixture(scope="module", params=LAUNCHERS)
def switch(request, tmp_path_factory):
    return _run_once(tmp_path_factory, "switch", "switch_flow.py", request.param, "run")


def _client_run(use_root, r, flow_name):
    from headwater import Flow

    assert r.returncode == 0, r.output
    use_root(r.root)
    return Flow(flow_name).latest_run


def test_linear_artifacts(linear, use_root):
    run = _client_run(use_root, linear, "LinearFlow")
    assert run.successful and run.finished
    assert run.data.z == 7
    assert run["middle"].task.data.y == 6
    assert run["middle"].task.data.secret_seen == "hidden"
    start = run["start"].task
    assert start.data.MULTIPLIER == 3  # class constants are artifacts
    assert start.data._secret == "hidden"
    names = {a.id for a in start}
    assert "x" in names and "_secret" not in names
    assert "hello from start" in linear.stdout
    assert [s.id for s in run] == ["end", "middle", "start"] or {s.id for s in run} == {"start", "middle", "end"}


def test_linear_current(linear, use_root):
    run = _client_run(use_root, linear, "LinearFlow")
    info = run["start"].task.data.info
    assert info["flow_name"] == "LinearFlow"
    assert info["run_id"] == run.id
    assert info["step_name"] == "start"
    assert info["pathspec"] == f"LinearFlow/{run.id}/start/{info['task_id']}"
    assert info["retry_count"] == 0 and info["origin_run_id"] is None
    assert info["is_running_flow"] is True
    assert info["namespace"] == f"user:{USER}" and info["username"] == USER
    assert info["parameter_names"] == [] and info["graph_start"] == "start"


def test_linear_tags_and_namespace(linear, use_root):
    from headwater import Flow, Run, namespace

    run = _client_run(use_root, linear, "LinearFlow")
    assert "t1" in run.tags and f"user:{USER}" in run.system_tags
    assert any(t.startswith("python_version:") for t in run.system_tags)
    namespace("user:someone-else")
    try:
        from headwater.exceptions import HeadwaterNamespaceMismatch

        with pytest.raises(HeadwaterNamespaceMismatch, match="namespace"):
            Flow("LinearFlow")  # as in Metaflow: a flow is in a namespace if one of its runs is
        with pytest.raises(HeadwaterNamespaceMismatch, match="namespace"):
            Run(f"LinearFlow/{run.id}")
        namespace(None)
        assert Flow("LinearFlow").latest_run.id == run.id
    finally:
        namespace(f"user:{USER}")


def test_console_prefix(linear):
    assert "/start/" in linear.stdout and "Task is starting." in linear.stdout
    assert "Done!" in linear.stdout


def test_branch_merge(branch, use_root):
    run = _client_run(use_root, branch, "BranchFlow")
    join = run["join"].task.data
    assert join.before_merge is False  # a join inherits nothing until merged
    assert join.common == "same" and join.from_a == 1 and join.from_b == 2
    assert join.conflict == 3 and join.names == [1, 2]
    assert run.data.total == 6


def test_merge_conflict_fails(tmp_path, launcher, use_root):
    r = run_flow("conflict_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher)
    assert r.returncode != 0
    assert "'value'" in r.output and "Step failure: Step join" in r.stderr
    assert "Traceback" not in r.output


def test_foreach_order_and_nesting(foreach, use_root):
    run = _client_run(use_root, foreach, "ForeachFlow")
    letters = list("abcdefghijkl")
    join = run["join"].task.data
    assert join.letters == letters  # index order, not completion order
    assert join.all_pairs == [(c, i) for c in letters for i in (1, 2)]
    bodies = {t.data.idx: t for t in run["body"].tasks()}
    assert sorted(bodies) == list(range(12))
    assert bodies[3].data.letter == "d" and bodies[3].index == 3
    assert bodies[3].data.stack == [(3, 12, "d")]
    inner = [t.data.stack for t in run["inner_body"].tasks()]
    assert sorted(inner)[0] == [(0, 12, "a"), (0, 2, 1)]  # each level's item itself, as Metaflow
    assert "foreach: 12/12 done" in foreach.stdout  # progress instead of a wall of lines


def test_switch_and_loop(switch, use_root):
    run = _client_run(use_root, switch, "SwitchFlow")
    assert run.data.result == "went high"
    assert len(list(run["loop"].tasks())) == 3
    assert "low" not in {s.id for s in run}


def test_switch_other_case(tmp_path, use_root):
    r = run_flow("switch_flow.py", "run", "--mode", "low", "--limit", "1", root=tmp_path / ".headwater")
    run = _client_run(use_root, r, "SwitchFlow")
    assert run.data.result == "went low" and len(list(run["loop"].tasks())) == 1


def test_switch_unmatched_value(tmp_path, launcher, use_root):
    from headwater import Flow

    r = run_flow("switch_flow.py", "run", "--mode", "sideways", root=tmp_path / ".headwater", launcher=launcher)
    assert r.returncode != 0
    message = ("Switch condition variable 'choice' has value 'sideways' which is not in the available cases: "
               "['high', 'low']")  # Metaflow's words, raised by self.next() inside the step
    assert f"RuntimeError: {message}" in r.stderr
    assert "Step failure: Step route" in r.stderr
    use_root(r.root)
    route = Flow("SwitchFlow").latest_run["route"].task
    assert (route.exception.type, route.exception.message) == ("builtins.RuntimeError", message)
    assert 'self.next({"high": self.high, "low": self.low}, condition="choice")' in route.exception.stacktrace


def test_switch_without_its_condition_variable(tmp_path):
    flow = tmp_path / "nocond_flow.py"
    flow.write_text(
        "from headwater import FlowSpec, step\n\n\n"
        "class NoCondFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n"
        "        self.next({'a': self.a, 'b': self.b}, condition='pick')\n\n"
        "    @step\n    def a(self):\n        self.next(self.end)\n\n"
        "    @step\n    def b(self):\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n\n"
        "if __name__ == '__main__':\n    NoCondFlow()\n")
    r = run_flow(flow, "run", root=tmp_path / ".headwater")
    assert r.returncode == 1
    assert "Condition variable self.pick in step 'start' does not exist." in r.stderr
    assert "Set self.pick in this step before calling self.next()." in r.stderr


def test_switch_loop_lineage(switch, use_root):
    # As Metaflow's client: every task of each neighbouring step, so a loop task is its own parent and child.
    run = _client_run(use_root, switch, "SwitchFlow")
    loops = sorted(t.pathspec for t in run["loop"].tasks())
    start, route, high = run["start"].task, run["route"].task, run["high"].task
    for task in run["loop"].tasks():
        assert sorted(task.parent_task_pathspecs) == sorted([start.pathspec, *loops])
        assert sorted(task.child_task_pathspecs) == sorted([*loops, route.pathspec])
        assert task.pathspec in {t.pathspec for t in task.parent_tasks}
    assert sorted(route.parent_task_pathspecs) == loops
    assert list(route.child_task_pathspecs) == [high.pathspec]  # the case that ran; no 'low' task exists
    assert list(high.child_tasks) == [run["end"].task]
    # Steps, as Metaflow's (from the graph); a case that never ran is left out (Metaflow's raises).
    assert [s.id for s in run["loop"].parent_steps] == ["start", "loop"]
    assert [s.id for s in run["loop"].child_steps] == ["loop", "route"]
    assert [s.id for s in run["route"].child_steps] == ["high"]


def test_parameters(tmp_path, launcher, use_root):
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes\n")
    r = run_flow("params_flow.py", "run", "--who", "bob", "--count", "4", "--loud", "true",
                 "--config", '{"b": [1, 2]}', "--notes", str(notes), root=tmp_path / ".headwater",
                 launcher=launcher, env={"HEADWATER_RUN_RATIO": "0.25", "HEADWATER_RUN_COUNT": "9"})
    run = _client_run(use_root, r, "ParamsFlow")
    assert run.data.seen == {"who": "bob", "count": 4, "ratio": 0.25, "loud": True, "config": {"b": [1, 2]},
                             "seed": len("ParamsFlow"), "fruits": ["apple", "pear"], "notes": "some notes\n"}
    assert "not modifiable" in run["start"].task.data.tried_write
    assert run["start"].task.data.count == 4  # parameters are in every task's data
    assert run.data.greeting == "HELLO bob"


def test_parameter_defaults(tmp_path, use_root):
    r = run_flow("params_flow.py", "run", root=tmp_path / ".headwater")
    run = _client_run(use_root, r, "ParamsFlow")
    assert run.data.seen["count"] == 2 and run.data.seen["config"] == {"a": 1}
    assert run.data.seen["notes"] is None and run.data.seen["loud"] is False


@pytest.mark.parametrize("args,needle", [
    (["--count", "abc"], "'abc' is not a valid integer"),
    (["--ratio", "x"], "'x' is not a valid float"),
    (["--config", "{bad"], "not valid JSON"),
    (["--notes", "/no/such/file"], "cannot read '/no/such/file'"),
])
def test_bad_parameter_values(tmp_path, args, needle):
    root = tmp_path / ".headwater"
    r = run_flow("params_flow.py", "run", *args, root=root)
    assert r.returncode != 0
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (root / "runs" / "ParamsFlow").exists() or not any((root / "runs" / "ParamsFlow").iterdir())


def test_help_lists_parameters(tmp_path):
    r = run_flow("params_flow.py", "run", "--help", root=tmp_path / ".headwater")
    assert r.returncode == 0
    for text in ("--who", "Whom to greet", "--count", "--loud", "--config", "--notes", "A text file"):
        assert text in r.stdout


def test_failure_kills_siblings(tmp_path, launcher, use_root):
    from headwater import Flow

    r = run_flow("failing_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher, timeout=60)
    assert r.returncode == 1
    assert "Step failure: Step work" in r.stderr and "boom in task 2" in r.output
    use_root(r.root)
    run = Flow("FailingFlow").latest_run
    assert run.successful is False
    failed = [t for t in run["work"].tasks() if not t.successful]
    assert any("boom in task 2" in str(t.exception) for t in failed)
    # the sleeping siblings were killed before they could commit
    assert all(not t.successful for t in run["work"].tasks())


def test_unpicklable_artifact(tmp_path, launcher):
    r = run_flow("failing_flow.py", "run", "--what", "unpicklable", root=tmp_path / ".headwater", launcher=launcher)
    assert r.returncode == 1
    assert "'handle'" in r.output and "'work'" in r.output and "cannot be pickled" in r.output


def test_max_num_splits(tmp_path, use_root):
    from headwater import Flow

    r = run_flow("failing_flow.py", "run", "--what", "splits", root=tmp_path / ".headwater")
    assert r.returncode == 1
    assert ("Foreach in step start yielded 150 child steps which is more than the current maximum of 100 children. "
            "You can raise the maximum with the --max-num-splits option.") in r.stderr
    # As in Metaflow the split task itself succeeded (its artifacts kept, nothing in its stderr); the run failed.
    use_root(r.root)
    run = Flow("FailingFlow").latest_run
    start = run["start"].task
    assert start.successful and start.exception is None and start.stderr == ""
    assert len(start.data.items) == 150
    assert not run.successful and [s.id for s in run] == ["start"]
    r2 = run_flow("failing_flow.py", "run", "--what", "splits", "--max-num-splits", "200", "--max-workers", "4",
                  root=tmp_path / ".headwater")
    assert r2.returncode == 0, r2.output


def test_run_id_file(tmp_path, use_root):
    from headwater import Flow

    idf = tmp_path / "rid"
    r = run_flow("linear_flow.py", "run", "--run-id-file", str(idf), root=tmp_path / ".headwater")
    assert r.returncode == 0
    use_root(r.root)
    assert Flow("LinearFlow").latest_run.id == idf.read_text()


def test_logs_streamed_to_files(linear):
    logs = list(Path(linear.root).glob("runs/LinearFlow/*/start/*/0.stdout"))
    assert logs and "hello from start" in logs[0].read_text()


def test_files_per_trivial_task(linear):
    run_dir = next(Path(linear.root).glob("runs/LinearFlow/*"))
    task_dirs = [p for p in run_dir.glob("*/*") if p.is_dir()]
    files = [f for d in task_dirs for f in d.iterdir()]
    assert len(files) <= 3 * len(task_dirs)
    assert not list(Path(linear.root).glob("blobs/*/*"))  # small artifacts live inline


def test_show_and_check(tmp_path):
    r = run_flow("branch_flow.py", "show", root=tmp_path / ".headwater")
    assert r.returncode == 0 and "start" in r.stdout and "join" in r.stdout
    r = run_flow("branch_flow.py", "check", root=tmp_path / ".headwater")
    assert r.returncode == 0 and "looks good" in r.stderr


def test_invalid_graph_refused(tmp_path):
    root = tmp_path / ".headwater"
    for cmd in ("check", "run"):
        r = run_flow("bad_graph_flow.py", cmd, root=root)
        assert r.returncode == 1, r.output
        assert "middel" in r.stderr and "bad_graph_flow.py:" in r.stderr
        assert "Traceback" not in r.stderr
    assert not (root / "runs").exists()


def test_switch_inside_split_branch(tmp_path, use_root):
    r = run_flow("switch_in_branch_flow.py", "run", root=tmp_path / ".headwater")
    run = _client_run(use_root, r, "SwitchInBranchFlow")
    assert run["join"].task.data.sides == ["left", "b"]
    assert run["join"].task.data.from_a == "left"


def test_foreach_over_a_dict_takes_keys_in_iteration_order(tmp_path, use_root):
    r = run_flow("dict_foreach_flow.py", "run", root=tmp_path / ".headwater")
    run = _client_run(use_root, r, "DictForeachFlow")
    assert run["join"].task.data.keys == [10, 20, 30]


def test_input_and_index_in_every_step_of_a_foreach(tmp_path, launcher, use_root):
    r = run_flow("foreach_chain_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher)
    run = _client_run(use_root, r, "ForeachChainFlow")
    seen = sorted(t.data.seen for t in run["body2"])
    assert seen == [(0, "x", [(0, 3, "x")]), (1, "y", [(1, 3, "y")]), (2, "z", [(2, 3, "z")])]
    assert run["join"].task.data.from_inputs == [(0, "x"), (1, "y"), (2, "z")]
