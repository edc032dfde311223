"""``@parallel`` gangs (orchestration layer): the N tasks a ``num_parallel`` split
starts are queued as one unit, launched together or not at all, and finish
together: when one member fails the others are killed and the whole gang is
retried (or the run fails). ``Gangs`` keeps that state for one Scheduler and acts
through the few scheduler members ``GangHost`` names.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import HeadwaterException, ResourcesError
from ..flow.decorators import StepPolicy
from ..flow.parallel import PARALLEL_VAR, gang_metadata, gang_task_ids
from .launchers import Admission, Finished, Launcher, Request
from .launchers.admission import Env
from .taskspec import ForeachFrame, TaskResult, TaskSpec

if TYPE_CHECKING:
    from .console import Console
    from .delayed import DelayedQueue


class GangHost(Protocol):
    """The scheduler members a gang acts through (runtime.scheduler.Scheduler)."""

    launcher: Launcher
    console: Console
    admission: Admission
    max_workers: int
    _running: dict[str, Any]
    _failed: list[tuple[str, str]]
    _pending_rows: list[dict]
    _timed_out: set[str]
    _queue: deque[TaskSpec]
    _delayed: DelayedQueue

    def _new_task_id(self) -> str: ...
    def _spec(self, step: str, inputs: list[tuple[str, int]], stack: tuple[ForeachFrame, ...],
              split_index: int | None = None, task_id: str | None = None,
              extra: tuple[tuple[str, str], ...] = ()) -> TaskSpec: ...
    def _policy(self, step: str) -> StepPolicy: ...
    def _request(self, step: str) -> Request | None: ...
    def _launch(self, spec: TaskSpec, env: Env = ()) -> None: ...
    def _fail_without_task(self, spec: TaskSpec, error: HeadwaterException) -> None: ...
    def _record_crash(self, spec: TaskSpec, run: Any, fin: Finished, timed_out: bool,
                      message: str | None = None) -> dict[str, str]: ...
    def _row(self, spec: TaskSpec, status: str, started: float, finished: float | None) -> dict: ...
    def _finish_ok(self, spec: TaskSpec, res: TaskResult, started_at: float, cloned: bool = False) -> None: ...


@dataclass
class _Gang:
    """The tasks of one ``@parallel`` gang: launched together, finished together."""

    specs: list[TaskSpec]  # the current attempt of every member, control task first
    running: set[str] = field(default_factory=set)
    done: list[tuple[TaskSpec, TaskResult, float]] = field(default_factory=list)  # ok members
    failure: tuple[TaskSpec, dict | None] | None = None  # the first member that failed


class Gangs:
    """The gangs of one run. Only a gang's control spec sits in the scheduler's queue."""

    def __init__(self, host: GangHost) -> None:
        self._host = host
        self._gangs: dict[str, _Gang] = {}  # control task key -> its gang
        self._gang_of: dict[str, str] = {}  # member task key -> control task key

    def is_control(self, key: str) -> bool:
        """Whether ``key`` is the queued control task of a gang (it launches the whole gang)."""
        return key in self._gangs

    def is_member(self, key: str) -> bool:
        """Whether ``key`` is a task of a gang (the control task included)."""
        return key in self._gang_of

    def queue(self, spec: TaskSpec, res: TaskResult) -> None:
        """Queue the N tasks the ``num_parallel`` split ``spec`` starts, as one unit."""
        h = self._host
        n = res.num_splits or 0
        target = res.next_steps[0]
        ids = gang_task_ids(h._new_task_id(), n)
        specs = [
            h._spec(target, [(spec.key, spec.attempt)],
                    spec.foreach_stack + (ForeachFrame(spec.step_name, PARALLEL_VAR, i, n, str(i)),),
                    split_index=i, task_id=tid, extra=gang_metadata(tid, i, n))
            for i, tid in enumerate(ids)
        ]
        self._gangs[specs[0].key] = _Gang(specs)
        for s in specs:
            self._gang_of[s.key] = specs[0].key
        h._queue.append(specs[0])

    def launch(self, control_key: str) -> bool:
        """Launch every task of the gang now, or none of them; False if it must wait for room.

        A gang larger than --max-workers runs when nothing else does: its tasks
        must all be up at once, so waiting for more workers would wait forever.
        """
        h = self._host
        gang = self._gangs[control_key]
        n = len(gang.specs)
        if h._running and len(h._running) + n > h.max_workers:
            return False
        control = gang.specs[0]
        req = h._request(control.step_name)
        envs: list[Env] = [() for _ in gang.specs]
        if req is not None:
            try:
                h.admission.check(control.step_name, req, count=n)
            except ResourcesError as e:
                h._fail_without_task(control, e)
                return True
            got = h.admission.admit([(spec.key, req) for spec in gang.specs])  # all or none
            if got is None:
                return False
            envs = got
        for spec, env in zip(gang.specs, envs):
            h._launch(spec, env)
            gang.running.add(spec.key)
        return True

    def member_finished(self, run: Any, fin: Finished) -> None:
        """A gang task ended (``run`` is the scheduler's record of it): settle the gang once all have."""
        h = self._host
        spec, res = run.spec, fin.result
        gang = self._gangs[self._gang_of[spec.key]]
        gang.running.discard(spec.key)
        if res is not None and res.ok:
            gang.done.append((spec, res, run.started_at))
        else:
            finished_at = res.finished_at if res else time.time()
            h._pending_rows.append(h._row(spec, "failed", run.started_at, finished_at))
            if h._failed:  # the run is already stopping
                return
            if gang.failure is None:
                exc = res.exception if res else h._record_crash(spec, run, fin, fin.task_key in h._timed_out)
                gang.failure = (spec, exc)
                for key in gang.running:  # a gang lives and dies together
                    h.launcher.kill(key)
            elif res is None:
                h._record_crash(spec, run, fin, False, message=(
                    f"Killed because task {gang.failure[0].task_id} of its @parallel gang failed."))
        h._timed_out.discard(spec.key)
        if gang.running or h._failed:
            return
        if gang.failure is None:
            for member, member_res, started in sorted(gang.done, key=lambda d: d[0].split_index or 0):
                h._finish_ok(member, member_res, started)
            self._forget(gang)
            return
        for member, member_res, started in gang.done:  # committed ok, but their gang failed
            h._pending_rows.append(h._row(member, "ok", member_res.started_at, member_res.finished_at))
        failed, _ = gang.failure
        policy = h._policy(failed.step_name)
        if failed.attempt < policy.retries:
            delay = policy.retry_delay
            h.console.system(failed.step_name, failed.task_id,
                             f"Task failed; retrying the whole @parallel gang (attempt {failed.attempt + 2} "
                             f"of {policy.retries + 1})" + (f" in {delay:g} s." if delay else "."))
            gang.specs = [dataclasses.replace(s, attempt=s.attempt + 1) for s in gang.specs]
            gang.done, gang.failure = [], None
            if delay:
                h._delayed.push(time.monotonic() + delay, gang.specs[0])
            else:
                h._queue.appendleft(gang.specs[0])
            return
        h.console.system(failed.step_name, failed.task_id, "Task failed.")
        h._failed.append((failed.step_name, failed.task_id))

    def _forget(self, gang: _Gang) -> None:
        del self._gangs[gang.specs[0].key]
        for s in gang.specs:
            del self._gang_of[s.key]
