"""Fault injection: kill -9 the run process at random moments of a flow with 50 MiB artifacts.

Kill points are events (marker files the flow writes as each step starts) plus a
random delay. At the kill every other process of the run is frozen (SIGSTOP), so
the store seen right after the run process is reaped is exactly the store at its
death. The tasks then go on alone (their zygote still stopped, so it cannot kill
them) and each must refuse to commit by itself: no record commits after the death
except one already committing (its task had stored all its artifacts before the
run died; docs/store.md, "Killed runs"),
every artifact the client lists loads and verifies, and ``resume`` completes the
run. The seed is fixed and printed, so a failing trial can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowrun import FLOWS, USER, run_flow

SEED = 20261130
TRIALS = 8
EVENTS = ("start", "work-0", "work-1", "work-2", "work-3", "join")  # the flow's marker files; at "end"
# the run is mostly over before a kill lands
LATEST_AFTER = 0.6  # seconds after the event; covers a work task's 0.4 s step and its commit
BIG = 50 * 1024 * 1024

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _records(root: Path) -> set[str]:
    runs = root / "runs"
    return {str(p.relative_to(root)) for p in runs.rglob("*.json")} if runs.exists() else set()


def _session(sid: int) -> dict[int, int]:
    """pid -> parent pid of every process of session ``sid`` (the run, its zygote, its tasks) not exited."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] not in "ZX":
            out[int(entry)] = int(fields[1])
    return out


def _session_alive(sid: int) -> bool:
    return bool(_session(sid))


def _freeze(sid: int, spare: int) -> dict[int, int]:
    """SIGSTOP every process of session ``sid`` but ``spare``, until none is left running; pid -> parent."""
    stopped: dict[int, int] = {}
    while True:
        todo = {p: pp for p, pp in _session(sid).items() if p != spare and p not in stopped}
        if not todo:
            return stopped
        for p, pp in todo.items():
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            stopped[p] = pp


def _thaw(pids) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGCONT)
        except ProcessLookupError:
            pass


def _exited(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return text[text.rindex(")") + 2] in "ZX"


def _blobs(root: Path) -> set[str]:
    blobs = root / "blobs"
    return {p.name for p in blobs.glob("*/*")} if blobs.exists() else set()


def _committing(root: Path, late: set[str], blobs: set[str]) -> list[str]:
    """The late records that break the promise: not an attempt record, or one whose task had not
    stored all its artifacts when the run died (so its owner check came after the death). Every
    step of the flow stores a fresh random blob, so a task still in its step has one missing."""
    bad = []
    for rel in sorted(late):
        parts = Path(rel).parts  # runs/<flow>/<run>/<step>/<task>/<attempt>.json
        if len(parts) != 6 or parts[3].startswith("_"):
            bad.append(f"{rel} (not an attempt record)")
            continue
        refs = json.loads((root / rel).read_text())["artifacts"].values()
        missing = [r["key"] for r in refs if "inline" not in r and r["key"] not in blobs]
        if missing:
            bad.append(f"{rel} (its artifacts {missing} were stored after the run died)")
    return bad


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
    flow_dir = root / "runs" / "FaultFlow"
    base = dict({k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")},
                HEADWATER_DATASTORE_ROOT=str(root), HEADWATER_USER=USER, HEADWATER_LAUNCHER="fork")
    killed = 0
    for trial in range(TRIALS):
        event, after = rng.choice(EVENTS), rng.uniform(0.0, LATEST_AFTER)
        marks = tmp_path / f"marks-{trial}"
        known = set(os.listdir(flow_dir)) if flow_dir.exists() else set()
        run = subprocess.Popen([sys.executable, str(FLOWS / "fault_flow.py"), "run"],
                               env=dict(base, HW_FAULT_MARKS=str(marks)), cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait(lambda: (marks / event).exists() or run.poll() is not None, 60, f"trial {trial}: no {event} event")
        time.sleep(after)
        frozen: dict[int, int] = {}
        try:
            frozen.update(_freeze(run.pid, spare=run.pid))
            run.kill()
            run.wait()
            frozen.update(_freeze(run.pid, spare=run.pid))  # any process the run started before it died
            at_kill, blobs = _records(root), _blobs(root)  # the store at the run's death: nothing else moved
            # The tasks go on first, with the zygotes still stopped (they would kill their tasks once
            # they see the run gone): each task finishes its step and must itself refuse to commit.
            tasks = {p for p, parent in frozen.items() if parent in frozen}  # the zygotes' children
            zygotes = set(frozen) - tasks
            _thaw(tasks)
            _wait(lambda: all(_exited(p) for p in tasks), 30, f"trial {trial}: a task never ended")
            _thaw(zygotes)
        finally:
            _thaw(frozen)  # never leave a process stopped, even when the test fails
        (rid,) = set(os.listdir(flow_dir)) - known
        what = f"seed {SEED}, trial {trial} ({after:.2f} s after {event})"
        _wait(lambda: not _session_alive(run.pid), 20, f"{what}: tasks outlived the killed run process")
        late = _records(root) - at_kill
        bad = _committing(root, late, blobs)
        assert not bad, f"{what}: committed after the kill: {bad}"
        assert _check_artifacts(root, use_root) > 0
        print(f"trial {trial}: {what}, exit {run.returncode}, {len(at_kill)} records at the kill, "
              f"{len(late)} already committing")
        if run.returncode == 0:  # the run ended before the kill landed: nothing to resume
            continue
        killed += 1
        r = run_flow("fault_flow.py", "resume", "--origin-run-id", rid, root=root, timeout=120)
        assert r.returncode == 0, f"{what}: {r.output}"
    from headwater import Flow

    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} kills landed before their run ended"
    assert _check_artifacts(root, use_root) > 0
    assert all(run["end"].task.data.done for run in Flow("FaultFlow") if run.successful)
    assert sum(1 for run in Flow("FaultFlow") if run.successful) >= TRIALS
