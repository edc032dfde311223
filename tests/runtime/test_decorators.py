"""@retry, @catch, @timeout, @environment, @resources and --with, run for real through the CLI."""

from __future__ import annotations

import json

import pytest
from flowrun import run_flow


def _latest(use_root, r, name):
    from headwater import Flow

    use_root(r.root)
    return Flow(name).latest_run


def test_retry_recovers(tmp_path, launcher, use_root):
    side = tmp_path / "side.txt"
    r = run_flow("decorated_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher,
                 env={"HW_SIDE_EFFECTS": str(side)})
    assert r.returncode == 0, r.output
    assert side.read_text().splitlines()[:3] == ["flaky attempt 0", "flaky attempt 1", "flaky attempt 2"]
    run = _latest(use_root, r, "DecoratedFlow")
    flaky = run["flaky"].task
    assert flaky.successful and flaky.current_attempt == 2
    assert flaky.data.attempt_seen == 2
    assert "partial" not in flaky  # artifacts of failed attempts are not visible
    assert "retrying (attempt 2 of 3)" in r.stdout


def test_retry_gives_up_after_times_plus_one(tmp_path, launcher, use_root):
    side = tmp_path / "side.txt"
    r = run_flow("decorated_flow.py", "run", "--mode", "giveup", root=tmp_path / ".headwater", launcher=launcher,
                 env={"HW_SIDE_EFFECTS": str(side)})
    assert r.returncode == 1
    assert side.read_text().splitlines() == [f"flaky attempt {i}" for i in range(3)]
    run = _latest(use_root, r, "DecoratedFlow")
    task = run["flaky"].task
    assert not task.successful and not task.finished and task.current_attempt == 2
    assert "always fails" in str(task.exception)
    assert "Step failure: Step flaky" in r.stderr


def test_catch_after_retries(tmp_path, launcher, use_root):
    side = tmp_path / "side.txt"
    r = run_flow("decorated_flow.py", "run", "--mode", "catch", root=tmp_path / ".headwater", launcher=launcher,
                 env={"HW_SIDE_EFFECTS": str(side)})
    assert r.returncode == 0, r.output
    assert side.read_text().count("guarded attempt") == 2  # times=1: two attempts, then caught
    run = _latest(use_root, r, "DecoratedFlow")
    g = run["guarded"].task.data
    assert g.err.type == "builtins.KeyError" and "caught me" in g.err.message and "Traceback" in g.err.stacktrace
    assert g.err.exception == g.err.message  # text, as Metaflow's wrapper: loads without the class
    assert g.before == "kept"  # artifacts set before the exception survive
    assert run.successful


def test_catch_var_is_none_on_success(tmp_path, use_root):
    r = run_flow("decorated_flow.py", "run", root=tmp_path / ".headwater")
    run = _latest(use_root, r, "DecoratedFlow")
    assert run["guarded"].task.data.err is None


def test_timeout_kills_sleeping_step(tmp_path, launcher, use_root):
    side = tmp_path / "side.txt"
    r = run_flow("decorated_flow.py", "run", "--mode", "timeout", root=tmp_path / ".headwater",
                 launcher=launcher, env={"HW_SIDE_EFFECTS": str(side)}, timeout=60)
    assert r.returncode == 0, r.output
    run = _latest(use_root, r, "DecoratedFlow")
    err = run["guarded"].task.data.err
    assert err.type.endswith("TimeoutException") and "timed out after 0 hours, 0 minutes, 2 seconds" in err.message
    assert side.read_text().count("guarded attempt") == 2  # the retry applied to the timeout too
    from headwater import Task

    first = Task(run["guarded"].task.pathspec, attempt=0)
    assert not first.successful and "timed out" in str(first.exception)


def test_crash_is_caught(tmp_path, launcher, use_root):
    r = run_flow("decorated_flow.py", "run", "--mode", "crash", root=tmp_path / ".headwater", launcher=launcher)
    assert r.returncode == 0, r.output
    run = _latest(use_root, r, "DecoratedFlow")
    err = run["guarded"].task.data.err
    # Metaflow's record of a crash: FailureHandledByCatch; how the process died is in the stacktrace.
    assert err.type == "headwater.exceptions.FailureHandledByCatch"
    assert err.message.startswith("Task execution kept failing over 2 attempts. Your code did not raise")  # @retry(times=1)
    assert "TaskCrashed" in err.stacktrace and "signal 9" in err.stacktrace
    assert run.successful


def test_environment_only_for_its_step(tmp_path, launcher, use_root):
    r = run_flow("decorated_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher)
    run = _latest(use_root, r, "DecoratedFlow")
    assert run["guarded"].task.data.env_seen == "set-here"
    assert run.data.env_in_end is None


def test_with_attaches_to_every_step(tmp_path, use_root):
    flow = tmp_path / "once_flow.py"
    flow.write_text(
        "from headwater import FlowSpec, step, current\n"
        "class OnceFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        if current.retry_count == 0:\n"
        "            raise ValueError('first attempt fails')\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        self.attempt = current.retry_count\n"
        "if __name__ == '__main__':\n"
        "    OnceFlow()\n")
    root = tmp_path / ".headwater"
    assert run_flow(flow, "run", root=root).returncode == 1  # no retry without --with
    r = run_flow(flow, "--with", "retry:times=1,minutes_between_retries=0", "run", root=root)
    assert r.returncode == 0, r.output
    run = _latest(use_root, r, "OnceFlow")
    assert run["start"].task.current_attempt == 1 and run.data.attempt == 0


@pytest.mark.parametrize("args,needle", [
    (["--with", "retry:tiems=2"], "@retry has no attribute 'tiems'"),
    (["--with", "retri"], "no step decorator called 'retri'"),
    (["--with", "timeout:seconds=0"], "@timeout needs a positive duration"),
])
def test_bad_decorators(tmp_path, args, needle):
    r = run_flow("linear_flow.py", *args, "run", root=tmp_path / ".headwater")
    assert r.returncode != 0
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_unknown_attribute_in_source(tmp_path):
    flow = tmp_path / "bad_attr.py"
    flow.write_text(
        "from headwater import FlowSpec, step, retry\n"
        "class BadAttrFlow(FlowSpec):\n"
        "    @retry(tiems=2)\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    BadAttrFlow()\n")
    r = run_flow(flow, "run", root=tmp_path / ".headwater")
    assert r.returncode != 0
    assert "@retry has no attribute 'tiems'" in r.stderr and "times" in r.stderr
    assert "Traceback" not in r.stderr


def test_retry_waits_between_attempts(tmp_path):
    """minutes_between_retries is honoured locally (Metaflow retries at once)."""
    flow = tmp_path / "wait_flow.py"
    flow.write_text(
        "import os, time\n"
        "from headwater import FlowSpec, step, retry, current\n"
        "class WaitFlow(FlowSpec):\n"
        "    @retry(times=1, minutes_between_retries=0.02)\n"
        "    @step\n"
        "    def start(self):\n"
        "        with open(os.environ['HW_SIDE_EFFECTS'], 'a') as f:\n"
        "            f.write(f'{time.time()}\\n')\n"
        "        if current.retry_count == 0:\n"
        "            raise ValueError('first attempt fails')\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    WaitFlow()\n")
    side = tmp_path / "side.txt"
    r = run_flow(flow, "run", root=tmp_path / ".headwater", env={"HW_SIDE_EFFECTS": str(side)})
    assert r.returncode == 0, r.output
    first, second = (float(x) for x in side.read_text().split())
    assert second - first >= 1.1  # 0.02 minutes = 1.2 s, measured from the failure to the relaunch
    assert "retrying (attempt 2 of 2) in 1.2 s" in r.stdout


def test_gpu_assignment_on_fake_two_gpu_machine(tmp_path, launcher, use_root):
    r = run_flow("gpu_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher,
                 env={"HEADWATER_MACHINE": json.dumps({"cpus": 8, "gpus": 2})})
    assert r.returncode == 0, r.output
    run = _latest(use_root, r, "GpuFlow")
    spans = run["join"].task.data.spans
    assert {d for d, _, _ in spans} <= {"0", "1"}  # each task saw exactly one of the two GPUs
    # never more than two @resources(gpu=1) tasks at once, and never two on one GPU at once
    for d, b, e in spans:
        overlapping = [x for x in spans if x[1] < e and b < x[2]]
        assert len(overlapping) <= 2
        assert sum(1 for x in overlapping if x[0] == d) == 1
    task = next(iter(run["train"]))
    assert json.loads(task.metadata_dict["resources"])["gpu"] == 1


def test_resources_beyond_the_machine(tmp_path):
    r = run_flow("gpu_flow.py", "run", root=tmp_path / ".headwater",
                 env={"HEADWATER_MACHINE": json.dumps({"cpus": 8, "gpus": 0})})
    assert r.returncode == 1
    assert "asks for @resources(cpu=1, gpu=1)" in r.stderr and "0 GPUs" in r.stderr


def test_bad_machine_description(tmp_path):
    r = run_flow("gpu_flow.py", "run", root=tmp_path / ".headwater", env={"HEADWATER_MACHINE": "{cpus: 4}"})
    assert r.returncode == 1
    assert "is not a machine description" in r.stderr and "Traceback" not in r.stderr


def test_timeout_kills_what_the_task_started(tmp_path, launcher):
    side = tmp_path / "pid.txt"
    r = run_flow("spawning_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher,
                 env={"HW_SIDE_EFFECTS": str(side)}, timeout=60)
    assert r.returncode == 0, r.output  # @catch recorded the timeout
    import os
    import time

    pid = int(side.read_text())
    for _ in range(50):  # the kill is immediate; reaping by init may take a moment
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ")[1].startswith("Z"):
                break  # a zombie waiting for its reaper is dead
        time.sleep(0.1)
    else:
        raise AssertionError(f"the task's helper process {pid} outlived the task")
