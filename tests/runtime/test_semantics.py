"""Results match Metaflow's: read-only constants, @catch, failed and retried
attempts, metadata, foreach_stack(), task order, resume of loops and of
successful runs, crashed tasks. Each behaviour was checked against Metaflow
2.19.39 running the same flow."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from flowrun import run_flow


@pytest.fixture(scope="module")
def catch_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("catch") / ".headwater"
    r = run_flow("catch_flow.py", "run", root=root)
    assert r.returncode == 0, r.output
    return r


@pytest.fixture(scope="module")
def attempts_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("attempts") / ".headwater"
    # Without minutes_between_retries, @retry retries at once (Metaflow's local runtime
    # does): before that, this run sat two minutes and ran into the timeout.
    r = run_flow("attempts_flow.py", "run", root=root, timeout=90)
    assert r.returncode == 1, r.output
    return r


@pytest.fixture(scope="module")
def nested_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("nested") / ".headwater"
    r = run_flow("nested_foreach_flow.py", "run", root=root, timeout=90)
    assert r.returncode == 0, r.output
    return r


def _latest(use_root, r, flow):
    from headwater import Flow

    use_root(r.root)
    return Flow(flow).latest_run


# -- class-level constants and Parameters -------------------------------------------------


@pytest.mark.parametrize(("mode", "name", "line"), [("constant", "LIMIT", 13), ("parameter", "mode", 15)])
def test_assigning_a_constant_or_parameter_fails_the_step(tmp_path, use_root, mode, name, line):
    r = run_flow("constant_flow.py", "run", "--mode", mode, root=tmp_path / ".headwater")
    assert r.returncode == 1
    assert "Flow level attributes and Parameters are not modifiable" in r.output
    assert f"constant_flow.py:{line}" in r.output and f"assigned self.{name}" in r.output
    assert "Traceback" not in r.output
    task = _latest(use_root, r, "ConstantFlow")["start"].task
    assert task.exception.type == "headwater.exceptions.ReadOnlyAttributeError"
    assert task.data.before == "set before"


def test_the_read_only_error_is_an_attribute_error(tmp_path, use_root):
    r = run_flow("constant_flow.py", "run", "--mode", "except", root=tmp_path / ".headwater")
    assert r.returncode == 0, r.output
    data = _latest(use_root, r, "ConstantFlow")["start"].task.data
    assert data.caught == "Flow level attributes and Parameters are not modifiable"  # str(e), as in Metaflow
    assert data.seen == 10 and data.LIMIT == 10


# -- @catch --------------------------------------------------------------------------------


def test_caught_exception_loads_without_the_users_class(catch_run, use_root):
    run = _latest(use_root, catch_run, "CatchFlow")
    err = run["risky"].task.data.err  # TwoArgError lives in the flow's __main__: not importable here
    assert err.type == "__main__.TwoArgError" and err.message == "code 7: bad input"
    assert err.exception == err.message and "raise TwoArgError(7" in err.stacktrace
    assert isinstance(err, Exception) and str(err) == err.stacktrace
    assert pickle.loads(pickle.dumps(err)).type == err.type
    assert run["end"].task.data.err_type == "__main__.TwoArgError"


def test_a_caught_task_is_finished_but_not_successful(catch_run, use_root):
    run = _latest(use_root, catch_run, "CatchFlow")
    task = run["risky"].task
    assert (task.successful, task.finished, task.exception) == (False, True, None)
    assert task.finished_at is not None and task.data.partial == "set before the raise"
    assert run.successful and run.finished  # the end step succeeded


def test_a_task_killed_inside_a_caught_step(catch_run, use_root):
    run = _latest(use_root, catch_run, "CatchFlow")
    task = run["killed"].task
    assert task.current_attempt == 1  # the fallback attempt that records the crash
    assert (task.successful, task.finished, task.exception) == (False, True, None)
    # What Metaflow stores (type and message); how the process died is kept in the stacktrace.
    err = task.data.kill_err
    assert err.type == "headwater.exceptions.FailureHandledByCatch"
    assert err.message == ("Task execution kept failing over 1 attempts. Your code did not raise an exception. "
                           "Something in the execution environment caused the failure.")
    assert "SIGKILL" in err.stacktrace
    head, *quoted = task.stderr.splitlines()  # printed as Metaflow's @catch prints it
    assert head == "@catch caught an exception from <flow CatchFlow step killed>"
    assert all(line.startswith(">  ") for line in quoted) and "FailureHandledByCatch" in quoted[-1]
    names = [m.name for m in task.metadata]
    assert names.count("attempt") == 2 and names.count("attempt_ok") == 1  # the killed attempt never ended


# -- failed and retried attempts -------------------------------------------------------------


def test_a_failed_task_keeps_the_artifacts_it_set(attempts_run, use_root):
    task = _latest(use_root, attempts_run, "AttemptsFlow")["fails"].task
    assert not task.successful and not task.finished and task.finished_at is not None
    assert task.exception.message == "boom after setting x"
    assert task.data.x == 42 and task.data.second_try == "attempt 1"  # its own and inherited ones
    assert "unstorable" not in task  # could not be pickled: skipped, the rest kept


def test_a_timed_out_task_keeps_the_artifacts_it_set(tmp_path, launcher, use_root):
    r = run_flow("timeout_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher, timeout=60)
    assert r.returncode == 1 and "timed out after 0 hours, 0 minutes, 1 seconds" in r.output
    task = _latest(use_root, r, "TimeoutFlow")["start"].task
    assert task.exception.type == "headwater.exceptions.TimeoutException"
    assert task.data.progress == "set before the timeout"


def test_a_retried_task_shows_each_attempts_artifacts(attempts_run, use_root):
    from headwater import Task

    task = _latest(use_root, attempts_run, "AttemptsFlow")["start"].task
    assert task.current_attempt == 1 and "first_try" not in task and task.data.second_try == "attempt 1"
    first = Task(task.pathspec, attempt=0)
    assert first.data.first_try == "attempt 0" and "second_try" not in first and not first.successful


def test_metadata_holds_every_attempt(attempts_run, use_root):
    task = _latest(use_root, attempts_run, "AttemptsFlow")["start"].task
    by_name: dict[str, list] = {}
    for m in task.metadata:
        by_name.setdefault(m.name, []).append(m.value)
    assert by_name["attempt"] == ["0", "1"] and by_name["attempt_ok"] == ["False", "True"]
    assert by_name["attempt-done"] == ["0", "1"] and by_name["origin-run-id"] == ["None", "None"]
    assert by_name["script-name"] == ["attempts_flow.py"] * 2
    assert by_name["ds-root"] == [str(attempts_run.root)] * 2 and by_name["ds-type"] == ["local"] * 2


def test_a_failed_run_is_not_finished(attempts_run, use_root):
    run = _latest(use_root, attempts_run, "AttemptsFlow")
    assert (run.successful, run.finished, run.finished_at, run.end_task) == (False, False, None, None)
    assert run.status == "failed"


def test_retry_waits_only_when_asked_to():
    from headwater import retry, step
    from headwater.flow.decorators import step_policy

    def f(self):
        pass

    assert step_policy(retry(step(f))).retry_delay == 0
    assert step_policy(retry(times=2)(step(f))).retry_delay == 0
    assert step_policy(retry(minutes_between_retries=1)(step(f))).retry_delay == 60


# -- foreach, metadata, order --------------------------------------------------------------


def test_foreach_stack_returns_the_items(nested_run, use_root):
    run = _latest(use_root, nested_run, "NestedForeachFlow")
    stacks = sorted(run["end"].task.data.stacks, key=lambda s: (s[0][0], s[1][0]))
    assert stacks[0] == [(0, 3, {"k": 0}), (0, 2, "x")]
    assert stacks[-1] == [(2, 3, {"k": 2}), (1, 2, "y")]


def test_foreach_task_metadata(nested_run, use_root):
    run = _latest(use_root, nested_run, "NestedForeachFlow")
    task = next(t for t in run["inner_body"] if t.data.stack[0][0] == 2 and t.index == 1)
    md = task.metadata_dict
    assert md["foreach-stack"] == ["outer={'k': 2}", "inner=y"]  # Metaflow: str() of a str item
    assert md["foreach-execution-path"] == "body:2,inner_body:1"
    assert md["attempt"] == "0" and md["attempt_ok"] == "True" and md["user"] == "tester"


def test_tasks_iterate_newest_first_by_creation(nested_run, use_root):
    run = _latest(use_root, nested_run, "NestedForeachFlow")
    ids = [t.id for t in run["body"]]
    # The first body task was retried, so its latest attempt started last; Metaflow
    # still orders tasks by creation, newest first.
    assert ids == sorted(ids, key=int, reverse=True)
    assert [t.current_attempt for t in run["body"]][-1] == 1


def test_merge_artifacts_may_include_a_parameter(nested_run, use_root):
    assert _latest(use_root, nested_run, "NestedForeachFlow")["end"].task.data.alpha == 3


def test_a_flow_iterates_over_its_steps(nested_run, use_root):
    names = _latest(use_root, nested_run, "NestedForeachFlow")["end"].task.data.step_names
    assert names == ["body", "end", "inner_body", "inner_join", "join", "start"]


# -- resume ----------------------------------------------------------------------------------


def _effects(path):
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def test_resume_of_a_loop_clones_the_iterations_that_succeeded(tmp_path, use_root):
    from headwater import Flow

    root = tmp_path / ".headwater"
    side, fail = tmp_path / "side.txt", tmp_path / "loop-fail.marker"
    fail.touch()
    env = {"HW_SIDE_EFFECTS": str(side), "HW_LOOP_FAIL_MARKER": str(fail)}
    assert run_flow("resume_flow.py", "run", root=root, env=env).returncode == 1
    assert _effects(side)[-2:] == ["loop 0", "loop 1"]
    fail.unlink()
    r = run_flow("resume_flow.py", "resume", root=root, env=env)
    assert r.returncode == 0, r.output
    assert _effects(side) == ["loop 1", "end"]  # loop 0 (and all before it) cloned
    use_root(root)
    run = Flow("ResumeFlow").latest_run
    loops = sorted(run["loop"], key=lambda t: int(t.id))
    assert [t.origin_pathspec is not None for t in loops] == [True, False]
    assert run.successful and run.origin_pathspec is not None


def test_bare_resume_of_a_successful_run_clones_it(tmp_path, use_root):
    from headwater import Flow

    root = tmp_path / ".headwater"
    side = tmp_path / "side.txt"
    env = {"HW_SIDE_EFFECTS": str(side)}
    assert run_flow("resume_flow.py", "run", root=root, env=env).returncode == 0
    origin = _effects(side)
    assert origin[0] == "start" and origin[-1] == "end"
    r = run_flow("resume_flow.py", "resume", root=root, env=env)
    assert r.returncode == 0, r.output
    assert _effects(side) == [] and "every task is cloned" in r.output
    use_root(root)
    run = Flow("ResumeFlow").latest_run
    assert run.successful and run.finished
    tasks = [t for s in run for t in s]
    assert tasks and all(t.origin_pathspec for t in tasks)
    assert run["end"].task.metadata_dict["origin-run-id"] == run.origin_pathspec.split("/")[1]


# -- crashes -----------------------------------------------------------------------------------


def test_a_segfault_is_named_in_the_stderr_log(tmp_path, launcher, use_root):
    r = run_flow("crash_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher)
    assert r.returncode == 1
    task = _latest(use_root, r, "CrashFlow")["start"].task
    assert task.stderr.endswith("Task failed with a segmentation fault.\n")  # Metaflow's line
    assert "Task failed with a segmentation fault.\n" in r.stdout  # on the console too, not "Task failed."
    assert "SIGSEGV" in task.exception.message and not task.finished


def test_wrapper_module_needs_no_user_class():
    # The stored wrapper names only headwater: a reader without the flow loads it.
    code = ("import pickle, sys; from headwater.exceptions import HeadwaterExceptionWrapper as W\n"
            "class E(Exception):\n    def __init__(self, a, b): super().__init__(a)\n"
            "sys.stdout.buffer.write(pickle.dumps(W(E('m', 2))))")
    blob = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    w = pickle.loads(blob)  # E is not defined in this process
    assert (w.type, w.message) == ("__main__.E", "m")
