"""Whether a task of a resumed orchestrated run clones its origin task or executes (orchestration layer).

An orchestrator (Argo) starts every task of a resumed run with ``--clone-run-id ORIGIN``; no
scheduler sees the whole run, so each task decides alone, from records only. Task ids are
deterministic, so the origin task is the one with the same step and task id. The task clones it
when that origin task succeeded and every input of the task in *this* run is itself a copy of the
origin's task of the same step and id (a clone, or the parameters ``init`` copied). Everything
upstream of a failure is therefore cloned, and the failed step and everything after it run again:
the semantics of a local ``resume`` (``runtime.resume``), decided without a scheduler.

Pure: the caller reads the records; ``decide_clone`` only looks at them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .resume import fits_graph


@dataclass(frozen=True, slots=True)
class CloneDecision:
    """``clone`` or not, and why (one line for the task's log)."""

    clone: bool
    reason: str


def copied_from(rec: dict[str, Any]) -> str | None:
    """The pathspec (``Flow/run/step/task``) an attempt record was copied from: a clone's origin
    task, or the origin's parameters for a resumed run's ``_parameters``; ``None`` if it executed."""
    value = (rec.get("metadata") or {}).get("origin_pathspec")
    return value if isinstance(value, str) else None


def decide_clone(*, flow: str, origin_run_id: str, step: str, task_id: str, split_index: int | None,
                 attempt: int, input_paths: Sequence[str], inputs: Sequence[dict[str, Any]],
                 origin: dict[str, Any] | None, graph: Any) -> CloneDecision:
    """Decide whether task ``step/task_id`` of a resumed run clones ``origin``.

    Parameters
    ----------
    flow, origin_run_id : str
        The flow's name and the run being resumed.
    step, task_id, split_index, attempt
        The task (its ``--split-index`` and ``--retry-count``).
    input_paths : sequence of str
        The task's inputs in this run, ``step/task`` each.
    inputs : sequence of dict
        The committed attempt records of those inputs, in the same order.
    origin : dict or None
        The latest committed attempt record of ``origin_run_id/step/task_id`` (``None``: none).
    graph : FlowGraph
        The flow's graph now (an origin task whose transition no longer fits it runs again).
    """
    where = f"{flow}/{origin_run_id}/{step}/{task_id}"
    if attempt > 0:
        return CloneDecision(False, f"attempt {attempt} is a retry, which runs the step")
    if origin is None:
        return CloneDecision(False, f"the origin run has no task {where}")
    if origin.get("status") != "ok":
        return CloneDecision(False, f"the origin task {where} did not succeed")
    for path, rec in zip(input_paths, inputs):
        if copied_from(rec) != f"{flow}/{origin_run_id}/{path}":
            return CloneDecision(False, f"its input {path} was not cloned from run {origin_run_id}")
    if tuple(origin.get("input_paths") or ()) != tuple(input_paths):
        return CloneDecision(False, f"the origin task {where} read other inputs "
                                    f"({', '.join(origin.get('input_paths') or ()) or 'none'})")
    if origin.get("split_index") != split_index:
        return CloneDecision(False, f"the origin task {where} had another split index")
    if not fits_graph(origin, graph):
        return CloneDecision(False, f"the origin task {where} went to steps the flow no longer has there")
    return CloneDecision(True, f"cloned from {where} (attempt {origin.get('attempt', 0)})")
