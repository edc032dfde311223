"""The fork pool's pipes: no message size may block the run process or the zygote."""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from flowrun import FLOWS, USER

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork pool needs fork()")

JOIN_INPUTS = 5000


def _load(flow_file: str) -> type:
    spec = importlib.util.spec_from_file_location(f"hw_test_{Path(flow_file).stem}", FLOWS / flow_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BigMessagesFlow


def _spec(root: Path, step: str, task_id: str, inputs: tuple[str, ...] = ()):
    from headwater.runtime.taskspec import TaskSpec

    return TaskSpec(flow_name="BigMessagesFlow", run_id="1", step_name=step, task_id=task_id, attempt=0,
                    input_paths=inputs, input_attempts=(0,) * len(inputs), datastore_root=str(root), user=USER)


def _wait_for(path: Path, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_large_messages_cross_in_both_directions(tmp_path):
    from headwater.runtime.launchers import TaskContext
    from headwater.runtime.launchers.forkpool import ForkPoolLauncher

    flow_cls = _load("big_messages_flow.py")
    root = tmp_path / ".headwater"
    root.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    pool = ForkPoolLauncher(TaskContext(flow_cls, flow_cls._graph, str(root), str(FLOWS / "big_messages_flow.py")))
    pool.start()
    try:
        # Two results far larger than a pipe buffer head for the run process, which does not read them yet.
        pool.launch(_spec(root, "start", "1"), str(logs / "1.out"), str(logs / "1.err"))
        pool.launch(_spec(root, "explode", "2"), str(logs / "2.out"), str(logs / "2.err"))
        task_dir = root / "runs" / "BigMessagesFlow" / "1"
        _wait_for(task_dir / "start" / "1" / "0.json", 60)
        _wait_for(task_dir / "explode" / "2" / "0.json", 60)
        time.sleep(0.5)  # the zygote is now writing those results into the full event pipe
        # Meanwhile the run process sends a command larger than the pipe buffer.
        join = _spec(root, "join", "3", tuple(f"each/{i}" for i in range(10, 10 + JOIN_INPUTS)))
        sender = threading.Thread(target=pool.launch, args=(join, str(logs / "3.out"), str(logs / "3.err")),
                                  daemon=True)
        sender.start()
        sender.join(20)
        assert not sender.is_alive(), "launch() blocked: the run process and the zygote deadlocked"
        results = {}
        end = time.monotonic() + 60
        while len(results) < 3 and time.monotonic() < end:
            for f in pool.poll(0.2):
                results[f.task_key] = f
        assert sorted(results) == ["explode/2", "join/3", "start/1"]
        assert results["start/1"].result.num_splits == 2100
        assert len(results["start/1"].result.foreach_values) == 2100
        explode = results["explode/2"].result
        assert not explode.ok and len(explode.exception["message"]) > 300_000
        assert not results["join/3"].result.ok  # its inputs never ran; what matters is that it got through
    finally:
        if pool.zygote_pid:
            os.kill(pool.zygote_pid, signal.SIGKILL)  # unblocks a deadlocked sender (EPIPE)
        pool.shutdown()
