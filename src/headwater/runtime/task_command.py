"""One task of an orchestrated run, from Metaflow's ``step`` arguments (orchestration layer).

An orchestrator (Argo, a Kubernetes Job) runs ``python flow.py step STEP --run-id RUN
--task-id TASK --input-paths RUN/STEP/TASK,... [--split-index N] --retry-count N ...``.
``build_task_spec`` turns those arguments into the same ``TaskSpec`` the scheduler would
have made, reading only the parents' committed attempt records: which attempt of each
input to read (its latest successful one) and the foreach stack. ``write_outputs`` leaves
the small files an orchestrator reads back (``--output-dir``). With ``--clone-run-id`` (a
resumed run) the task first decides whether it is a clone of the origin run's task
(``runtime.clone_decision``) and, if so, commits the clone instead of running the step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..exceptions import HeadwaterException
from ..flow.graph import FANOUT, NodeKind
from ..store import Datastore
from ..store.taskmeta import CRASH_TYPE
from ..plan import parse_input_paths, split_indexes
from .taskspec import ForeachFrame, TaskResult, TaskSpec

#: Files ``--output-dir`` receives (read by an orchestrator's output parameters).
NUM_SPLITS_FILE = "num_splits"
SPLITS_FILE = "splits.json"
NEXT_STEP_FILE = "next_step"
TASK_ID_FILE = "task_id"


class TaskArgumentsError(HeadwaterException):
    """The ``step`` command's arguments do not describe a task this run can start."""

    headline = "Invalid task arguments"
    exit_code = 2


@dataclass(frozen=True)
class TaskArguments:
    """Metaflow's ``step`` arguments, parsed (``--input-paths`` still as given)."""

    step: str
    run_id: str
    task_id: str
    input_paths: str
    split_index: int | None = None
    retry_count: int = 0
    max_user_code_retries: int = 0
    tags: tuple[str, ...] = ()
    namespace: str | None = None
    decospecs: tuple[str, ...] = ()  # the top-level --with decorators
    clone_run_id: str | None = None  # the run this one resumes (Metaflow's --clone-run-id)


def _committed_input(ds: Datastore, flow: str, run: str, step: str, task: str) -> dict[str, Any]:
    """The latest successful attempt record of an input task."""
    for attempt in reversed(ds.records.attempts(flow, run, step, task)):
        rec = ds.records.read_attempt(flow, run, step, task, attempt)
        if rec.get("status") == "ok":
            return rec
    raise TaskArgumentsError(
        f"Input {flow}/{run}/{step}/{task} has no successful attempt in the datastore {ds.root}.",
        hint="Run the input task first (an orchestrator starts a task only after its inputs succeeded), "
             "or fix --input-paths.")


def _stack(rec: dict[str, Any]) -> tuple[ForeachFrame, ...]:
    return tuple(ForeachFrame(**f) for f in rec.get("foreach_stack") or [])


def build_task_spec(args: TaskArguments, flow_cls: type, graph: Any, ds: Datastore, user: str,
                    identity: str | None = None) -> TaskSpec:
    """The TaskSpec of ``args``' task, as the scheduler would have built it.

    Raises
    ------
    TaskArgumentsError
        An unknown step, a malformed or foreign ``--input-paths``, an input with no
        successful attempt, or a ``--split-index`` outside its foreach.
    """
    flow = flow_cls.__name__
    if args.step not in graph.nodes:
        raise TaskArgumentsError(f"{flow} has no step {args.step!r}.",
                                 hint=f"Use one of: {', '.join(graph.sorted_nodes)}.")
    try:
        parsed = parse_input_paths(args.input_paths)
    except ValueError as e:
        raise TaskArgumentsError(f"--input-paths {args.input_paths!r}: {e}.",
                                 hint="Give RUN/STEP/TASK pathspecs separated by commas.") from None
    foreign = [f"{r}/{s}/{t}" for r, s, t in parsed if r != args.run_id]
    if foreign:
        raise TaskArgumentsError(f"--input-paths names {foreign[0]}, which is not in run {args.run_id}.",
                                 hint="A task reads inputs of its own run only.")
    records = [_committed_input(ds, flow, r, s, t) for r, s, t in parsed]
    node = graph[args.step]
    first = records[0]
    stack = _stack(first)
    closes = node.split_parents[-1] if node.kind is NodeKind.JOIN and node.split_parents else None
    if closes is not None and graph[closes].kind in FANOUT:
        stack = stack[:-1]
    elif args.split_index is not None:
        transition = first.get("transition") or {}
        num_splits = transition.get("num_splits")
        if len(records) != 1 or not num_splits:
            raise TaskArgumentsError(
                f"--split-index {args.split_index} is given, but the input {parsed[0][1]}/{parsed[0][2]} of "
                f"step {args.step!r} is not a foreach split.", hint="Drop --split-index.")
        if args.split_index not in split_indexes(num_splits):
            raise TaskArgumentsError(
                f"--split-index {args.split_index} is outside the foreach of step {parsed[0][1]!r}, "
                f"which has {num_splits} splits.", hint=f"Give an index from 0 to {num_splits - 1}.")
        stack = stack + (ForeachFrame(parsed[0][1], transition.get("foreach") or "", args.split_index,
                                      num_splits, ""),)
    from ..flow.decorators import step_policy

    policy = step_policy(getattr(flow_cls, args.step))
    extra: tuple[tuple[str, str], ...] = ()
    if policy.resources:
        extra += (("resources", json.dumps(policy.resources)),)
    if args.namespace is not None:  # the key the scheduler uses for run --namespace
        extra += (("namespace", args.namespace),)
    return TaskSpec(
        flow_name=flow, run_id=args.run_id, step_name=args.step, task_id=args.task_id,
        attempt=args.retry_count, input_paths=tuple(f"{s}/{t}" for _, s, t in parsed),
        input_attempts=tuple(int(r["attempt"]) for r in records), datastore_root=ds.root, user=user, identity=identity,
        split_index=args.split_index, foreach_stack=stack, tags=args.tags,
        max_user_code_retries=args.max_user_code_retries, env=tuple(policy.env.items()),
        decospecs=args.decospecs, extra=extra, dedicated_process=True, origin_run_id=args.clone_run_id,
        fallback=_fallback(ds, flow, args),
    )


def _fallback(ds: Datastore, flow: str, args: TaskArguments) -> dict[str, str] | None:
    """What a ``@catch`` fallback attempt records: Metaflow marks that attempt by a ``--retry-count``
    past ``--max-user-code-retries``. It is the failure of the attempt before it (the crash or
    timeout the launcher recorded), else a crash of unknown cause."""
    if args.retry_count <= args.max_user_code_retries:
        return None
    for attempt in reversed(ds.records.attempts(flow, args.run_id, args.step, args.task_id)):
        if attempt < args.retry_count:
            exc = ds.records.read_attempt(flow, args.run_id, args.step, args.task_id, attempt).get("exception")
            if exc:
                return {k: str(v) for k, v in exc.items()}
            break
    return {"type": CRASH_TYPE, "message": "The task process died without committing.", "traceback": ""}


def run_task_command(args: TaskArguments, flow_cls: type, ds: Datastore, settings: Settings,
                     script: str) -> TaskResult:
    """Run ``args``' task through ``execute()``; its stdout and stderr are shipped to the store
    as a remote task's are, so ``logs`` shows them."""
    from .launchers.base import TaskContext, run_task
    from .remote import ship_task_output
    from .run_state import restore_run_state

    spec = build_task_spec(args, flow_cls, flow_cls._graph, ds, settings.require_user(), settings.identity)
    spec = _with_environment(spec, settings)
    result = _committed_result(ds, flow_cls.__name__, args)
    if result is None and args.clone_run_id:
        result = _clone_if_same(ds, spec, args, flow_cls._graph)
    if result is None:
        restore_run_state(ds, flow_cls, args.run_id)
        ctx = TaskContext(flow_cls, flow_cls._graph, ds.root, script, decorators_attached=False)
        with ship_task_output(ds, spec):
            result = run_task(spec, ctx)
    if result.ok and args.step == flow_cls._graph.end:
        _end_run(ds, settings, flow_cls.__name__, args.run_id)
    return result


def _with_environment(spec: TaskSpec, settings: Settings) -> TaskSpec:
    """``spec`` recording the step's environment in its metadata, when the bootstrap built one
    and runs this process in it (``environments.remote.METADATA_ENV_VAR``)."""
    from ..environments.prepare import METADATA_KEY
    from ..environments.remote import METADATA_ENV_VAR

    described = settings.extra.get(METADATA_ENV_VAR)
    if not described:
        return spec
    os.environ.pop(METADATA_ENV_VAR, None)  # for this task only: not for what the step starts (a nested run)
    return dataclasses.replace(spec, extra=spec.extra + ((METADATA_KEY, described),))


def _clone_if_same(ds: Datastore, spec: TaskSpec, args: TaskArguments, graph: Any) -> TaskResult | None:
    """Resume: commit the task as a clone of the origin run's task of the same step and id, if
    ``decide_clone`` says it is the same task; ``None`` to execute it."""
    from ..store.records import DamagedRecordError
    from .clone_decision import decide_clone
    from .resume import clone_result, write_clone

    origin_run_id = str(args.clone_run_id)
    flow = spec.flow_name
    try:
        origin = ds.records.latest_attempt(flow, origin_run_id, spec.step_name, spec.task_id)
    except DamagedRecordError:  # a torn record: the origin task counts as not done
        origin = None
    inputs = [ds.records.read_attempt(flow, spec.run_id, *path.split("/"), attempt)
              for path, attempt in zip(spec.input_paths, spec.input_attempts)]
    decision = decide_clone(flow=flow, origin_run_id=origin_run_id, step=spec.step_name, task_id=spec.task_id,
                            split_index=spec.split_index, attempt=spec.attempt, input_paths=spec.input_paths,
                            inputs=inputs, origin=origin, graph=graph)
    where = f"Task {flow}/{spec.run_id}/{spec.step_name}/{spec.task_id}"
    if not decision.clone:
        sys.stderr.write(f"{where} runs: {decision.reason}.\n")
        return None
    assert origin is not None
    rec = write_clone(ds, spec, origin, origin_run_id)
    sys.stderr.write(f"{where} is {decision.reason}; it does not run again.\n")
    return clone_result(spec, rec)


def _committed_result(ds: Datastore, flow: str, args: TaskArguments) -> TaskResult | None:
    """The result of an attempt that is already committed (an orchestrator re-ran a task whose
    process died after its commit): the record decides, the step does not run again."""
    if args.retry_count not in ds.records.attempts(flow, args.run_id, args.step, args.task_id):
        return None
    rec = ds.records.read_attempt(flow, args.run_id, args.step, args.task_id, args.retry_count)
    sys.stderr.write(f"Task {flow}/{args.run_id}/{args.step}/{args.task_id} attempt {args.retry_count} is "
                     f"already committed ({rec.get('status')}); it does not run again.\n")
    return result_from_record(rec)


def result_from_record(rec: dict[str, Any]) -> TaskResult:
    """The TaskResult of a committed attempt record: what a task that ran elsewhere (a pod, an
    orchestrator's container) reports to whoever waits for it."""
    t = rec.get("transition") or {}
    return TaskResult(task_key=f"{rec['step']}/{rec['task_id']}", attempt=int(rec["attempt"]),
                      ok=rec.get("status") == "ok", started_at=rec.get("started_at") or 0.0,
                      finished_at=rec.get("finished_at") or 0.0, next_steps=tuple(t.get("next") or ()),
                      foreach_var=t.get("foreach"), num_splits=t.get("num_splits"),
                      switch_case=t.get("switch_case"), exception=rec.get("exception"), record=rec)


def _end_run(ds: Datastore, settings: Settings, flow: str, run_id: str) -> None:
    """The end step succeeded: the run ended successfully (a local run's process records that;
    an orchestrated run has no such process). A run that fails stays without an end record:
    only the orchestrator knows whether it will retry."""
    from ..meta import open_index
    from .run import end_run

    index = open_index(ds.root, records=ds.records, provider=settings.metadata)
    try:
        end_run(ds, index, flow, run_id, True, [])
    finally:
        index.close()


def write_outputs(output_dir: str, result: TaskResult, task_id: str) -> None:
    """Write the files an orchestrator reads after the task: ``task_id``; for a foreach
    split ``num_splits`` and ``splits.json``; for a switch ``next_step``."""
    os.makedirs(output_dir, exist_ok=True)
    files = {TASK_ID_FILE: task_id}
    if result.num_splits is not None:
        files[NUM_SPLITS_FILE] = str(result.num_splits)
        files[SPLITS_FILE] = json.dumps(split_indexes(result.num_splits))
    if result.switch_case is not None and result.next_steps:
        files[NEXT_STEP_FILE] = result.next_steps[0]
    for name, text in files.items():
        tmp = os.path.join(output_dir, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(output_dir, name))
