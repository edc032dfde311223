"""The Scheduler: one thread that drives a run's graph over a Launcher.

It learns what each task did (transition, foreach cardinality, status) from
its TaskResult, never by reading the store back. It owns the run's index rows
and the console; tasks write only their attempt records and logs.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..meta.index import Index
from ..store import Datastore
from .console import PROGRESS_THRESHOLD, Console, ForeachProgress
from .launchers import Finished, Launcher
from .taskspec import ForeachFrame, TaskResult, TaskSpec

PARAMETERS_PATH = "_parameters/0"


@dataclass
class _Running:
    spec: TaskSpec
    started_at: float
    tails: list[tuple[str, Any, bytearray]] = field(default_factory=list)  # (stream, file, partial line)


@dataclass
class RunOutcome:
    ok: bool
    failed: list[tuple[str, str]]  # (step, task_id)
    num_tasks: int


class Scheduler:
    """Runs one flow run to completion (or first failure)."""

    def __init__(
        self, *, flow_name: str, graph: Any, ds: Datastore, index: Index, launcher: Launcher,
        run_id: str, user: str, tags: tuple[str, ...] = (), max_workers: int = 16,
        max_num_splits: int = 100, console: Console, origin_run_id: str | None = None,
    ) -> None:
        self.flow_name = flow_name
        self.graph = graph
        self.ds = ds
        self.index = index
        self.launcher = launcher
        self.run_id = run_id
        self.user = user
        self.tags = tags
        self.max_workers = max(1, max_workers)
        self.max_num_splits = max_num_splits
        self.console = console
        self.origin_run_id = origin_run_id
        self._queue: deque[TaskSpec] = deque()
        self._running: dict[str, _Running] = {}
        self._next_id = 1
        self._joins: dict[tuple, dict[Any, tuple[str, int]]] = {}
        self._pending_rows: list[dict] = []
        self._progress: dict[tuple, ForeachProgress] = {}
        self._failed: list[tuple[str, str]] = []
        self._num_tasks = 0
        # Which split each join closes (a join's predecessors sit inside that split).
        self._closes: dict[str, str] = {}
        # For static joins: which branch of the split each predecessor belongs to
        # (a branch may hold a switch whose cases meet again before the join).
        self._branch_of: dict[tuple[str, str], str] = {}
        for name in graph.sorted_nodes:
            node = graph[name]
            if node.matching_join:
                self._closes[node.matching_join] = name
        for join, split in self._closes.items():
            for pred, frames in graph.arrivals.get(join, ()):
                if frames and frames[-1][0] == split:
                    self._branch_of[(join, pred)] = frames[-1][1]

    # ---- spec construction -------------------------------------------------------------
    def _spec(self, step: str, inputs: list[tuple[str, int]], stack: tuple[ForeachFrame, ...],
              split_index: int | None = None) -> TaskSpec:
        tid = str(self._next_id)
        self._next_id += 1
        return TaskSpec(
            flow_name=self.flow_name, run_id=self.run_id, step_name=step, task_id=tid, attempt=0,
            input_paths=tuple(p for p, _ in inputs), input_attempts=tuple(a for _, a in inputs),
            datastore_root=self.ds.root, user=self.user, split_index=split_index, foreach_stack=stack,
            tags=self.tags, origin_run_id=self.origin_run_id, max_num_splits=self.max_num_splits,
        )

    def _in_progress_group(self, spec: TaskSpec) -> ForeachProgress | None:
        if not spec.foreach_stack:
            return None
        top = spec.foreach_stack[-1]
        if top.num_splits <= PROGRESS_THRESHOLD:
            return None
        key = (spec.step_name, tuple(f.index for f in spec.foreach_stack[:-1]))
        p = self._progress.get(key)
        if p is None:
            p = self._progress[key] = ForeachProgress(spec.step_name, top.num_splits)
        return p

    # ---- main loop ---------------------------------------------------------------------
    def run(self) -> RunOutcome:
        start = self.graph.start
        self._queue.append(self._spec(start, [(PARAMETERS_PATH, 0)], ()))
        last_tail = 0.0
        try:
            while self._queue or self._running:
                while self._queue and len(self._running) < self.max_workers and not self._failed:
                    self._launch(self._queue.popleft())
                self._flush_rows()
                finished = self.launcher.poll(0.05 if self._running else 0.0)
                now = time.monotonic()
                if finished or now - last_tail > 0.05:
                    self._tail_all()
                    last_tail = now
                for f in finished:
                    self._on_finished(f)
                if self._failed and self._running:
                    self._kill_all()
        finally:
            self._flush_rows()
        ok = not self._failed
        return RunOutcome(ok=ok, failed=list(self._failed), num_tasks=self._num_tasks)

    def _launch(self, spec: TaskSpec) -> None:
        out = self.ds.log_path(self.flow_name, self.run_id, spec.step_name, spec.task_id, spec.attempt, "stdout")
        err = self.ds.log_path(self.flow_name, self.run_id, spec.step_name, spec.task_id, spec.attempt, "stderr")
        now = time.time()
        self.launcher.launch(spec, out, err)
        self._num_tasks += 1
        run = _Running(spec, now)
        for stream, path in (("stdout", out), ("stderr", err)):
            run.tails.append((stream, open(path, "a+b"), bytearray()))
        for _, f, _ in run.tails:
            f.seek(0)
        self._running[spec.key] = run
        self._pending_rows.append(self._row(spec, "running", now, None))
        prog = self._in_progress_group(spec)
        if prog is not None:
            prog.running += 1
            self.console.progress(prog)
        else:
            self.console.system(spec.step_name, spec.task_id, "Task is starting.")

    def _row(self, spec: TaskSpec, status: str, started: float, finished: float | None) -> dict:
        return {"flow": self.flow_name, "run_id": self.run_id, "step": spec.step_name,
                "task_id": spec.task_id, "attempt": spec.attempt, "status": status,
                "started_at": started, "finished_at": finished}

    def _flush_rows(self) -> None:
        if self._pending_rows:
            self.index.upsert_attempts(self._pending_rows)
            self._pending_rows = []

    def _tail(self, run: _Running, final: bool = False) -> None:
        spec = run.spec
        for stream, f, partial in run.tails:
            data = f.read()
            if data:
                partial += data
            if not partial:
                continue
            *lines, rest = partial.split(b"\n")
            if final and rest:
                lines.append(rest)
                rest = b""
            for line in lines:
                self.console.task_line(spec.step_name, spec.task_id, line.decode("utf-8", "replace"), stream=stream)
            partial[:] = rest

    def _tail_all(self) -> None:
        for run in self._running.values():
            self._tail(run)

    def _on_finished(self, fin: Finished) -> None:
        run = self._running.pop(fin.task_key)
        self._tail(run, final=True)
        for _, f, _ in run.tails:
            f.close()
        spec = run.spec
        res = fin.result
        prog = self._in_progress_group(spec)
        if prog is not None:
            prog.running -= 1
        if res is None or not res.ok:
            finished_at = res.finished_at if res else time.time()
            self._pending_rows.append(self._row(spec, "failed", run.started_at, finished_at))
            if res is None:
                why = f"killed by signal {-fin.returncode}" if fin.returncode < 0 else f"exit code {fin.returncode}"
                if not self._failed:  # siblings we killed are not the failure's cause
                    self.console.error(
                        f"[{self.run_id}/{spec.step_name}/{spec.task_id}] Task process ended without "
                        f"committing a result ({why}).")
            if prog is not None:
                prog.failed += 1
                self.console.progress(prog)
            if not self._failed or res is not None:
                self.console.system(spec.step_name, spec.task_id, "Task failed.")
            self._failed.append((spec.step_name, spec.task_id))
            return
        self._pending_rows.append(self._row(spec, "ok", res.started_at, res.finished_at))
        if prog is not None:
            prog.done += 1
            self.console.progress(prog, final=prog.done + prog.failed == prog.total)
        else:
            if res.num_splits:
                self.console.system(spec.step_name, spec.task_id, f"Foreach yields {res.num_splits} child steps.")
            self.console.system(spec.step_name, spec.task_id, "Task finished successfully.")
        if not self._failed:
            self._schedule_successors(spec, res)

    def _schedule_successors(self, spec: TaskSpec, res: TaskResult) -> None:
        me = (spec.key, spec.attempt)
        stack = spec.foreach_stack
        if res.num_splits:
            target = res.next_steps[0]
            for i in range(res.num_splits):
                value = res.foreach_values[i] if i < len(res.foreach_values) else ""
                frame = ForeachFrame(spec.step_name, res.foreach_var or "", i, res.num_splits, value)
                self._queue.append(self._spec(target, [me], stack + (frame,), split_index=i))
            return
        for target in res.next_steps:
            node = self.graph[target]
            if node.kind.value != "join":
                self._queue.append(self._spec(target, [me], stack))
                continue
            split = self._closes.get(target)
            if split is not None and self.graph[split].kind.value == "split-foreach":
                outer = stack[:-1]
                gkey = (target, tuple(f.index for f in outer))
                arrived = self._joins.setdefault(gkey, {})
                arrived[stack[-1].index] = me
                if len(arrived) == stack[-1].num_splits:
                    del self._joins[gkey]
                    inputs = [arrived[i] for i in range(stack[-1].num_splits)]
                    self._queue.append(self._spec(target, inputs, outer))
            else:
                gkey = (target, tuple(f.index for f in stack))
                arrived = self._joins.setdefault(gkey, {})
                arrived[self._branch_of.get((target, spec.step_name), spec.step_name)] = me
                need = self.graph[split].out_funcs if split is not None else node.in_funcs
                if all(s in arrived for s in need):
                    del self._joins[gkey]
                    self._queue.append(self._spec(target, [arrived[s] for s in need], stack))

    def _kill_all(self, grace: float = 5.0) -> None:
        for key in list(self._running):
            self.launcher.kill(key)
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline:
            for f in self.launcher.poll(0.05):
                if f.task_key in self._running:
                    self._on_finished(f)
            for key in list(self._running):
                self.launcher.kill(key)  # pids may only now be known
