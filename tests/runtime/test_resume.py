"""resume: clone what succeeded, re-run the failed step and what follows (proved by side effects)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from flowrun import FLOWS, USER, run_flow


def _env(tmp_path, **markers):
    env = {"HW_SIDE_EFFECTS": str(tmp_path / "side.txt")}
    for name, path in markers.items():
        env[name] = str(path)
    return env


def _effects(tmp_path):
    p = tmp_path / "side.txt"
    lines = p.read_text().splitlines() if p.exists() else []
    p.unlink(missing_ok=True)
    return lines


def test_resume_reruns_only_failed_step_and_descendants(tmp_path, launcher, use_root):
    from headwater import Flow

    root = tmp_path / ".headwater"
    fail = tmp_path / "fail.marker"
    fail.touch()
    env = _env(tmp_path, HW_FAIL_MARKER=fail)
    r1 = run_flow("resume_flow.py", "run", "--size", "4", root=root, launcher=launcher, env=env)
    assert r1.returncode == 1
    assert sorted(_effects(tmp_path)) == sorted(["start", "work 0", "work 1", "work 2", "work 3", "join", "after"])
    fail.unlink()
    r2 = run_flow("resume_flow.py", "resume", root=root, launcher=launcher, env=env)
    assert r2.returncode == 0, r2.output
    assert _effects(tmp_path) == ["after", "loop 0", "loop 1", "end"]  # nothing upstream re-ran

    use_root(root)
    runs = list(Flow("ResumeFlow"))
    new, origin = runs[0], runs[1]
    assert new.successful and not origin.successful
    assert new["join"].task.data.total == 0 + 1 + 4 + 9  # cloned artifacts are all there
    assert new["join"].task.origin_pathspec == origin["join"].task.pathspec
    assert new["join"].task.pathspec != origin["join"].task.pathspec
    assert sorted(t.data.square for t in new["work"]) == [0, 1, 4, 9]
    assert new["start"].task.data.size == 4  # parameters come from the origin run
    assert new["after"].task.data.origin_seen == origin.id
    assert new["after"].task.origin_pathspec is None  # re-executed, not cloned
    # no data was copied: the clone names the very same blob keys
    assert new["start"].task["items"].sha == origin["start"].task["items"].sha


def test_resume_named_step(tmp_path, use_root):
    root = tmp_path / ".headwater"
    env = _env(tmp_path)
    assert run_flow("resume_flow.py", "run", root=root, env=env).returncode == 0
    _effects(tmp_path)
    r = run_flow("resume_flow.py", "resume", "join", root=root, env=env)
    assert r.returncode == 0, r.output
    assert _effects(tmp_path) == ["join", "after", "loop 0", "loop 1", "end"]


def test_resume_unknown_origin(tmp_path):
    r = run_flow("resume_flow.py", "resume", "--origin-run-id", "123", root=tmp_path / ".headwater",
                 env=_env(tmp_path))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "no earlier run" in r.stderr or "no run '123'" in r.stderr


def test_resume_after_kill_9_of_the_run_process(tmp_path, launcher, use_root):
    from headwater import Flow

    root = tmp_path / ".headwater"
    slow = tmp_path / "slow.marker"
    slow.touch()
    env = dict(os.environ, HEADWATER_DATASTORE_ROOT=str(root), HEADWATER_USER=USER, HEADWATER_LAUNCHER=launcher,
               **_env(tmp_path, HW_SLOW_MARKER=slow))
    p = subprocess.Popen([sys.executable, str(FLOWS / "resume_flow.py"), "run"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:  # wait until the work tasks are running
        side = tmp_path / "side.txt"
        if side.exists() and side.read_text().count("work") == 3:
            break
        time.sleep(0.05)
    else:
        p.kill()
        raise AssertionError("the work step never started")
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    slow.unlink()
    time.sleep(0.3)
    _effects(tmp_path)
    r = run_flow("resume_flow.py", "resume", root=root, launcher=launcher, env=_env(tmp_path))
    assert r.returncode == 0, r.output
    effects = _effects(tmp_path)
    assert "start" not in effects  # start had committed: cloned
    assert sorted(e for e in effects if e.startswith("work")) == ["work 0", "work 1", "work 2"]
    use_root(root)
    runs = list(Flow("ResumeFlow"))
    assert runs[0].successful and runs[0].data is not None
    assert not runs[1].successful


def test_resume_clones_switch_loops(tmp_path, use_root):
    root = tmp_path / ".headwater"
    env = _env(tmp_path)
    assert run_flow("resume_flow.py", "run", root=root, env=env).returncode == 0
    _effects(tmp_path)
    r = run_flow("resume_flow.py", "resume", "end", root=root, env=env)
    assert r.returncode == 0, r.output
    assert _effects(tmp_path) == ["end"]  # both loop iterations were cloned


def test_resume_after_the_flow_was_edited(tmp_path, use_root):
    """A failed step renamed since the origin run: no traceback, the new step runs."""
    flow = tmp_path / "edited_flow.py"
    src = (
        "import os\n"
        "from headwater import FlowSpec, step\n"
        "class EditedFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.x = 1\n"
        "        self.next(self.STEP)\n"
        "    @step\n"
        "    def STEP(self):\n"
        "        if os.path.exists(os.environ['HW_FAIL_MARKER']):\n"
        "            raise RuntimeError('fails')\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        self.y = self.x + 1\n"
        "if __name__ == '__main__':\n"
        "    EditedFlow()\n")
    flow.write_text(src.replace("STEP", "old_name"))
    fail = tmp_path / "fail.marker"
    fail.touch()
    root = tmp_path / ".headwater"
    env = {"HW_FAIL_MARKER": str(fail)}
    assert run_flow(flow, "run", root=root, env=env).returncode == 1
    fail.unlink()
    flow.write_text(src.replace("STEP", "new_name"))
    r = run_flow(flow, "resume", root=root, env=env)
    assert r.returncode == 0, r.output
    assert "Traceback" not in r.output
    from headwater import Flow

    use_root(root)
    run = Flow("EditedFlow").latest_run
    assert run.data.y == 2
    # start's recorded transition names a step that no longer exists: it re-runs, not cloned
    assert run["start"].task.origin_pathspec is None
