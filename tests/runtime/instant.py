"""A real Launcher for tests and benchmarks that completes every task instantly.

``InstantLauncher`` executes nothing: each launched task finishes at a later
``poll`` with a successful TaskResult whose transition follows the graph (a
foreach fans out ``num_splits`` items). It lets a Scheduler be driven alone, so
its own cost can be counted (tests) or measured (benchmarks/bench_scale.py).
"""

from __future__ import annotations

import io
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from headwater.flow.graph import NodeKind, build_graph
from headwater.meta import open_index
from headwater.runtime.console import Console
from headwater.runtime.launchers.base import Finished, Launcher, TaskContext
from headwater.runtime.scheduler import Scheduler
from headwater.runtime.taskspec import TaskResult, TaskSpec
from headwater.store import Datastore


class InstantLauncher(Launcher):
    """Finishes up to ``per_poll`` launched tasks per ``poll``, oldest first, all successful."""

    name = "instant"

    def __init__(self, ctx: TaskContext, *, num_splits: int, per_poll: int = 1) -> None:
        super().__init__(ctx)
        self.num_splits = num_splits
        self.per_poll = per_poll
        self.launched = 0
        self._pending: deque[TaskSpec] = deque()

    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        self.launched += 1
        self._pending.append(spec)
        return 0

    def poll(self, timeout: float) -> list[Finished]:
        out = []
        while self._pending and len(out) < self.per_poll:
            spec = self._pending.popleft()
            node = self.ctx.graph[spec.step_name]
            now = time.time()
            foreach = node.kind is NodeKind.FOREACH
            res = TaskResult(
                task_key=spec.key, attempt=spec.attempt, ok=True, started_at=now, finished_at=now,
                next_steps=tuple(node.out_funcs), foreach_var=node.foreach_param if foreach else None,
                num_splits=self.num_splits if foreach else None,
            )
            out.append(Finished(spec.key, spec.attempt, res, 0))
        return out

    def kill(self, task_key: str) -> None:
        raise AssertionError(f"InstantLauncher never runs a task long enough to kill it ({task_key})")


class _Discard(io.TextIOBase):
    """A console stream that drops everything (no file to close)."""

    def write(self, s: str) -> int:
        return len(s)


class NullLogDatastore(Datastore):
    """A Datastore whose task logs go to /dev/null: the scheduler alone, without a file per task."""

    def log_path(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        return os.devnull


def instant_scheduler(root: Path, num_splits: int, *, max_workers: int = 4, per_poll: int = 1,
                      **scheduler_kw: Any) -> Scheduler:
    """A Scheduler over ``tests/flows/wide_foreach_flow.py`` (num_splits + 3 tasks) and an InstantLauncher.

    ``scheduler_kw`` go to the Scheduler (e.g. ``policies``, ``machine``). The caller closes
    ``scheduler.index`` when done.
    """
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "flows" / "wide_foreach_flow.py"
    spec = importlib.util.spec_from_file_location("wide_foreach_flow", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    flow_cls: Any = module.WideForeachFlow
    graph = build_graph(flow_cls)
    ds = NullLogDatastore(str(root))
    launcher = InstantLauncher(TaskContext(flow_cls, graph, ds.root, str(path)), num_splits=num_splits,
                               per_poll=per_poll)
    index = open_index(ds.root, records=ds.records)
    return Scheduler(flow_name="WideForeachFlow", graph=graph, ds=ds, index=index, launcher=launcher,
                     run_id="1", user="tester", max_workers=max_workers, max_num_splits=10**9,
                     console=Console("1", out=_Discard(), err=_Discard()), **scheduler_kw)
