"""Nothing commits after its run process is gone (runtime/owner.py and the fork pool's zygote)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowrun import FLOWS, USER

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _records(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "runs").rglob("*.json") if p.stem.isdigit()}


def _state(pid: int) -> str | None:
    """The process's state letter, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return text[text.rindex(")") + 2]


def _ppid(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2:].split()[1])


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, what
        time.sleep(0.02)


def _ended(pid: int) -> bool:
    return _state(pid) in (None, "Z", "X")


@linux_only
def test_no_task_commits_after_the_run_process_is_killed(tmp_path):
    root = tmp_path / ".headwater"
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")},
               HEADWATER_DATASTORE_ROOT=str(root), HEADWATER_USER=USER, HEADWATER_LAUNCHER="fork",
               HW_NAP_DIR=str(tmp_path), HW_NAPS="1.5,60")
    run = subprocess.Popen([sys.executable, str(FLOWS / "orphan_flow.py"), "run"], env=env, cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    zygote = None
    try:
        naps = [tmp_path / "nap-0", tmp_path / "nap-1"]
        _wait(lambda: all(p.exists() and p.read_text() for p in naps), 60, "the nap tasks never started")
        short, long = (int(p.read_text()) for p in naps)
        zygote = _ppid(short)
        # The zygote cannot act while the run process dies and the short task finishes its nap.
        os.kill(zygote, signal.SIGSTOP)
        run.kill()
        run.wait()
        before = _records(root)
        _wait(lambda: _ended(short), 30, "the short nap never ended")
        os.kill(zygote, signal.SIGCONT)
        # Once the zygote sees the run gone it kills every task it started, and leaves.
        _wait(lambda: _ended(long), 10, "a task outlived its run process and its zygote")
        _wait(lambda: _ended(zygote), 10, "the zygote outlived its run process")
        after = _records(root)
        assert after == before, f"committed after the run process was killed: {sorted(after - before)}"
        assert not any("/nap/" in r for r in after)
        logs = [p.read_text() for p in root.glob("runs/OrphanFlow/*/nap/*/0.stderr")]
        said = [log for log in logs if "was not committed: its run process" in log]
        assert len(said) == 1 and "Traceback" not in said[0], logs  # the short nap; the long one was killed
    finally:
        if zygote is not None and not _ended(zygote):
            os.kill(zygote, signal.SIGCONT)
            os.kill(zygote, signal.SIGKILL)
        for p in tmp_path.glob("nap-*"):
            if p.read_text() and not _ended(int(p.read_text())):
                os.kill(int(p.read_text()), signal.SIGKILL)


@linux_only
def test_step_command_refuses_to_commit_for_a_dead_run(tmp_path):
    from headwater.runtime.owner import process_token
    from headwater.runtime.taskspec import TaskSpec

    root = tmp_path / ".headwater"
    me = process_token()
    gone = f"{me.partition(':')[0]}:1"  # this pid, started after 1970 + 1 s: its pid was reused
    spec = TaskSpec(flow_name="OrphanFlow", run_id="1", step_name="start", task_id="1", attempt=0,
                    input_paths=(), input_attempts=(), datastore_root=str(root), user=USER, run_owner=gone)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")},
               HEADWATER_USER=USER, HW_NAP_DIR=str(tmp_path))
    p = subprocess.run([sys.executable, str(FLOWS / "orphan_flow.py"), "--quiet", "--datastore-root", str(root),
                        "step", "start", "--task-spec", str(spec_file), "--result-file", str(tmp_path / "r.json")],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "Attempt 0 of task OrphanFlow/1/start/1 was not committed: its run process" in p.stdout + p.stderr
    assert not (root / "runs").exists() or not _records(root)
    # The same spec owned by a live process commits: the check is what refused it.
    spec_file.write_text(json.dumps(dict(json.loads(spec.to_json()), run_owner=me)))
    p = subprocess.run(p.args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _records(root) == {"runs/OrphanFlow/1/start/1/0.json"}


@linux_only
def test_a_timed_out_step_refused_for_a_dead_run_still_kills_its_helpers(tmp_path):
    from headwater.runtime.owner import process_token
    from headwater.runtime.taskspec import TaskSpec

    root = tmp_path / ".headwater"
    gone = f"{process_token().partition(':')[0]}:1"  # a run process that is gone (its pid was reused)
    spec = TaskSpec(flow_name="OwnerTimeoutFlow", run_id="1", step_name="start", task_id="1", attempt=0,
                    input_paths=(), input_attempts=(), datastore_root=str(root), user=USER, run_owner=gone,
                    dedicated_process=True)
    spec_file, helper_file = tmp_path / "spec.json", tmp_path / "helper"
    spec_file.write_text(spec.to_json())
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")},
               HEADWATER_USER=USER, HW_HELPER_FILE=str(helper_file))
    try:
        p = subprocess.run([sys.executable, str(FLOWS / "owner_timeout_flow.py"), "--quiet", "--datastore-root",
                            str(root), "step", "start", "--task-spec", str(spec_file),
                            "--result-file", str(tmp_path / "r.json")],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert p.returncode != 0
        assert "was not committed: its run process" in p.stdout + p.stderr
        assert not (root / "runs").exists() or not _records(root)
        helper = int(helper_file.read_text())
        # The owner check refused the commit; the timed-out step's helper was killed all the same.
        _wait(lambda: _ended(helper), 10, "the timed-out step's helper outlived it")
    finally:
        if helper_file.exists() and not _ended(int(helper_file.read_text())):
            os.kill(int(helper_file.read_text()), signal.SIGKILL)
