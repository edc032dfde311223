"""The Scheduler: one thread that drives a run's graph over a Launcher.

It learns what each task did (transition, foreach cardinality, status) from
its TaskResult, never by reading the store back. It owns the run's index rows
and the console, enforces ``@timeout`` by killing tasks that outlive it, retries failed
attempts (``@retry``), gives ``@catch`` a fallback attempt after a crash, admits
``@resources`` tasks only when the launcher's admission says they fit, launches the tasks of
a ``@parallel`` gang together (all or none; runtime.gangs), and — on resume — clones tasks of
the origin run instead of launching them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import HeadwaterException, ResourcesError, TimeoutException, qualified_type
from ..flow.decorators import StepPolicy
from ..flow.graph import FANOUT, NodeKind
from ..meta import MetadataIndex
from ..store import Datastore
from ..store.logs import stamp
from ..store.logsink import FileTail, LogPump, StoreLogTail, read_log, remove_spool_dirs
from ..store.records import RecordStore
from ..store.taskmeta import CRASH_TYPE, PARAMETERS_PATH
from .console import PROGRESS_THRESHOLD, Console, ForeachProgress
from .deadline import GRACE, task_deadline, timeout_message
from .delayed import DelayedQueue
from .gangs import Gangs
from .launchers import Admission, Finished, Launcher, LocalMachine, Machine, Request
from .launchers.admission import Env
from .resume import ResumePlan
from .taskspec import ForeachFrame, TaskResult, TaskSpec, stack_record

#: What the console and the task's stderr log say for a task killed by SIGSEGV (Metaflow's words).
SEGFAULT_LINE = "Task failed with a segmentation fault."
_STAMP = re.compile(rb"^\x1e[0-9.]*\x1f")


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


@dataclass
class _Running:
    spec: TaskSpec
    started_at: float
    kill_at: float | None = None  # time.monotonic() past which the scheduler kills the task (@timeout)
    tails: list[tuple[str, Any, bytearray]] = field(default_factory=list)  # (stream, tail, partial line)
    shipped: tuple[str, ...] = ()  # log keys the scheduler's LogPump ships for this task


@dataclass
class RunOutcome:
    ok: bool
    failed: list[tuple[str, str]]  # (step, task_id); the first is the cause
    num_tasks: int
    cloned: int = 0
    reason: str | None = None  # why the run failed, when no task failing says it (e.g. --max-num-splits)


class Scheduler:
    """Runs one flow run to completion (or first unrecoverable failure)."""

    def __init__(
        self, *, flow_name: str, graph: Any, ds: Datastore, index: MetadataIndex, launcher: Launcher,
        run_id: str, user: str, tags: tuple[str, ...] = (), max_workers: int = 16,
        max_num_splits: int = 100, console: Console, origin_run_id: str | None = None,
        policies: dict[str, StepPolicy] | None = None, decospecs: tuple[str, ...] = (),
        machine: Machine | None = None, resume: ResumePlan | None = None,
        task_created: dict[str, tuple[Any, ...]] | None = None, namespace: str | None = None,
        identity: str | None = None,
    ) -> None:
        self.flow_name = flow_name
        self.graph = graph
        self.ds = ds
        self.index = index
        self.launcher = launcher
        self.run_id = run_id
        self.user = user
        self.identity = identity  # Settings.identity: production:<token> in a deployment's run
        self.tags = tags
        self.max_workers = max(1, max_workers)
        self.max_num_splits = max_num_splits
        self.console = console
        self.origin_run_id = origin_run_id
        self.policies = policies or {}
        self.decospecs = decospecs
        # The launcher decides whether @resources fit; ``machine`` replaces that with a local
        # machine of this size (tests drive a fake launcher on a pretend machine).
        # A launcher that is no Launcher subclass (a plugin) admits everything.
        self.admission: Admission = (LocalMachine(machine) if machine is not None
                                     else getattr(launcher, "admission", None) or Admission())
        self.resume = resume
        # Local tasks on a remote store write spooled log files that this pump ships.
        self._pump = (LogPump(ds.objects) if not ds.logs_in_place and not getattr(launcher, "ships_logs", False)
                      else None)
        self._task_created = task_created  # step -> decorators with a runtime_task_created hook
        # run --namespace: the tasks' client namespace ("" = global), carried in TaskSpec.extra
        self._namespace_extra = (("namespace", namespace),) if namespace is not None else ()
        self._queue: deque[TaskSpec] = deque()  # ready to launch, in order
        # Resume: specs not yet matched against the origin run; each is matched once, when queued.
        self._to_match: deque[TaskSpec] = deque()
        # Specs that did not fit (@resources, a gang larger than the free workers), one queue per
        # step (its tasks ask for the same room): a pass looks at each queue's head only.
        self._blocked: dict[str, deque[TaskSpec]] = {}
        self._room_freed = False  # a task ended since the blocked queues were last tried
        self._delayed = DelayedQueue()  # retries waiting for their time
        self._running: dict[str, _Running] = {}
        self._next_id = 1
        self._joins: dict[tuple, dict[Any, tuple[str, int]]] = {}
        self._pending_rows: list[dict] = []
        self._progress: dict[tuple, ForeachProgress] = {}
        self._failed: list[tuple[str, str]] = []
        self._reason: str | None = None
        self._timed_out: set[str] = set()
        self._num_tasks = 0
        self._clone_pool: Any = None
        self._cloned = 0
        self._closes: dict[str, str] = {}  # join -> the split it closes
        self._branch_of: dict[tuple[str, str], str] = {}  # (static join, predecessor) -> branch
        self._gangs = Gangs(self)  # @parallel gangs (only a gang's control spec is queued)
        for name in graph.sorted_nodes:
            node = graph[name]
            if node.matching_join:
                self._closes[node.matching_join] = name
        for join, split in self._closes.items():
            for pred, frames in graph.arrivals.get(join, ()):
                if frames and frames[-1][0] == split:
                    self._branch_of[(join, pred)] = frames[-1][1]

    def _policy(self, step: str) -> StepPolicy:
        p = self.policies.get(step)
        return p if p is not None else StepPolicy()

    def _new_task_id(self) -> str:
        tid = str(self._next_id)
        self._next_id += 1
        return tid

    # ---- spec construction -------------------------------------------------------------
    def _spec(self, step: str, inputs: list[tuple[str, int]], stack: tuple[ForeachFrame, ...],
              split_index: int | None = None, task_id: str | None = None,
              extra: tuple[tuple[str, str], ...] = ()) -> TaskSpec:
        tid = task_id if task_id is not None else self._new_task_id()
        policy = self._policy(step)
        if policy.resources:
            extra = (("resources", json.dumps(policy.resources)),) + extra
        return TaskSpec(
            flow_name=self.flow_name, run_id=self.run_id, step_name=step, task_id=tid, attempt=0,
            input_paths=tuple(p for p, _ in inputs), input_attempts=tuple(a for _, a in inputs),
            datastore_root=self.ds.root, user=self.user, identity=self.identity, split_index=split_index, foreach_stack=stack,
            tags=self.tags, origin_run_id=self.origin_run_id,
            max_user_code_retries=policy.retries, env=tuple(policy.env.items()), decospecs=self.decospecs,
            extra=extra + self._namespace_extra,
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
        self._enqueue(self._spec(self.graph.start, [(PARAMETERS_PATH, 0)], ()))
        last_tail = 0.0
        try:
            while self._queue or self._to_match or self._blocked or self._running or self._delayed:
                now = time.monotonic()
                self._queue.extend(self._delayed.pop_due(now))
                if not self._failed:
                    self._launch_ready()
                elif self._queue or self._to_match or self._blocked or self._delayed:
                    self._queue.clear()
                    self._to_match.clear()
                    self._blocked.clear()
                    self._delayed.clear()
                self._flush_rows()
                wait = 0.05 if self._running else 0.0
                if self._delayed and not self._queue:
                    wait = max(0.0, min(0.05 if self._running else 1.0, self._delayed.next_at() - now))
                finished = self.launcher.poll(wait)
                now = time.monotonic()
                if finished or now - last_tail > 0.05:
                    self._tail_all()
                    last_tail = now
                for f in finished:
                    self._on_finished(f)
                self._enforce_timeouts(time.monotonic())
                if self._failed and self._running:
                    self._kill_all()
        finally:
            self._flush_rows()
            if self._pump is not None:
                self._pump.close()
                remove_spool_dirs(self.ds.spool_root(), self.flow_name, self.run_id)
            if self._clone_pool is not None:
                self._clone_pool.shutdown()
        return RunOutcome(ok=not self._failed, failed=list(self._failed), num_tasks=self._num_tasks,
                          cloned=self._cloned, reason=self._reason)

    def _enqueue(self, spec: TaskSpec) -> None:
        """Queue a new task (attempt 0); on resume it is first matched against the origin run."""
        (self._to_match if self.resume is not None else self._queue).append(spec)

    def _clone_ready(self) -> None:
        """Resume: commit every newly queued task that matches an origin task as a clone.

        Each spec is matched once, when it was queued (its inputs' origins are
        known by then and never change), so a pass costs the new specs only.
        Clones are written by a thread pool (each is a few small-file syscalls,
        which release the GIL); their successors may be clones too, so repeat.
        """
        assert self.resume is not None
        while self._to_match and not self._failed:
            matches = []
            while self._to_match:
                spec = self._to_match.popleft()
                # A gang always runs again as a whole: its tasks start together or not at all.
                gang = self._gangs.is_control(spec.key)
                origin = self.resume.match(spec, self.graph) if spec.attempt == 0 and not gang else None
                if origin is None:
                    self._queue.append(spec)
                else:
                    matches.append((spec, origin))
            if not matches:
                return
            if self._clone_pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._clone_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="headwater-clone")
            now = time.time()
            results = self._clone_pool.map(lambda m: self.resume.clone(self.ds, *m), matches)
            for (spec, _), res in zip(matches, results):
                if self._task_created:
                    self._announce(spec, cloned=True)
                self._num_tasks += 1
                self._cloned += 1
                self._finish_ok(spec, res, now, cloned=True)

    def _launch_ready(self) -> None:
        """Launch queued tasks while workers are free: O(1) per task launched or blocked.

        Tasks that wait for room (``@resources``, a gang) leave the ready queue
        for their step's blocked queue, which is looked at again only after a
        task ended; nothing is popped and put back while the workers are full.
        """
        if self.resume is not None:
            self._clone_ready()
        if self._room_freed:
            self._room_freed = False
            self._launch_blocked()
        while self._queue and not self._failed and len(self._running) < self.max_workers:
            spec = self._queue.popleft()
            waiting = self._blocked.get(spec.step_name)
            if waiting is not None:  # keep the step's order: behind its tasks that wait already
                waiting.append(spec)
            elif not self._try_launch(spec):
                self._blocked[spec.step_name] = deque((spec,))

    def _launch_blocked(self) -> None:
        """Launch the heads of the blocked queues while they fit (a head that does not fit
        means the rest of its queue, asking for the same room, does not either)."""
        for step in list(self._blocked):
            waiting = self._blocked[step]
            while waiting and not self._failed and len(self._running) < self.max_workers:
                if not self._try_launch(waiting[0]):
                    break
                waiting.popleft()
            if not waiting:
                del self._blocked[step]

    def _try_launch(self, spec: TaskSpec) -> bool:
        """Launch ``spec`` (a whole gang for a gang's control spec); False if it must wait for room."""
        if self._gangs.is_control(spec.key):
            return self._gangs.launch(spec.key)
        env = self._admit(spec)
        if env is None:
            return bool(self._failed)  # a request the launcher can never hold failed the run: drop it
        self._launch(spec, env)
        return True

    def _admit(self, spec: TaskSpec) -> Env | None:
        """The env the launcher's admission gives the task (possibly none), or None if it must
        wait for room (or can never run: then the run has failed)."""
        req = self._request(spec.step_name)
        if req is None:
            return ()
        try:
            self.admission.check(spec.step_name, req)
        except ResourcesError as e:
            self._fail_without_task(spec, e)
            return None
        envs = self.admission.admit([(spec.key, req)])
        return None if envs is None else envs[0]

    def _request(self, step: str) -> Request | None:
        """What a task of ``step`` asks the admission for; None without ``@resources``."""
        p = self._policy(step)
        return None if p.cpu is None else Request(p.cpu, p.gpu)

    def _launch(self, spec: TaskSpec, env: Env = ()) -> None:
        if env:
            spec = dataclasses.replace(spec, env=spec.env + env)
        out = self.ds.log_path(self.flow_name, self.run_id, spec.step_name, spec.task_id, spec.attempt, "stdout")
        err = self.ds.log_path(self.flow_name, self.run_id, spec.step_name, spec.task_id, spec.attempt, "stderr")
        if self._task_created and spec.attempt == 0:
            self._announce(spec, cloned=False)
        # One deadline: the task arms its timer for what is left of it and raises TimeoutException
        # itself (runtime.deadline); the kill, GRACE later, is for a step that swallowed it or
        # hangs below Python.
        at = task_deadline(self._policy(spec.step_name).timeout)
        if at is not None:
            spec = dataclasses.replace(spec, deadline=at)
        now = time.time()
        self.launcher.launch(spec, out, err)
        if spec.attempt == 0:
            self._num_tasks += 1
        run = _Running(spec, now, kill_at=at + GRACE if at is not None else None)
        for stream, path in (("stdout", out), ("stderr", err)):
            run.tails.append((stream, self._log_tail(spec, stream, path), bytearray()))
        if self._pump is not None and not self._ships_logs(spec):
            run.shipped = tuple(self._ship_log(spec, stream, path) for stream, path in (("stdout", out),
                                                                                         ("stderr", err)))
        self._running[spec.key] = run
        self._pending_rows.append(self._row(spec, "running", now, None))
        prog = self._in_progress_group(spec)
        if prog is not None:
            prog.running += 1
            self.console.progress(prog)
        else:
            what = "Task is starting." if spec.attempt == 0 else f"Task is starting (retry {spec.attempt})."
            if spec.fallback is not None:
                what = "Task is starting (@catch records the crash or timeout)."
            self.console.system(spec.step_name, spec.task_id, what)

    def _ships_logs(self, spec: TaskSpec) -> bool:
        """Whether ``spec``'s task ships its own log to the store (a routing launcher decides per step)."""
        ships = getattr(self.launcher, "ships_logs_of", None)  # a plugin launcher may not subclass Launcher
        return bool(ships(spec) if ships is not None else getattr(self.launcher, "ships_logs", False))

    def _announce(self, spec: TaskSpec, cloned: bool) -> None:
        """Metaflow's runtime_task_created hook of the step's decorators."""
        for d in self._task_created.get(spec.step_name, ()):  # type: ignore[union-attr]
            d.runtime_task_created(self.ds, spec.task_id, spec.split_index, list(spec.input_paths), cloned, None)

    def _row(self, spec: TaskSpec, status: str, started: float, finished: float | None) -> dict:
        return {"flow": self.flow_name, "run_id": self.run_id, "step": spec.step_name,
                "task_id": spec.task_id, "attempt": spec.attempt, "status": status,
                "started_at": started, "finished_at": finished}

    def _flush_rows(self) -> None:
        if self._pending_rows:
            self.index.upsert_attempts(self._pending_rows)
            self._pending_rows = []

    # ---- output ------------------------------------------------------------------------
    def _log_tail(self, spec: TaskSpec, stream: str, path: str) -> FileTail | StoreLogTail:
        """Where the console reads a task's new output: the local file it writes, or the
        store for a launcher whose tasks ship their own logs."""
        if self._ships_logs(spec):
            key = RecordStore.log_key(self.flow_name, self.run_id, spec.step_name, spec.task_id, spec.attempt,
                                      stream)
            return StoreLogTail(self.ds.objects, key)
        return FileTail(path)

    def _ship_log(self, spec: TaskSpec, stream: str, path: str) -> str:
        """Have the scheduler's LogPump ship a local task's log file to the (remote) store."""
        key = RecordStore.log_key(self.flow_name, self.run_id, spec.step_name, spec.task_id, spec.attempt, stream)
        assert self._pump is not None
        self._pump.add(key, path)
        return key

    def _tail(self, run: _Running, final: bool = False) -> None:
        spec = run.spec
        for stream, f, partial in run.tails:
            data = f.read_new(final)
            if data:
                partial += data
            if not partial:
                continue
            *lines, rest = partial.split(b"\n")
            if final and rest:
                lines.append(rest)
                rest = b""
            for line in lines:
                text = _STAMP.sub(b"", line).decode("utf-8", "replace")
                self.console.task_line(spec.step_name, spec.task_id, text, stream=stream)
            partial[:] = rest

    def _tail_all(self) -> None:
        for run in self._running.values():
            self._tail(run)

    # ---- completion --------------------------------------------------------------------
    def _enforce_timeouts(self, now: float) -> None:
        for key, run in self._running.items():
            if run.kill_at is not None and now > run.kill_at:
                self._timed_out.add(key)
                self.launcher.kill(key)  # again each pass: the pid may not have been known yet

    def _on_finished(self, fin: Finished) -> None:
        run = self._running.pop(fin.task_key)
        self._room_freed = True
        self._tail(run, final=True)
        for _, f, _ in run.tails:
            f.close()
        try:
            self._settle(run, fin)
        finally:
            for key in run.shipped:  # after _settle: a crash adds its line to the log
                self._pump.finish(key)  # type: ignore[union-attr]

    def _settle(self, run: _Running, fin: Finished) -> None:
        self.admission.release(run.spec.key)
        spec = run.spec
        res = fin.result
        if self._gangs.is_member(spec.key):
            self._gangs.member_finished(run, fin)
            return
        prog = self._in_progress_group(spec)
        if prog is not None:
            prog.running -= 1
        if res is not None and res.ok:
            self._finish_ok(spec, res, run.started_at)
            return
        timed_out = fin.task_key in self._timed_out
        self._timed_out.discard(fin.task_key)
        finished_at = res.finished_at if res else time.time()
        self._pending_rows.append(self._row(spec, "failed", run.started_at, finished_at))
        if self._failed:  # the run is already stopping: this is a sibling we killed
            return
        exc = res.exception if res else None
        if res is None:
            exc = self._record_crash(spec, run, fin, timed_out, message=None if timed_out else fin.message)
        segfault = res is None and not timed_out and fin.returncode == -signal.SIGSEGV
        self._retry_or_fail(spec, res is None, exc, prog, failed_line=SEGFAULT_LINE if segfault else "Task failed.")

    def _record_crash(self, spec: TaskSpec, run: _Running, fin: Finished, timed_out: bool,
                      message: str | None = None) -> dict[str, str]:
        """A task that died without committing: commit a failed attempt record for it."""
        if message is not None:
            exc = {"type": CRASH_TYPE, "message": message, "traceback": ""}
        elif timed_out:
            secs = self._policy(spec.step_name).timeout or 0
            exc = {"type": qualified_type(TimeoutException), "message": timeout_message(spec.step_name, secs),
                   "traceback": ""}
        else:
            code = fin.returncode
            why = f"killed by {_signal_name(-code)} (signal {-code})" if code < 0 else f"exit code {code}"
            exc = {"type": CRASH_TYPE, "message": f"The task process died without committing ({why}).",
                   "traceback": ""}
            self._log_crash(spec, code)
        self.console.error(f"[{self.run_id}/{spec.step_name}/{spec.task_id}] {exc['message']}")
        self.ds.records.write_attempt({
            "version": 1, "flow": self.flow_name, "run_id": self.run_id, "step": spec.step_name,
            "task_id": spec.task_id, "attempt": spec.attempt, "status": "failed",
            "started_at": run.started_at, "finished_at": time.time(), "input_paths": list(spec.input_paths),
            "split_index": spec.split_index,
            "foreach_stack": stack_record(spec.foreach_stack),
            "transition": None, "artifacts": {}, "exception": exc, "metadata": {"user": self.user},
        })
        return exc

    def _log_crash(self, spec: TaskSpec, returncode: int) -> None:
        """Say in the task's stderr log how its process died (the task could not)."""
        if returncode == -signal.SIGSEGV:
            text = SEGFAULT_LINE
        elif returncode < 0:
            text = f"Task failed: its process was killed by {_signal_name(-returncode)}."
        else:
            text = f"Task failed: its process exited with code {returncode} without committing."
        line = stamp(time.time()) + text.encode() + b"\n"
        if self._ships_logs(spec):  # the task's shipped chunks, then this line, as the complete log
            key = RecordStore.log_key(self.flow_name, self.run_id, spec.step_name, spec.task_id, spec.attempt,
                                      "stderr")
            self.ds.objects.put(key, [read_log(self.ds.objects, key), line])
            return
        path = self.ds.log_path(self.flow_name, self.run_id, spec.step_name, spec.task_id, spec.attempt, "stderr")
        with open(path, "ab") as f:
            f.write(line)

    def _retry_or_fail(self, spec: TaskSpec, crashed: bool, exc: dict | None, prog: ForeachProgress | None,
                       failed_line: str = "Task failed.") -> None:
        policy = self._policy(spec.step_name)
        nxt = None
        if spec.fallback is None and spec.attempt < policy.retries:
            nxt = dataclasses.replace(spec, attempt=spec.attempt + 1)
            delay = policy.retry_delay
            msg = f"Task failed; retrying (attempt {spec.attempt + 2} of {policy.retries + 1})" + (
                f" in {delay:g} s." if delay else ".")
        elif policy.catch and crashed and spec.fallback is None:
            nxt = dataclasses.replace(spec, attempt=spec.attempt + 1, fallback=dict(exc or {}))
            delay = 0.0
            msg = "Task died; @catch records the failure and the flow continues."
        if nxt is not None:
            self.console.system(spec.step_name, spec.task_id, msg)
            if delay:
                self._delayed.push(time.monotonic() + delay, nxt)
            else:
                self._queue.appendleft(nxt)
            return
        if prog is not None:
            prog.failed += 1
            self.console.progress(prog)
        self.console.system(spec.step_name, spec.task_id, failed_line)
        self._failed.append((spec.step_name, spec.task_id))

    def _fail_without_task(self, spec: TaskSpec, error: HeadwaterException) -> None:
        self.console.error(error.render())
        self._failed.append((spec.step_name, spec.task_id))

    def _finish_ok(self, spec: TaskSpec, res: TaskResult, started_at: float, cloned: bool = False) -> None:
        self._pending_rows.append(self._row(spec, "ok", res.started_at if not cloned else started_at,
                                            res.finished_at))
        prog = self._in_progress_group(spec)
        if prog is not None:
            prog.done += 1
            self.console.progress(prog, final=prog.done + prog.failed == prog.total)
        elif cloned:
            self.console.system(spec.step_name, spec.task_id, "Cloned from a successful task of the origin run.")
        else:
            if res.num_splits and self.graph[spec.step_name].kind is NodeKind.PARALLEL:
                self.console.system(spec.step_name, spec.task_id,
                                    f"Starts a @parallel gang of {res.num_splits} tasks.")
            elif res.num_splits:
                self.console.system(spec.step_name, spec.task_id, f"Foreach yields {res.num_splits} child steps.")
            self.console.system(spec.step_name, spec.task_id, "Task finished successfully.")
        if not self._failed and not self._too_many_splits(spec, res):
            self._schedule_successors(spec, res)

    def _too_many_splits(self, spec: TaskSpec, res: TaskResult) -> bool:
        """Past ``--max-num-splits`` the split task stands (it succeeded) and the run fails, as in Metaflow."""
        n = res.num_splits or 0
        if n <= self.max_num_splits or self.graph[spec.step_name].kind is NodeKind.PARALLEL:
            return False
        self._reason = (f"Step {spec.step_name} (task-id {spec.task_id}) failed: Foreach in step {spec.step_name} "
                        f"yielded {n} child steps which is more than the current maximum of {self.max_num_splits} "
                        "children. You can raise the maximum with the --max-num-splits option.")
        self.console.error(self._reason)
        self._failed.append((spec.step_name, spec.task_id))
        return True

    def _schedule_successors(self, spec: TaskSpec, res: TaskResult) -> None:
        me = (spec.key, spec.attempt)
        stack = spec.foreach_stack
        if res.num_splits and self.graph[spec.step_name].kind is NodeKind.PARALLEL:
            self._gangs.queue(spec, res)
            return
        if res.num_splits:
            target = res.next_steps[0]
            for i in range(res.num_splits):
                value = res.foreach_values[i] if i < len(res.foreach_values) else ""
                frame = ForeachFrame(spec.step_name, res.foreach_var or "", i, res.num_splits, value)
                self._enqueue(self._spec(target, [me], stack + (frame,), split_index=i))
            return
        for target in res.next_steps:
            node = self.graph[target]
            if node.kind is not NodeKind.JOIN:
                self._enqueue(self._spec(target, [me], stack))
                continue
            split = self._closes.get(target)
            if split is not None and self.graph[split].kind in FANOUT:
                outer = stack[:-1]
                gkey = (target, tuple(f.index for f in outer))
                arrived = self._joins.setdefault(gkey, {})
                arrived[stack[-1].index] = me
                if len(arrived) == stack[-1].num_splits:
                    del self._joins[gkey]
                    inputs = [arrived[i] for i in range(stack[-1].num_splits)]
                    self._enqueue(self._spec(target, inputs, outer))
            else:
                gkey = (target, tuple(f.index for f in stack))
                arrived = self._joins.setdefault(gkey, {})
                arrived[self._branch_of.get((target, spec.step_name), spec.step_name)] = me
                need = self.graph[split].out_funcs if split is not None else node.in_funcs
                if all(s in arrived for s in need):
                    del self._joins[gkey]
                    self._enqueue(self._spec(target, [arrived[s] for s in need], stack))

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
