"""Liveness of runs that never ended: a dead process on this host means "killed"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowrun import FLOWS, USER
from headwater.meta.index import RunRow
from headwater.meta.liveness import pid_alive, run_is_dead, run_status, this_host


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _row(status: str = "running", pid: int | None = None, host: str | None = None, created_at: float = 0.0):
    return RunRow("F", "1", "u", (), (), created_at, None, status, "start", "end", None,
                  pid, this_host() if host is None else host)  # fmt: skip


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert pid_alive(os.getppid())
    assert not pid_alive(_dead_pid())
    assert not pid_alive(0) and not pid_alive(-5)


def test_a_zombie_is_not_alive() -> None:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(p.pid)
        os.kill(p.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(p.pid) and time.monotonic() < deadline:  # exited, not yet reaped
            time.sleep(0.01)
        assert not pid_alive(p.pid)
        os.kill(p.pid, 0)  # the zombie still holds its pid: os.kill alone would call it alive
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_reused_pid_is_not_the_run() -> None:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(p.pid, started_by=time.time())
        # A process that started an hour after the run cannot be the run's process.
        assert not pid_alive(p.pid, started_by=time.time() - 3600)
    finally:
        p.kill()
        p.wait()


def test_run_is_dead() -> None:
    dead = _dead_pid()
    assert run_is_dead(_row(pid=dead))
    assert not run_is_dead(_row(pid=os.getpid()))
    assert not run_is_dead(_row(pid=dead, host="some-other-host"))  # cannot tell: keep its status
    assert not run_is_dead(_row("successful", pid=dead)) and not run_is_dead(_row("failed", pid=dead))
    assert not run_is_dead(_row(pid=None))
    rec = {"pid": dead, "host": this_host(), "created_at": 0.0}  # a bare run record
    assert run_is_dead(rec) and not run_is_dead(rec, ended=True)


def test_run_status() -> None:
    dead = _dead_pid()
    assert run_status(_row(pid=dead)) == "killed"
    assert run_status(_row(pid=os.getpid())) == "running"
    assert run_status(_row("successful", pid=dead)) == "successful"
    assert run_status(_row("failed", pid=dead)) == "failed"


def _wait_for(cond, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_killed_run_shows_as_failed(tmp_path: Path, use_root) -> None:
    root = tmp_path / ".headwater"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER, "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen([sys.executable, str(FLOWS / "sleepy_flow.py"), "run"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        runs_dir = root / "runs" / "SleepyFlow"
        _wait_for(lambda: runs_dir.is_dir() and any(runs_dir.iterdir()), "the run to start")
        (run_dir,) = runs_dir.iterdir()
        log = run_dir / "nap" / "2" / "0.stdout"
        _wait_for(lambda: log.exists() and b"napping" in log.read_bytes(), "the nap step to start")

        from headwater import Run

        use_root(root)
        run = Run(f"SleepyFlow/{run_dir.name}")
        assert run.status == "running" and not run.finished

        os.kill(proc.pid, signal.SIGKILL)  # the run process only: its task is orphaned, still asleep
        proc.wait()

        run = Run(f"SleepyFlow/{run_dir.name}")
        assert run.status == "killed"
        assert not run.finished and not run.successful and run.finished_at is None
        nap = run["nap"].task
        assert not nap.successful and not nap.finished and nap.finished_at is None
        assert run["start"].task.successful

        from headwater.cli.main import cli

        runner = CliRunner()
        out = runner.invoke(cli, ["runs", "--datastore-root", str(root)], env={"HEADWATER_USER": USER})
        assert out.exit_code == 0, out.output
        line = next(ln for ln in out.output.splitlines() if run_dir.name in ln)
        assert "failed (killed)" in line
        out = runner.invoke(cli, ["show", f"SleepyFlow/{run_dir.name}", "--datastore-root", str(root)])
        assert out.exit_code == 0, out.output
        assert f"Run SleepyFlow/{run_dir.name}: failed (killed)" in out.output
        nap_line = next(ln for ln in out.output.splitlines() if ln.startswith("nap "))
        assert nap_line.split()[:6] == ["nap", "1", "0", "1", "0", "failed"]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the orphaned task and the zygote
        except ProcessLookupError:
            pass
        proc.wait()
