"""Resume: which tasks of an origin run a new run clones, and which it re-executes.

A task of the new run is *the same task* as one of the origin run when it is
of the same step, has the same split index and its inputs are clones of that
origin task's inputs. Cloning writes a new attempt record pointing at the same
artifacts (no data is copied, nothing re-runs). A bare resume clones every such
task that succeeded; ``resume <step>`` re-executes that step and everything
downstream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import HeadwaterException
from ..flow.graph import NodeKind
from ..store import Datastore
from ..store.records import DamagedRecordError, unsafe_component
from ..store.refs import attempt_blob_keys
from ..store.taskmeta import PARAMETERS_PATH, PARAMETERS_STEP, PARAMETERS_TASK_ID
from .taskspec import TaskResult, TaskSpec, stack_record



class ResumeError(HeadwaterException):
    headline = "Cannot resume"


@dataclass
class ResumePlan:
    """Built once at resume start from the origin run's records."""

    origin_run_id: str
    rerun: frozenset[str]  # steps that run again whatever the origin did (`resume <step>`)
    first_step: str | None  # the step asked for, else the first that failed or never ran (None: all done)
    parameters: dict[str, Any]  # the origin's _parameters record
    _by_identity: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    _children: dict[tuple[str, str], dict[int, dict[str, Any]]] = field(default_factory=dict)
    origin_of: dict[str, str] = field(default_factory=lambda: {PARAMETERS_PATH: PARAMETERS_PATH})

    def match(self, spec: TaskSpec, graph: Any = None) -> dict[str, Any] | None:
        """The origin record this task would clone, or None to execute it.

        An origin task whose recorded transition no longer fits the graph (the
        flow was edited since) is executed again rather than cloned.
        """
        if spec.step_name in self.rerun:
            return None
        try:
            inputs = tuple(self.origin_of[p] for p in spec.input_paths)
        except KeyError:
            return None
        rec = self._by_identity.get((spec.step_name, inputs, spec.split_index))
        if rec is not None and graph is not None and not fits_graph(rec, graph):
            return None
        return rec

    def foreach_values(self, origin_key: str, n: int) -> tuple[str, ...]:
        """Display values of a cloned foreach split's items, from its origin children."""
        kids = self._children.get(tuple(origin_key.split("/")), {})
        out = []
        for i in range(n):
            rec = kids.get(i)
            stack = rec.get("foreach_stack") if rec else None
            out.append(stack[-1].get("value", "") if stack else "")
        return tuple(out)

    def pin_origin_blobs(self, ds: Datastore, flow: str, run_id: str) -> None:
        """Pin every blob the origin's clonable tasks name as run ``flow/run_id``'s, in one go:
        each clone then finds its blobs pinned (``ContentStore.pin`` remembers them) and only
        checks that its origin record still exists, instead of pinning and listing
        ``sweeps/`` per task."""
        keys = {k for rec in self._by_identity.values() for k in attempt_blob_keys(rec)}
        if keys:
            ds.content.for_run(flow, run_id).pin(sorted(keys))

    def clone(self, ds: Datastore, spec: TaskSpec, origin: dict[str, Any]) -> TaskResult:
        """Commit ``spec`` as a clone of ``origin`` and report it like a finished task."""
        rec = write_clone(ds, spec, origin, self.origin_run_id)
        origin_key = f"{origin['step']}/{origin['task_id']}"
        self.origin_of[spec.key] = origin_key  # a single dict store: safe from the clone threads
        n = (origin.get("transition") or {}).get("num_splits")
        return clone_result(spec, rec, self.foreach_values(origin_key, n) if n else ())


def write_clone(ds: Datastore, spec: TaskSpec, origin: dict[str, Any], origin_run_id: str) -> dict[str, Any]:
    """Commit attempt 0 of ``spec``'s task as a clone of the origin run's attempt record ``origin``.

    The new record names the origin's artifacts (no data is copied) and records where it
    came from (``origin_pathspec``, ``origin_run_id``, ``origin_task_id``, ``cloned``). Used by
    a local resume and by an orchestrated task with ``--clone-run-id``. Returns the record.
    """
    now = time.time()
    meta = dict(origin.get("metadata") or {})
    meta.update({
        "origin_pathspec": f"{spec.flow_name}/{origin_run_id}/{origin['step']}/{origin['task_id']}",
        "origin_run_id": origin_run_id, "origin_task_id": str(origin["task_id"]),
        "origin_attempt": origin["attempt"], "cloned": True,
    })
    rec = dict(origin)
    rec.update({
        "run_id": spec.run_id, "task_id": spec.task_id, "attempt": 0,
        "input_paths": list(spec.input_paths), "started_at": now, "finished_at": now, "metadata": meta,
        "foreach_stack": stack_record(spec.foreach_stack),
    })
    # The origin may be a run gc is removing: pin its blobs as this run's before naming them.
    ds.content.for_run(spec.flow_name, spec.run_id).adopt(
        attempt_blob_keys(origin), ds.records.attempt_key(spec.flow_name, origin_run_id, origin["step"],
                                                          str(origin["task_id"]), int(origin["attempt"])))
    ds.records.write_attempt(rec)
    return rec


def clone_result(spec: TaskSpec, rec: dict[str, Any], foreach_values: tuple[str, ...] = ()) -> TaskResult:
    """The TaskResult of the clone record ``rec`` (what the origin task decided, finished now)."""
    t = rec.get("transition") or {}
    return TaskResult(
        task_key=spec.key, attempt=0, ok=True, started_at=rec["started_at"], finished_at=rec["finished_at"],
        next_steps=tuple(t.get("next") or ()), foreach_var=t.get("foreach"), num_splits=t.get("num_splits"),
        foreach_values=foreach_values, switch_case=t.get("switch_case"), record=rec,
    )


def fits_graph(rec: dict[str, Any], graph: Any) -> bool:
    """Whether the origin record's transition still fits ``graph`` (the flow was not edited since)."""
    node = graph[rec["step"]] if rec["step"] in graph else None
    nxt = tuple((rec.get("transition") or {}).get("next") or ())
    if node is None or any(n not in graph for n in nxt):
        return False
    if node.kind is NodeKind.SWITCH:
        return all(n in node.out_funcs for n in nxt)
    return nxt == tuple(node.out_funcs)


def descendants(graph: Any, step: str) -> set[str]:
    out = {step}
    todo = [step]
    while todo:
        for nxt in graph[todo.pop()].out_funcs:
            if nxt not in out:
                out.add(nxt)
                todo.append(nxt)
    return out


def unresumable(ds: Datastore, flow: str, run_id: str) -> str | None:
    """Why the run ``flow/run_id`` cannot be resumed, or ``None`` if it can.

    A run is resumable once its parameters record is committed: a run killed
    between its run record and that record started nothing and holds nothing.
    """
    try:
        ds.records.read_attempt(flow, run_id, PARAMETERS_STEP, PARAMETERS_TASK_ID, 0)
    except KeyError:
        return "it was stopped before it recorded its parameters, so it ran no step"
    except ValueError:  # a damaged record (not valid JSON)
        return "its parameters record is damaged"
    return None


def check_origin(ds: Datastore, flow: str, origin_run_id: str, *, option: str = "--origin-run-id") -> None:
    """Raise ``ResumeError`` unless ``origin_run_id`` names a run of ``flow`` that can be resumed.

    ``option`` is how the user named the origin (the hint tells them to change it).
    """
    hint = f"Pass {option} with an existing run id (see `headwater runs`)."
    if unsafe_component(origin_run_id):
        raise ResumeError(f"{option} {origin_run_id!r} {unsafe_component(origin_run_id)}: it is no run id.",
                          hint=hint)
    try:
        ds.records.read_run(flow, origin_run_id)
    except KeyError:
        raise ResumeError(f"Flow {flow} has no run {origin_run_id!r} to resume.", hint=hint) from None
    why = unresumable(ds, flow, origin_run_id)
    if why is not None:
        raise ResumeError(f"Run {flow}/{origin_run_id} cannot be resumed: {why}.",
                          hint=f"Resume another run with {option} (see `headwater runs`), or start a new run.")


def parameters_plan(ds: Datastore, flow: str, origin_run_id: str, *, option: str) -> ResumePlan:
    """A plan that carries only the origin's parameters: what an orchestrated run's ``init``
    needs to start a resume (each of its tasks decides for itself whether it is a clone)."""
    check_origin(ds, flow, origin_run_id, option=option)
    params = ds.records.read_attempt(flow, origin_run_id, PARAMETERS_STEP, PARAMETERS_TASK_ID, 0)
    return ResumePlan(origin_run_id=origin_run_id, rerun=frozenset(), first_step=None, parameters=params)


def plan_resume(ds: Datastore, graph: Any, flow: str, origin_run_id: str,
                step: str | None) -> ResumePlan:
    """Read the origin run and decide what to clone and what to re-execute."""
    records = ds.records
    check_origin(ds, flow, origin_run_id)
    if step is not None and step not in graph:
        raise ResumeError(f"Flow {flow} has no step {step!r}.",
                          hint=f"Steps: {', '.join(graph.sorted_nodes)}.")
    params = records.read_attempt(flow, origin_run_id, PARAMETERS_STEP, PARAMETERS_TASK_ID, 0)

    by_identity: dict[tuple, dict[str, Any]] = {}
    children: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    bad_steps: set[str] = set()
    seen_steps: set[str] = set()
    for s in records.steps(flow, origin_run_id):
        if s == PARAMETERS_STEP:
            continue
        for tid in records.tasks(flow, origin_run_id, s):
            try:
                rec = records.latest_attempt(flow, origin_run_id, s, tid)
            except DamagedRecordError:  # a torn record: the task counts as not done
                rec = None
            if rec is None:  # started but never committed (killed)
                bad_steps.add(s)
                continue
            seen_steps.add(s)
            if rec.get("status") != "ok":
                bad_steps.add(s)
                continue
            ident = (s, tuple(rec.get("input_paths") or ()), rec.get("split_index"))
            by_identity[ident] = rec
            if rec.get("split_index") is not None and rec.get("input_paths"):
                parent = tuple(rec["input_paths"][0].split("/"))
                children.setdefault(parent, {})[rec["split_index"]] = rec
    order = {n: i for i, n in enumerate(graph.sorted_nodes)}
    bad_steps &= set(graph.sorted_nodes)  # steps renamed or removed since the origin ran
    if step is not None:  # `resume <step>`: that step and everything after it run again
        return ResumePlan(origin_run_id=origin_run_id, rerun=frozenset(descendants(graph, step)),
                          first_step=step, parameters=params, _by_identity=by_identity, _children=children)
    # A bare `resume` forces nothing: as in Metaflow, every task whose inputs were
    # cloned and that succeeded in the origin run is cloned (the iterations of a
    # loop and the splits of a foreach that succeeded too), the rest runs. A
    # successful origin run is cloned whole.
    never_ran = [n for n in graph.sorted_nodes if n not in seen_steps]
    first = min(bad_steps, key=lambda n: order.get(n, 1 << 30)) if bad_steps else (
        never_ran[0] if never_ran else None)
    return ResumePlan(origin_run_id=origin_run_id, rerun=frozenset(), first_step=first,
                      parameters=params, _by_identity=by_identity, _children=children)
