"""Fault injection: kill -9 the run process at random moments of a flow with 50 MiB artifacts.

After each kill: nothing commits once the run process is gone, every artifact the
client lists loads and verifies, and ``resume`` completes the run. The seed is
fixed and printed, so a failing trial can be replayed.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowrun import FLOWS, USER, run_flow

SEED = 20261130
TRIALS = 8
LATEST_KILL = 1.8  # seconds after the run starts; an undisturbed run takes about 2 s here
BIG = 50 * 1024 * 1024

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _records(root: Path) -> set[str]:
    runs = root / "runs"
    return {str(p.relative_to(root)) for p in runs.rglob("*.json")} if runs.exists() else set()


def _session_alive(sid: int) -> bool:
    """Whether any process of session ``sid`` (the run, its zygote, its tasks) has not exited."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] not in "ZX":
            return True
    return False


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, what
        time.sleep(0.02)


def _check_artifacts(root: Path, use_root) -> int:
    """Load every artifact the client lists (each load verifies the blob's hash); how many."""
    from headwater import Flow, namespace

    use_root(root)
    namespace(None)
    loaded = 0
    for run in Flow("FaultFlow"):
        for step in run:
            for task in step:
                for artifact in task:
                    value = artifact.data
                    if artifact.id in ("big", "late"):
                        assert len(value) == BIG, f"{artifact.pathspec} has {len(value)} bytes"
                    loaded += 1
    return loaded


def test_kill_the_run_process_at_random_moments(tmp_path, use_root):
    print(f"fault injection seed: {SEED}")
    rng = random.Random(SEED)
    root = tmp_path / ".headwater"
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")},
               HEADWATER_DATASTORE_ROOT=str(root), HEADWATER_USER=USER, HEADWATER_LAUNCHER="fork")
    for trial in range(TRIALS):
        delay = rng.uniform(0.0, LATEST_KILL)
        known = set(os.listdir(root / "runs" / "FaultFlow")) if (root / "runs" / "FaultFlow").exists() else set()
        run = subprocess.Popen([sys.executable, str(FLOWS / "fault_flow.py"), "run"], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        flow_dir = root / "runs" / "FaultFlow"

        def started() -> list[str]:
            new = set(os.listdir(flow_dir)) - known if flow_dir.exists() else set()
            return [r for r in new if (flow_dir / r / "_parameters").exists()]

        _wait(lambda: started() or run.poll() is not None, 60, f"trial {trial}: the run never started")
        time.sleep(delay)
        run.kill()
        run.wait()
        time.sleep(0.1)  # a commit already past its check when the run died lands at once
        at_kill = _records(root)
        _wait(lambda: not _session_alive(run.pid), 20, f"trial {trial}: tasks outlived the killed run process")
        late = _records(root) - at_kill
        assert not late, f"seed {SEED}, trial {trial} (kill after {delay:.2f} s): committed after the kill: {late}"
        assert _check_artifacts(root, use_root) > 0
        print(f"trial {trial}: killed {delay:.2f} s after start (exit {run.returncode}), "
              f"{len(at_kill)} records at the kill")
        (rid,) = started()
        r = run_flow("fault_flow.py", "resume", "--origin-run-id", rid, root=root, timeout=120)
        assert r.returncode == 0, f"seed {SEED}, trial {trial} (kill after {delay:.2f} s): {r.output}"
    from headwater import Flow

    assert _check_artifacts(root, use_root) > 0
    assert all(run["end"].task.data.done for run in Flow("FaultFlow") if run.successful)
    assert sum(1 for run in Flow("FaultFlow") if run.successful) >= TRIALS
