"""Issue 8, fault 8: a task that never committed is "running" while its run lives,
and "killed" once the run process is gone (not "has not finished yet" forever)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from flowrun import FLOWS, USER
from headwater.exceptions import HeadwaterNotFound


def test_uncommitted_task_of_a_killed_run_shows_as_killed(tmp_path, use_root) -> None:
    from headwater import Flow

    root = tmp_path / ".headwater"
    env = dict(os.environ, HEADWATER_DATASTORE_ROOT=str(root), HEADWATER_USER=USER, HEADWATER_LAUNCHER="fork")
    p = subprocess.Popen([sys.executable, str(FLOWS / "sleepy_flow.py"), "run"], env=env, cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 30
        while not list(root.glob("runs/SleepyFlow/*/nap/*/0.stdout")) or "napping" not in \
                list(root.glob("runs/SleepyFlow/*/nap/*/0.stdout"))[0].read_text():
            assert time.time() < deadline, "the nap step never started"
            time.sleep(0.05)
        use_root(root)
        nap = Flow("SleepyFlow").latest_run["nap"].task
        assert nap.status == "running" and nap.exception is None  # alive: not killed
        with pytest.raises(HeadwaterNotFound, match="attempt 0 has not finished yet"):
            nap["x"]
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()

    time.sleep(0.2)
    run = Flow("SleepyFlow").latest_run
    assert run.status == "killed"
    tasks = {t.pathspec.split("/", 2)[2]: t for s in run for t in s}
    nap = tasks[next(k for k in tasks if k.startswith("nap/"))]
    assert nap.status == "killed"
    assert not nap.finished and not nap.successful and nap.finished_at is None
    assert nap.exception.type == "headwater.exceptions.TaskCrashed"
    assert "killed with its run" in nap.exception.message
    with pytest.raises(HeadwaterNotFound, match="attempt 0 was killed with its run before it committed"):
        nap["x"]
    start = tasks[next(k for k in tasks if k.startswith("start/"))]
    assert start.status == "successful" and start.exception is None  # committed tasks are unchanged
