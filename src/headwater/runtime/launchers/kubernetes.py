"""The Kubernetes launcher: each task attempt runs as one batch/v1 Job on a Kubernetes cluster.

Selected for every step with ``HEADWATER_LAUNCHER=kubernetes`` and for the steps that
carry ``@kubernetes`` (``routing.BACKENDS``; ``--with kubernetes`` puts it on all).
The scheduler stays in the run process. An attempt's Job (``compute.kubernetes.job.step_job``)
runs ``python -m headwater.runtime.bootstrap ... -- step STEP --run-id ...``: the pod
fetches the run's code package from the datastore and runs the same ``execute`` as a
local task, shipping its stdout and stderr to the store as they grow
(``runtime.task_command``), so the console tails the store. A step with an environment
(``@pypi``, ``@conda``) has its lock stored in the datastore; the pod's bootstrap builds it
(``--environment-lock``) and runs the step with its interpreter.

How an attempt ends is read back, never guessed: a watch on the run's Jobs (falling
back to listing them every few seconds) sees each Job finish; the TaskResult is the
attempt record the task committed (``task_command.result_from_record``). A Job that
ended without one (deleted, DeadlineExceeded, OOMKilled, a pod that cannot start, a
bootstrap error) is a crashed attempt with a message saying why, and when the task
shipped no log its pod's log becomes the attempt's stderr. Kubernetes never retries
(``backoffLimit: 0``): ``@retry`` and ``@catch`` decide, each attempt its own Job,
named deterministically, so a repeated submission finds the Job already there.
``kill`` deletes the Job with its pod.

When the API fails, the launcher neither hangs nor hides it: only the API's answers
(``KubernetesApiError``) are waited out; a refused delete is tried again each sweep and
the attempt is reported only once its Job is gone; once every look at the run's Jobs
(or one Job's delete) has failed for ``API_PATIENCE`` seconds, the attempts waiting on it
fail with what the API answered, and ``shutdown`` names any Job it could not delete. Any
other exception in the watch or the sweep is a bug: its traceback goes to stderr and the
waiting attempts fail saying so.
"""

from __future__ import annotations

import enum
import math
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable

from ...compute.kubernetes.api import (
    JOB_NAME_LABEL, REQUEST_TIMEOUT, JobApi, JobPhase, KubernetesApiError, job_phase, run_selector,
)
from ...compute.kubernetes.commands import invocation_for
from ...compute.kubernetes.job import step_job
from ...exceptions import HeadwaterException
from ...flow.kubernetes import KubernetesOptions, kubernetes_options
from ...store.roots import is_local_root
from ..deadline import timeout_message
from ..taskspec import TaskSpec
from .base import Finished, Launcher, TaskContext

#: Returncode reported for an attempt whose Job was deleted or stopped by Kubernetes.
KILLED = -signal.SIGKILL
#: Seconds a watch stream stays open before it is opened again.
WATCH_SECONDS = 30
#: Seconds between two looks at all of the run's Jobs and pods (a missed event, a pod that cannot start).
SWEEP_SECONDS = 5.0
#: Seconds between looks when the API server offers no watch.
POLL_SECONDS = 1.0
#: Why a container waits that it will not get past by itself: the attempt fails instead of hanging.
STUCK_REASONS = frozenset({"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                           "CreateContainerConfigError"})
#: Seconds the API may fail in a row (every sweep of a namespace, or every delete of one Job)
#: before the attempts waiting on it fail with what it answered instead of waiting forever.
API_PATIENCE = 30.0


class KubernetesLaunchError(HeadwaterException):
    """Steps cannot run on Kubernetes as the run is configured."""

    headline = "Cannot run steps on Kubernetes"


class _Deletion(enum.Enum):
    """What came of asking the API to delete a Job."""

    REQUESTED = "requested"  # accepted: the Job and its pod are going; the watch or a sweep sees it gone
    GONE = "gone"  # there was no such Job (any more)
    FAILED = "failed"  # refused or unreachable: the Job may still run


@dataclass
class _Attempt:
    """One attempt's Job, while the launcher waits for it."""

    spec: TaskSpec
    name: str
    namespace: str
    created: float = math.inf  # time.monotonic() once the create call returned
    killed: bool = False  # the launcher deleted it (the scheduler asked)
    why: str | None = None  # why it failed, when the launcher ended it (a pod that cannot start, the API)
    delete_error: str | None = None  # what the API answered the last delete, while it keeps failing
    delete_failing_since: float = math.inf  # time.monotonic() of the first of those failures


def launcher_for_steps(ctx: TaskContext, decorators: Mapping[str, Any]) -> KubernetesLauncher:
    """The Kubernetes launcher of a run whose ``decorators`` (``@kubernetes`` by step) go there
    (every step when empty: ``HEADWATER_LAUNCHER=kubernetes``); see ``routing.BACKENDS``."""
    return KubernetesLauncher(ctx, decorators or getattr(ctx.graph, "sorted_nodes", ()))


def _container_state(pod: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``("waiting" | "terminated" | "running" | "", state)`` of the pod's task container."""
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        for kind, state in (status.get("state") or {}).items():
            if state:
                return kind, state
    return "", {}


def stuck_reason(pod: dict[str, Any]) -> str | None:
    """Why the pod's container waits and will not start by itself (``STUCK_REASONS``), or None."""
    kind, state = _container_state(pod)
    if kind == "waiting" and state.get("reason") in STUCK_REASONS:
        return f"{state['reason']}: {state.get('message') or 'no message'}"
    return None


def failure_message(name: str, job: dict[str, Any] | None, pods: Iterable[dict[str, Any]],
                    spec: TaskSpec, timeout: float | None) -> str:
    """Why Job ``name`` ended without its task committing, from its conditions and its pods' status.

    ``job`` is None when the Job was deleted; ``timeout`` is the step's ``@timeout`` in seconds.
    """
    if job is None:
        return (f"The Kubernetes Job {name} was deleted before its task finished "
                "(by `kubernetes kill`, or by hand).")
    if job_phase(job) is JobPhase.TIMED_OUT:
        head = timeout_message(spec.step_name, timeout) if timeout else f"Step {spec.step_name} timed out"
        limit = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return (f"{head}: Kubernetes stopped its Job {name}, which passed its activeDeadlineSeconds "
                f"({limit} s; DeadlineExceeded).")
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        stuck = stuck_reason(pod)
        if stuck is not None:
            return f"The pod {pod_name} of Kubernetes Job {name} could not start its container: {stuck}."
        kind, state = _container_state(pod)
        if kind == "terminated" and state.get("reason") == "OOMKilled":
            return (f"The container of pod {pod_name} (Kubernetes Job {name}) was OOMKilled: it used more memory "
                    "than its limit. Give the step more memory (@kubernetes(memory=...) or @resources).")
        if kind == "terminated":
            return (f"The container of pod {pod_name} (Kubernetes Job {name}) exited with code "
                    f"{state.get('exitCode')} ({state.get('reason') or 'no reason'}) before the task committed.")
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return (f"The Kubernetes Job {name} failed before its task committed: "
                    f"{cond.get('reason') or 'no reason'}: {cond.get('message') or 'no message'}.")
    return f"The Kubernetes Job {name} ended ({job_phase(job).value}) without its task committing."


def _left_running_message(attempts: Iterable[_Attempt], script: str) -> str:
    """What to tell the user of the Jobs that headwater could not delete (they may still run)."""
    attempts = list(attempts)
    jobs = ", ".join(f"{a.name} (namespace {a.namespace})" for a in attempts)
    kills = " and ".join(sorted({f"python {script} kubernetes kill --run-id {a.spec.run_id}" for a in attempts}))
    return (f"Kubernetes Job(s) {jobs} may still be running: headwater could not delete them "
            f"({attempts[-1].delete_error})\nStop them with: {kills}")


class KubernetesLauncher(Launcher):
    """Runs each attempt as a Job; a watch (else listing) learns when it ended; kill deletes it.

    Parameters
    ----------
    ctx : TaskContext
        The run's flow, graph, datastore root (one the pods can reach: S3) and settings.
    steps : iterable of str
        The steps it runs (for messages and up-front validation of their pods).
    api : JobApi, optional
        The cluster's API (default ``JobApi.from_config()``: in-cluster, else the kubeconfig).

    Raises
    ------
    KubernetesLaunchError
        The datastore is a local directory, which no pod can see.
    KubernetesApiError
        The ``kubernetes`` package is missing, or no cluster is configured.
    """

    name = "kubernetes"
    ships_logs = True
    remote = True

    def __init__(self, ctx: TaskContext, steps: Iterable[str] = (), api: JobApi | None = None) -> None:
        super().__init__(ctx)
        self.steps = tuple(steps)
        if ctx.settings is None:
            from ...config import load_settings

            settings = load_settings()
        else:
            settings = ctx.settings
        self._settings = settings.with_(datastore_root=ctx.datastore_root)  # the root the run uses, normalised
        self._options: dict[str, KubernetesOptions] = {}
        for step in self.steps:  # a bad value fails the run before anything starts
            self.options(step)
        if is_local_root(ctx.datastore_root):
            which = ", ".join(repr(s) for s in self.steps) or "the steps"
            raise KubernetesLaunchError(
                f"Step(s) {which} run on Kubernetes, but the datastore {ctx.datastore_root} is a directory on "
                "this machine, which the pods cannot see.",
                hint="Use an S3 datastore: --datastore=s3 --datastore-root s3://bucket/prefix "
                     "(or HEADWATER_DATASTORE_ROOT=s3://bucket/prefix).")
        self.api = api if api is not None else JobApi.from_config()
        self._package: dict[str, Any] | None = None
        self._ds: Any = None
        self._lock = threading.Lock()
        self._running: dict[str, _Attempt] = {}  # task key -> its Job
        self._by_name: dict[str, _Attempt] = {}  # Job name -> the same
        self._done: queue.Queue[Finished] = queue.Queue()
        self._namespaces: set[str] = set()
        self._stop = threading.Event()
        self._watch_ok: dict[str, bool] = {}  # namespace -> its watch is open
        self._sweeps: list[threading.Thread] = []
        self._left: dict[str, _Attempt] = {}  # Job name -> an attempt reported although its delete failed
        self._shown: set[str] = set()  # tracebacks of internal errors already written to stderr
        from ...environments.remote import RemoteEnvironments

        self._envs = RemoteEnvironments.of_run(ctx.environments, self._settings)  # each lock stored once, for the pods

    # -- set-up ------------------------------------------------------------------------------
    def options(self, step: str) -> KubernetesOptions:
        """The validated pod options of ``step`` (``@kubernetes`` merged with ``@resources``, ``@timeout``)."""
        opts = self._options.get(step)
        if opts is None:
            decorators = getattr(getattr(self.ctx.flow_cls, step, None), "decorators", ())
            opts = self._options[step] = kubernetes_options(step, decorators)
        return opts

    def use_code_package(self, info: dict[str, Any]) -> None:
        self._package = dict(info)

    def start(self) -> None:
        from ...store import Datastore

        self._ds = Datastore(self.ctx.datastore_root)

    # -- the scheduler's calls ----------------------------------------------------------------
    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        if self._package is None:
            raise KubernetesLaunchError("The run stored no code package for its Kubernetes tasks.")
        if self._ds is None:
            self.start()
        job = step_job(self._settings, self.options(spec.step_name), invocation_for(spec),
                       flow_name=spec.flow_name, flow_file=self._package["script"],
                       package_key=self._package["key"], user=spec.user,
                       environment=self._envs.for_step(
                           spec.step_name, self._ds.content.for_run(spec.flow_name, spec.run_id)))  # lock pinned
        meta = job["metadata"]
        attempt = _Attempt(spec, meta["name"], meta["namespace"])
        with self._lock:
            self._running[spec.key] = self._by_name[attempt.name] = attempt
        self._follow(attempt.namespace, run_selector(spec.flow_name, spec.run_id))
        try:
            self.api.create(job)  # the same attempt submitted again finds its Job (409): never two
        except BaseException:
            with self._lock:
                self._running.pop(spec.key, None)
                self._by_name.pop(attempt.name, None)
            raise
        attempt.created = time.monotonic()
        return -1

    def poll(self, timeout: float) -> list[Finished]:
        out: list[Finished] = []
        try:
            out.append(self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait())
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def kill(self, task_key: str) -> None:
        with self._lock:
            attempt = self._running.get(task_key)
            if attempt is None or attempt.killed:  # asked again each pass of the scheduler: delete once
                return
            attempt.killed = True
        self._delete(attempt)  # reported when its Job is gone; a refused delete is tried again each sweep

    def shutdown(self) -> None:
        self._stop.set()
        # A daemon thread whose call returns while the interpreter exits aborts the process: let each
        # sweep finish the call it is in (a watch waits for events, and none come once all are reported).
        for thread in self._sweeps:
            thread.join(REQUEST_TIMEOUT)
        with self._lock:
            waiting = list(self._running.values())
        for attempt in waiting:
            if not attempt.killed or attempt.delete_error is not None:
                attempt.killed = True
                if self._try_delete(attempt) is _Deletion.FAILED:
                    self._left[attempt.name] = attempt
        tried = {a.name for a in waiting}
        for attempt in list(self._left.values()):  # one more try for each Job a delete failed for
            if attempt.name not in tried and self._try_delete(attempt) is not _Deletion.FAILED:
                del self._left[attempt.name]
        if self._left:
            sys.stderr.write(_left_running_message(list(self._left.values()), self.ctx.script) + "\n")
            sys.stderr.flush()

    # -- watching ---------------------------------------------------------------------------
    def _follow(self, namespace: str, selector: str) -> None:
        """Start watching (and sweeping) the run's Jobs (``selector``) in ``namespace``, once."""
        with self._lock:
            if namespace in self._namespaces:
                return
            self._namespaces.add(namespace)
        for target, what in ((self._watch_loop, "watch"), (self._sweep_loop, "sweep")):
            thread = threading.Thread(target=target, args=(namespace, selector), daemon=True,
                                      name=f"headwater-kubernetes-{what}-{namespace}")
            thread.start()
            if what == "sweep":
                self._sweeps.append(thread)

    def _watch_loop(self, namespace: str, selector: str) -> None:
        while not self._stop.is_set():
            try:
                for kind, job in self.api.watch_jobs(namespace, selector, timeout=WATCH_SECONDS):
                    self._watch_ok[namespace] = True
                    self._seen(job, deleted=kind == "DELETED")
                    if self._stop.is_set():
                        return
            except KubernetesApiError:  # no watch here (an old server, a proxy), or it broke off: the sweep polls
                self._watch_ok[namespace] = False
                self._stop.wait(WATCH_SECONDS)
            except Exception:
                self._watch_ok[namespace] = False
                self._internal_error(namespace, "watch")
                self._stop.wait(WATCH_SECONDS)

    def _sweep_loop(self, namespace: str, selector: str) -> None:
        failing_since = math.inf  # time.monotonic() of the first failed sweep in a row
        while not self._stop.wait(SWEEP_SECONDS if self._watch_ok.get(namespace) else POLL_SECONDS):
            try:
                error = self._sweep(namespace, selector)
            except Exception:
                self._internal_error(namespace, "sweep")
                continue
            if error is None:
                failing_since = math.inf
                continue
            now = time.monotonic()
            failing_since = min(failing_since, now)
            if now - failing_since >= API_PATIENCE:
                self._fail_waiting(namespace, lambda a: (
                    f"headwater stopped waiting for Kubernetes Job {a.name}: the API failed every look at the "
                    f"run's Jobs for {now - failing_since:.0f} s. {error.message} Hint: {error.hint}"))

    def _sweep(self, namespace: str, selector: str) -> KubernetesApiError | None:
        """Look at all of the run's Jobs and pods: a Job that ended or vanished unseen, a Job whose
        delete failed (asked again), or a pod that cannot start (its Job is deleted and the attempt
        fails saying why). Returns the API's last refusal to list, None when both lists succeeded."""
        began = time.monotonic()
        error: KubernetesApiError | None = None
        jobs: dict[str, dict[str, Any]] | None
        try:
            jobs = {j["metadata"]["name"]: j for j in self.api.list_jobs(namespace, selector)}
        except KubernetesApiError as e:
            jobs, error = None, e
        try:
            pods = self.api.list_pods(namespace, selector)
        except KubernetesApiError as e:
            pods, error = [], e
        with self._lock:
            mine = [a for a in self._running.values() if a.namespace == namespace and a.created < began]
        for attempt in mine:
            job = jobs.get(attempt.name) if jobs is not None else None
            if jobs is not None and (job is None or job_phase(job).finished):
                self._seen(job or {"metadata": {"name": attempt.name}}, deleted=job is None)
            elif attempt.delete_error is not None:
                self._delete(attempt)
            elif job is not None and attempt.why is None and not attempt.killed:
                for pod in pods:
                    labels = pod["metadata"].get("labels") or {}
                    stuck = stuck_reason(pod)
                    if stuck is not None and labels.get(JOB_NAME_LABEL) == attempt.name:
                        attempt.why = failure_message(attempt.name, job, [pod], attempt.spec, None)
                        self._delete(attempt)  # reported once its Job is gone
                        break
        return error

    def _seen(self, job: dict[str, Any], *, deleted: bool) -> None:
        """A Job event: if it is one of ours and it ended, its attempt is done."""
        name = job["metadata"]["name"]
        ended = deleted or job_phase(job).finished
        with self._lock:
            attempt = self._by_name.get(name)
            if ended:
                self._left.pop(name, None)  # a Job reported before its delete succeeded: it runs no more
        if attempt is None or not ended:
            return
        self._end(attempt, None if deleted else job)

    # -- deleting, and failing when the API does -----------------------------------------------
    def _try_delete(self, attempt: _Attempt) -> _Deletion:
        """Ask the API to delete ``attempt``'s Job; a refusal is kept on the attempt."""
        try:
            requested = self.api.delete(attempt.name, attempt.namespace)
        except KubernetesApiError as e:
            attempt.delete_error = e.message
            attempt.delete_failing_since = min(attempt.delete_failing_since, time.monotonic())
            return _Deletion.FAILED
        attempt.delete_error, attempt.delete_failing_since = None, math.inf
        return _Deletion.REQUESTED if requested else _Deletion.GONE

    def _delete(self, attempt: _Attempt) -> None:
        """Delete ``attempt``'s Job; it is reported once the Job is gone (now, if it already was). After
        ``API_PATIENCE`` seconds of refused deletes it is reported anyway, and its Job named at shutdown."""
        outcome = self._try_delete(attempt)
        if outcome is _Deletion.GONE:
            self._end(attempt, None)
        elif outcome is _Deletion.FAILED and time.monotonic() - attempt.delete_failing_since >= API_PATIENCE:
            self._left[attempt.name] = attempt
            attempt.why = (f"{attempt.why + ' ' if attempt.why else ''}headwater could not delete Kubernetes Job "
                           f"{attempt.name} for {API_PATIENCE:.0f} s, so it may still be running: "
                           f"{attempt.delete_error}")
            self._end(attempt, None)

    def _fail_waiting(self, namespace: str, why: Callable[[_Attempt], str]) -> None:
        """Fail every attempt waiting in ``namespace`` (``why(attempt)`` says why), deleting its Job."""
        with self._lock:
            waiting = [a for a in self._running.values() if a.namespace == namespace and a.created < math.inf]
        for attempt in waiting:
            attempt.why = why(attempt)
            if self._try_delete(attempt) is _Deletion.FAILED:
                self._left[attempt.name] = attempt
                attempt.why += " Its Job could not be deleted either, so it may still be running."
            self._end(attempt, None)

    def _internal_error(self, namespace: str, where: str) -> None:
        """A bug (an exception that is not the API's answer) in the ``where`` thread: its traceback goes
        to stderr, once, and the attempts waiting in ``namespace`` fail rather than wait on a blind loop."""
        error = sys.exc_info()[1]
        text = traceback.format_exc()
        with self._lock:
            new = text not in self._shown
            self._shown.add(text)
        if new:
            sys.stderr.write(f"Internal error in the Kubernetes {where} of namespace {namespace!r}:\n{text}")
            sys.stderr.flush()
        self._fail_waiting(namespace, lambda a: (
            f"headwater stopped waiting for Kubernetes Job {a.name}: its {where} of the run's Jobs failed with an "
            f"internal error ({type(error).__name__}: {error}); the traceback is on stderr."))

    # -- outcomes ---------------------------------------------------------------------------
    def _forget(self, attempt: _Attempt) -> bool:
        """Stop waiting for ``attempt``; False if it was reported already (each is reported once)."""
        with self._lock:
            if self._running.get(attempt.spec.key) is not attempt:
                return False
            del self._running[attempt.spec.key]
            del self._by_name[attempt.name]
        return True

    def _end(self, attempt: _Attempt, job: dict[str, Any] | None) -> None:
        if not self._forget(attempt):
            return
        try:
            fin = self._outcome(attempt, job)
        except Exception as e:  # the scheduler must hear of the attempt whatever happens here
            if not isinstance(e, HeadwaterException):  # a bug: keep its traceback
                sys.stderr.write(f"Internal error reading the outcome of Kubernetes Job {attempt.name}:\n"
                                 f"{traceback.format_exc()}")
            fin = Finished(attempt.spec.key, attempt.spec.attempt, None, 1,
                           message=f"headwater could not read the outcome of Kubernetes Job {attempt.name}: "
                                   f"{type(e).__name__}: {e}")
        self._done.put(fin)

    def _outcome(self, attempt: _Attempt, job: dict[str, Any] | None) -> Finished:
        """The attempt's Finished: its committed record if there is one, else why its Job ended."""
        from ..task_command import result_from_record

        spec = attempt.spec
        try:
            rec = self._ds.records.read_attempt(spec.flow_name, spec.run_id, spec.step_name, spec.task_id,
                                                spec.attempt)
        except KeyError:
            rec = None
        if rec is not None:
            result = result_from_record(rec)
            return Finished(spec.key, spec.attempt, result, 0 if result.ok else 1)
        if attempt.why is not None:  # the launcher ended it and said why
            return Finished(spec.key, spec.attempt, None, KILLED if attempt.killed else 1, message=attempt.why)
        if attempt.killed:  # the scheduler asked (a timeout, a failed sibling): it knows why
            return Finished(spec.key, spec.attempt, None, KILLED)
        pods = self.api.pods(attempt.name, attempt.namespace) if job is not None else []
        timeout = self.options(spec.step_name).run_time_limit
        message = failure_message(attempt.name, job, pods, spec, timeout)
        if pods:
            self._pod_log_to_stderr(attempt)
        return Finished(spec.key, spec.attempt, None, KILLED if job is None or job_phase(job) is JobPhase.TIMED_OUT
                        else 1, message=message)

    def _pod_log_to_stderr(self, attempt: _Attempt) -> None:
        """The pod's log as the attempt's stderr when the task shipped none (it failed before headwater
        ran in it: the image, the bootstrap, the code package), so ``logs`` and the console show it."""
        from ...store.logsink import read_log
        from ...store.records import RecordStore

        spec = attempt.spec
        objects = self._ds.objects
        keys = [RecordStore.log_key(spec.flow_name, spec.run_id, spec.step_name, spec.task_id, spec.attempt, s)
                for s in ("stdout", "stderr")]
        if any(read_log(objects, k) for k in keys):
            return
        text = "".join(self.api.logs(attempt.name, attempt.namespace))
        if text:
            objects.put(keys[1], text.encode("utf-8", "backslashreplace"))
